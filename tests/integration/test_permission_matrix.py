"""Every role against every endpoint, generated from the route table: each route must
declare one permission, and each role is let through or refused exactly as the matrix
in application.permissions says. A new route without a rule fails here."""

import re
import uuid

import pytest
from fastapi.routing import APIRoute, iter_route_contexts

from application.permissions import Permission, allows
from domain.account import Account
from domain.context import system_actor

pytestmark = pytest.mark.integration

ROLES = ("patient", "scheduler", "billing", "compliance", "admin", "integration")


def route_permissions(app) -> dict[tuple[str, str], Permission]:
    found = {}
    for context in iter_route_contexts(app.routes):
        route = context.route
        if not isinstance(route, APIRoute):
            continue
        permissions = set()
        stack = list(route.dependant.dependencies)
        while stack:
            dependant = stack.pop()
            permission = getattr(dependant.call, "permission", None)
            if permission is not None:
                permissions.add(permission)
            stack.extend(dependant.dependencies)
        for method in route.methods:
            found[(method, route.path)] = permissions
    return found


def test_every_route_declares_exactly_one_permission(client):
    routes = route_permissions(client.app)
    assert len(routes) > 30
    missing = {k: v for k, v in routes.items() if len(v) != 1}
    assert missing == {}, f"routes without exactly one permission rule: {missing}"


@pytest.fixture
def tokens(client, runtime):
    """A fresh access token per role (staff sessions count as two-factor ones)."""
    registry = runtime.services.registry
    auth = runtime.services.auth
    actor = system_actor()
    registry.register_patient(
        email="matrix.patient@example.org",
        password="a long enough password",
        given_name="M",
        family_name="P",
        birth_date=__import__("datetime").date(1990, 1, 1),
        phone=None,
        actor=actor,
    )
    accounts = {"patient": Account.create_id("matrix.patient@example.org")}
    for role in ROLES[1:]:
        accounts[role] = registry.open_staff_account(
            email=f"matrix.{role}@example.org",
            password="a long enough password",
            role=role,
            centres=[],
            actor=actor,
        )

    def token(role: str) -> str:
        account = registry.account(accounts[role])
        amr = ("pwd",) if role == "patient" else ("pwd", "otp")
        return auth._start_session(account, amr).access_token

    return token


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", lambda _: str(uuid.uuid4()), path)


def call(client, method: str, path: str, headers: dict[str, str]):
    kwargs = {"headers": headers}
    if method in ("POST", "PUT", "PATCH"):
        kwargs["json"] = {}
    return client.request(method, concrete(path), **kwargs)


def test_each_role_is_allowed_or_refused_as_the_matrix_says(client, tokens):
    problems = []
    for (method, path), permissions in sorted(route_permissions(client.app).items()):
        (permission,) = permissions
        anonymous = call(client, method, path, {})
        if permission is Permission.PUBLIC:
            if anonymous.status_code in (401, 403):
                problems.append(f"anonymous {method} {path}: {anonymous.status_code}")
        elif anonymous.status_code != 401:
            problems.append(f"anonymous {method} {path}: {anonymous.status_code}, expected 401")
        for role in ROLES:
            response = call(client, method, path, {"Authorization": f"Bearer {tokens(role)}"})
            if allows(role, permission):
                if response.status_code in (401, 403):
                    problems.append(f"{role} {method} {path}: refused ({response.status_code})")
            elif response.status_code != 403:
                problems.append(f"{role} {method} {path}: {response.status_code}, expected 403")
    assert problems == []


def test_staff_without_a_second_factor_may_only_enrol(client, runtime):
    runtime.services.registry.open_staff_account(
        email="new.scheduler@example.org",
        password="a long enough password",
        role="scheduler",
        centres=[],
        actor=system_actor(),
    )
    signed_in = client.post(
        "/v1/auth/token",
        data={"username": "new.scheduler@example.org", "password": "a long enough password"},
    )
    assert signed_in.status_code == 200
    headers = {"Authorization": f"Bearer {signed_in.json()['access_token']}"}
    refused = client.get(f"/v1/staff/patients/{uuid.uuid4()}", headers=headers)
    assert refused.status_code == 403
    assert refused.json()["code"] == "second_factor_required"
    assert client.post("/v1/auth/2fa/enrol", headers=headers).status_code == 200


def test_a_refused_call_is_in_the_access_log(client, runtime):
    from tests.support import register

    headers = register(client, "denied@example.org")
    assert client.get(f"/v1/staff/patients/{uuid.uuid4()}", headers=headers).status_code == 403
    runtime.services.access_log.flush()
    with runtime.pool.connection() as conn:
        rows = conn.execute(
            "SELECT role, resource, outcome FROM phi_access_log WHERE outcome LIKE 'denied%'"
        ).fetchall()
    assert rows == [("patient", "/v1/staff/patients/{patient_id}", "denied_role")]


def test_compliance_alone_reads_the_alerts(client):
    # the matrix above checks every role against this rule
    routes = route_permissions(client.app)
    assert routes[("GET", "/v1/audit/alerts")] == {Permission.AUDIT_READ}
    assert [role for role in ROLES if allows(role, Permission.AUDIT_READ)] == ["compliance"]
