"""Property-based fuzzing of the whole API from its own OpenAPI schema (schemathesis).

Every operation gets a bounded number of generated requests, sent in-process to the real
application on a real database, as a caller the operation is meant for: anonymous for
public routes, a freshly signed-in patient for the patient's own routes (so that a
generated sign-out cannot spoil the next case), a two-factor staff session of a role the
permission matrix lets through (with every centre) for staff routes. Random ids only
ever reach "not found", so each id-like parameter or body field is, half of the time,
swapped for one that exists (the patient's appointment, a catalog code, a free slot).

Each answer must be no server error, have a status code, content type and body the
schema declares, and carry the secure headers. Rate limits are lifted here (they are
tested on their own) so that they do not answer in place of the routes behind them.
FUZZ_EXAMPLES raises the number of examples per operation for a longer local run."""

import dataclasses
import os
from datetime import datetime, timedelta
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from api.security import API_CSP
from application.permissions import Permission, allows
from application.ports import RateLimiter
from domain.context import system_actor
from domain.location import Location
from imaging_bridge.bootstrap import Runtime
from tests.support import T0, SettableClock, catalog_ids, register, staff_headers

pytestmark = pytest.mark.integration

EXAMPLES_PER_OPERATION = int(os.environ.get("FUZZ_EXAMPLES", "25"))
PATIENT_EMAIL = "fuzz.patient@example.org"
PATIENT_PASSWORD = "correct horse battery staple"
STAFF_ROLES = ("scheduler", "admin", "compliance", "billing", "integration")
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


class Unlimited(RateLimiter):
    def hit(self, bucket: str, key: str, limit: int, window_seconds: int, now: datetime) -> float:
        return 0


# Public answers meant to be cached (and nothing about anyone in them).
CACHEABLE = {"/.well-known/jwks.json": "public, max-age=300"}
# Public answers that may be kept but must be revalidated (ETag), when they are answers.
REVALIDATED = {"/v1/slots": "private, no-cache"}


def secure_headers(_: Any, response: Any, case: Any) -> bool | None:
    """Every answer, whatever it is, carries the secure headers; only the public keys
    may be cached, and slot-search answers kept if revalidated."""
    headers = {name.lower(): value for name, value in response.headers.items()}

    def header(name: str) -> str:
        value = headers.get(name.lower())
        return value[0] if isinstance(value, list) else str(value)

    assert header("X-Content-Type-Options") == "nosniff"
    assert header("X-Frame-Options") == "DENY"
    assert header("Content-Security-Policy") == API_CSP
    expected = CACHEABLE.get(case.operation.path, "no-store")
    if response.status_code in (200, 304):
        expected = REVALIDATED.get(case.operation.path, expected)
    assert header("Cache-Control") == expected
    return None


def permissions(app: FastAPI) -> dict[tuple[str, str], Permission]:
    """The one permission each route declares, by (METHOD, path template)."""
    found: dict[tuple[str, str], Permission] = {}
    for context in iter_route_contexts(app.routes):
        route = context.route
        if not isinstance(route, APIRoute):
            continue
        stack = list(route.dependant.dependencies)
        while stack:
            dependant = stack.pop()
            permission = getattr(dependant.call, "permission", None)
            if permission is not None:
                for method in route.methods:
                    found[(method, route.path)] = permission
            stack.extend(dependant.dependencies)
    return found


def known_values(
    client: TestClient, runtime: Runtime, scheduler: dict[str, str]
) -> dict[str, list[Any]]:
    """Ids and values that exist, by the parameter or field names that carry them: the
    patient's booked appointment, the catalog, a free slot, and staff accounts to change
    (not the ones the fuzzing signs in with)."""
    targets = [
        runtime.services.registry.open_staff_account(
            email=f"target.{role}@staff.example.org",
            password="staff member long password",
            role=role,
            centres=[],
            actor=system_actor(),
        )
        for role in ("scheduler", "billing")
    ]
    patient = {"Authorization": f"Bearer {sign_in_patient(client)}"}
    types, locations = catalog_ids(client)
    slots = client.get(
        "/v1/slots",
        params={
            "appointment_type_id": types["xr-chest"],
            "start": (T0 + timedelta(days=1)).isoformat(),
            "end": (T0 + timedelta(days=3)).isoformat(),
        },
    ).json()
    booked = client.post(
        "/v1/appointments",
        headers=patient,
        json={
            "appointment_type_id": types["xr-chest"],
            "location_id": slots[0]["location_id"],
            "start": slots[0]["start"],
        },
    )
    assert booked.status_code == 201, booked.text
    resources = client.get("/v1/staff/catalog/resources", headers=scheduler).json()
    thread = client.post(
        "/v1/me/messages", headers=patient, json={"subject": "Parking", "body": "Is there any?"}
    )
    assert thread.status_code == 201, thread.text
    return {
        "thread_id": [thread.json()["thread_id"]],
        "staff_id": [str(target) for target in targets[:1]],
        "appointment_id": [booked.json()["id"]],
        "patient_id": [client.get("/v1/patients/me", headers=patient).json()["id"]],
        "account_id": [str(target) for target in targets],
        "appointment_type_id": list(types.values()),
        "location_id": list(locations.values()),
        "resource_id": [r["id"] for r in resources if "id" in r],
        "code": [*types, *locations, *(r["code"] for r in resources)],
        "start": [slot["start"] for slot in slots[1:6]] or [T0.isoformat()],
        "end": [(T0 + timedelta(days=2)).isoformat()],
        "email": ["fuzz.newcomer@example.org", PATIENT_EMAIL],
        "password": [PATIENT_PASSWORD, "a new and long enough passphrase"],
        "new_password": ["a new and long enough passphrase"],
    }


def sign_in_patient(client: TestClient) -> str:
    app: FastAPI = client.app  # type: ignore[assignment]
    pair = app.state.services.auth.sign_in(PATIENT_EMAIL, PATIENT_PASSWORD, system_actor())
    return str(pair.access_token)


def with_known_values(case: schemathesis.Case, data: st.DataObject, known: dict[str, list[Any]]):
    """Half of the time per field, an id-like value that exists instead of a random one."""
    body = case.body if isinstance(case.body, dict) else None
    for container in (case.path_parameters, case.query, body):
        for name in list(container or {}):
            if name in known and data.draw(st.booleans(), label=f"known {name}"):
                container[name] = data.draw(st.sampled_from(known[name]), label=name)  # type: ignore[index]


def test_generated_requests_get_no_server_error_and_answers_within_the_schema(
    runtime: Runtime, clock: SettableClock
):
    services = dataclasses.replace(runtime.services, rate_limiter=Unlimited())
    app = create_app(services)
    route_permissions = permissions(app)
    every_centre = [Location.create_id(c) for c in ("riverside", "lakeshore", "prairie-mobile")]
    with TestClient(app) as client:
        register(client, PATIENT_EMAIL, PATIENT_PASSWORD)
        staff = {
            role: staff_headers(client, runtime, clock, role, centres=every_centre)
            for role in STAFF_ROLES
        }
        known = known_values(client, runtime, staff["scheduler"])

        def caller(permission: Permission) -> dict[str, str]:
            if permission is Permission.PUBLIC:
                return {}
            if allows("patient", permission):
                return {"Authorization": f"Bearer {sign_in_patient(client)}"}
            return staff[next(role for role in STAFF_ROLES if allows(role, permission))]

        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        failures: dict[str, str] = {}
        tested = 0
        for result in schema.get_all_operations():
            operation = result.ok()
            permission = route_permissions[(operation.method.upper(), operation.path)]

            @settings(
                max_examples=EXAMPLES_PER_OPERATION,
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(), data=st.data())
            def answers_well(case: schemathesis.Case, data: st.DataObject) -> None:
                with_known_values(case, data, known)
                case.call_and_validate(
                    headers=caller(permission),  # noqa: B023 - used within this iteration
                    checks=CHECKS,
                    additional_checks=[secure_headers],
                )

            tested += 1
            try:
                answers_well()
            except (Exception, FailureGroup) as error:  # noqa: BLE001 - all reported below
                failures[operation.label] = str(error)[:3000]
    assert tested == len(route_permissions)
    assert not failures, "\n\n".join(f"== {label}\n{text}" for label, text in failures.items())
