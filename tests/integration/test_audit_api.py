"""GET /v1/audit/access for the compliance officer, and the promise behind it: every API
read of patient data leaves exactly one row in the PHI access log.

The log is written asynchronously; tests wait on the writer's flush(), never on sleeps."""

from datetime import date, timedelta
from typing import Any, NamedTuple
from uuid import UUID, uuid4

import pytest
from fastapi.routing import APIRoute, iter_route_contexts

from application.permissions import Permission
from application.ports import AccessRecord
from domain.account import Account
from domain.context import system_actor
from tests.support import T0, catalog_ids, register, staff_headers

pytestmark = pytest.mark.integration

PATH = "/v1/audit/access"
COMPLIANCE_EMAIL = "compliance@staff.example.org"
COMPLIANCE_ID = str(Account.create_id(COMPLIANCE_EMAIL))
# GET endpoints with these permissions show patient data, so each must log its reads.
PATIENT_DATA = {
    Permission.OWN_RECORDS,
    Permission.APPOINTMENTS_READ,
    Permission.PATIENTS_READ,
    Permission.AUDIT_READ,
    Permission.BILLING_MANAGE,
    Permission.BREAK_GLASS,
}


@pytest.fixture
def compliance(client, runtime, clock) -> dict[str, str]:
    return staff_headers(client, runtime, clock, "compliance", email=COMPLIANCE_EMAIL)


def flushed(runtime) -> Any:
    writer = runtime.services.access_log
    assert writer.flush(timeout=30), "the access log did not catch up"
    return writer


def last_id(runtime) -> int:
    flushed(runtime)
    with runtime.pool.connection() as conn:
        return int(conn.execute("SELECT coalesce(max(id), 0) FROM phi_access_log").fetchone()[0])


def rows_after(runtime, after: int) -> list[dict[str, Any]]:
    flushed(runtime)
    with runtime.pool.connection() as conn:
        cursor = conn.execute("SELECT * FROM phi_access_log WHERE id > %s ORDER BY id", (after,))
        names = [column.name for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def seed(runtime, entries: list[dict[str, Any]]) -> None:
    """Entries written through the service's own writer (as the endpoints would)."""
    for fields in entries:
        runtime.services.access_log.record(
            AccessRecord(
                **{
                    "role": "scheduler",
                    "resource": "appointment",
                    "resource_id": str(uuid4()),
                    "action": "read",
                    "outcome": "allowed",
                    "request_id": "seeded",
                    "client_address": "10.0.0.9",
                    **fields,
                }
            )
        )
    flushed(runtime)


P1, P2 = uuid4(), uuid4()
DAY = T0 - timedelta(days=3)


@pytest.fixture
def seeded(runtime) -> None:
    """Three days ago: 12 reads, an hour apart, alternating patients and actors."""
    seed(
        runtime,
        [
            {
                "at": DAY + timedelta(hours=n),
                "actor_id": f"staff-{n % 3}",
                "patient_id": P1 if n % 2 == 0 else P2,
                "resource_id": f"r{n}",
            }
            for n in range(12)
        ],
    )


def items(response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    return response.json()["items"]


def test_compliance_filters_by_patient_actor_and_time_newest_first(
    client, compliance, seeded, runtime
):
    by_patient = items(client.get(PATH, headers=compliance, params={"patient_id": str(P1)}))
    assert [i["resource_id"] for i in by_patient] == ["r10", "r8", "r6", "r4", "r2", "r0"]
    first = by_patient[0]
    assert set(first) == {
        "id",
        "at",
        "actor_id",
        "role",
        "patient_id",
        "resource",
        "resource_id",
        "action",
        "outcome",
        "request_id",
        "client_address",
        "reason",
    }
    assert first["patient_id"] == str(P1)
    assert first["actor_id"] == "staff-1"
    assert first["client_address"] == "10.0.0.9"

    by_actor = items(client.get(PATH, headers=compliance, params={"actor_id": "staff-0"}))
    assert [i["resource_id"] for i in by_actor] == ["r9", "r6", "r3", "r0"]

    window = {
        "from": (DAY + timedelta(hours=2)).isoformat(),
        "to": (DAY + timedelta(hours=5)).isoformat(),  # exclusive
    }
    in_window = items(client.get(PATH, headers=compliance, params=window))
    assert [i["resource_id"] for i in in_window] == ["r4", "r3", "r2"]

    # An offset other than UTC means the same instant; filters combine.
    new_york = {"from": "2026-11-27T06:00:00-05:00", "to": "2026-11-27T09:00:00-05:00"}
    both = items(client.get(PATH, headers=compliance, params={**new_york, "patient_id": str(P2)}))
    assert [i["resource_id"] for i in both] == ["r1"]
    only_from = items(
        client.get(
            PATH,
            headers=compliance,
            params={"from": (DAY + timedelta(hours=10)).isoformat(), "actor_id": "staff-2"},
        )
    )
    assert [i["resource_id"] for i in only_from] == ["r11"]


def test_pages_with_before_id_cover_everything_once(client, compliance, runtime):
    seed(
        runtime,
        [
            # Many reads share an instant: the pages must still neither skip nor repeat.
            {"at": DAY + timedelta(minutes=n // 4), "actor_id": "staff", "patient_id": P1}
            for n in range(25)
        ],
    )
    expected = [i for i, _ in flushed(runtime).search(patient_id=P1, limit=1000)]
    seen, pages, before = [], [], None
    while True:
        params: dict[str, Any] = {"patient_id": str(P1), "limit": 10}
        if before is not None:
            params["before_id"] = before
        response = client.get(PATH, headers=compliance, params=params)
        page = items(response)
        pages.append(len(page))
        seen.extend(i["id"] for i in page)
        before = response.json()["next_before_id"]
        if before is None:
            break
    assert pages == [10, 10, 5]
    assert seen == expected
    # A page that ends exactly at the last entry says so (the window leaves out the
    # entries of the reads above, which are newer).
    window = {"patient_id": str(P1), "to": (DAY + timedelta(hours=1)).isoformat()}
    exact = client.get(PATH, headers=compliance, params={**window, "limit": 25})
    assert exact.json()["next_before_id"] is None
    short = client.get(PATH, headers=compliance, params={**window, "limit": 24})
    assert short.json()["next_before_id"] == expected[23]


def test_reading_the_log_is_logged_once_and_not_shown_to_itself(
    client, compliance, seeded, runtime
):
    before = last_id(runtime)
    response = client.get(
        PATH,
        headers={**compliance, "X-Request-ID": "audit-read-1"},
        params={"patient_id": str(P1), "actor_id": "staff-0"},
    )
    assert [i["resource_id"] for i in items(response)] == ["r6", "r0"]
    (row,) = rows_after(runtime, before)
    assert row["resource"] == "access_log"
    assert row["actor_id"] == COMPLIANCE_ID
    assert row["role"] == "compliance"
    assert row["patient_id"] == P1
    assert row["action"] == "read"
    assert row["outcome"] == "allowed"
    assert row["request_id"] == "audit-read-1"
    assert f"patient_id={P1}" in row["resource_id"]
    assert "actor_id=staff-0" in row["resource_id"]
    # The next read by this officer finds the first one.
    mine = items(client.get(PATH, headers=compliance, params={"actor_id": COMPLIANCE_ID}))
    assert [i["request_id"] for i in mine if i["resource"] == "access_log"] == ["audit-read-1"]


@pytest.mark.parametrize("role", ["scheduler", "admin", "billing", "integration"])
def test_other_staff_roles_are_refused(client, runtime, clock, role):
    headers = staff_headers(client, runtime, clock, role)
    response = client.get(PATH, headers=headers, params={"patient_id": str(P1)})
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"


def test_patients_are_refused_and_strangers_must_sign_in(client, runtime):
    patient = register(client, "nosy@example.org")
    before = last_id(runtime)
    assert client.get(PATH, headers=patient, params={"patient_id": str(P1)}).status_code == 403
    anonymous = client.get(PATH, params={"patient_id": str(P1)})
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"] == "Bearer"
    assert [row for row in rows_after(runtime, before) if row["resource"] == "access_log"] == []


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "at least one of patient_id, actor_id, from or to"),
        ({"limit": "50"}, "at least one of"),
        ({"from": "2026-11-30T12:00:00"}, "from must be an ISO-8601 instant with a UTC offset"),
        ({"to": "yesterday"}, "to must be an ISO-8601 instant"),
        ({"from": "2026-11-30"}, "from must be"),
        # An unencoded "+" arrives as a space: the message says how to write it.
        ({"from": "2026-11-30T12:00:00 01:00"}, "%2B"),
        (
            {"from": "2026-11-30T12:00:00Z", "to": "2026-11-30T11:59:59Z"},
            "from must not be after to",
        ),
        ({"patient_id": "not-a-uuid"}, "patient_id"),
        ({"actor_id": "a", "limit": "0"}, "limit"),
        ({"actor_id": "a", "limit": "1001"}, "limit"),
        ({"actor_id": "a", "before_id": "0"}, "before_id"),
        ({"actor_id": "a", "before_id": str(2**63)}, "before_id"),
    ],
)
def test_bad_queries_get_422_with_a_clear_message(client, compliance, runtime, params, message):
    before = last_id(runtime)
    response = client.get(PATH, headers=compliance, params=params)
    assert response.status_code == 422, response.text
    assert response.json()["code"] in ("invalid_query", "validation_error")
    assert message in response.json()["detail"]
    assert rows_after(runtime, before) == []  # nothing was read, nothing is logged


def test_limit_caps_the_page_at_1000_and_defaults_to_100(client, compliance, runtime):
    seed(
        runtime,
        [
            {"at": DAY + timedelta(seconds=n), "actor_id": "busy", "patient_id": None}
            for n in range(1001)
        ],
    )
    default = client.get(PATH, headers=compliance, params={"actor_id": "busy"}).json()
    assert len(default["items"]) == 100
    assert default["next_before_id"] == default["items"][-1]["id"]
    biggest = client.get(PATH, headers=compliance, params={"actor_id": "busy", "limit": 1000})
    assert len(biggest.json()["items"]) == 1000
    assert biggest.json()["next_before_id"] is not None


# --- every read of patient data: exactly one row ------------------------------------------


def _permissions(route: APIRoute) -> set[Permission]:
    found, stack = set(), list(route.dependant.dependencies)
    while stack:
        dependant = stack.pop()
        permission = getattr(dependant.call, "permission", None)
        if permission is not None:
            found.add(permission)
        stack.extend(dependant.dependencies)
    return found


def patient_data_reads(app) -> set[str]:
    # Routes of included routers come through their contexts (FastAPI ≥ 0.16x no longer
    # copies them into ``app.routes``), with their full paths.
    return {
        context.path
        for context in iter_route_contexts(app.routes)
        if isinstance(context.route, APIRoute)
        and "GET" in (context.methods or set())
        and _permissions(context.route) & PATIENT_DATA
    }


@pytest.fixture
def world(client, runtime, clock) -> dict[str, Any]:
    """A patient with a booking, another patient, a scheduler and a compliance officer."""
    patient = register(client, "pat@example.org")
    other = register(client, "other@example.org")
    types, locations = catalog_ids(client)
    booked = client.post(
        "/v1/appointments",
        headers=patient,
        json={
            "appointment_type_id": types["ct-head"],
            "location_id": locations["riverside"],
            "start": "2026-12-01T09:00:00-05:00",
        },
    )
    assert booked.status_code == 201, booked.text
    patient_id = client.get("/v1/patients/me", headers=patient).json()["id"]
    ris_id = runtime.services.registry.record_patient_from_ris(
        identifiers=[("CENTRE", "AUDIT-MRN-1")],
        given_name="Ris",
        family_name="Known",
        birth_date=date(1970, 7, 7),
        phone=None,
        update_demographics=True,
        actor=system_actor(source="hl7-inbound"),
    )
    return {
        "ris_id": ris_id,
        "patient": patient,
        "patient_actor": str(Account.create_id("pat@example.org")),
        "patient_id": UUID(patient_id),
        "other": other,
        "other_actor": str(Account.create_id("other@example.org")),
        "appointment_id": booked.json()["id"],
        "location_id": locations["riverside"],
        "scheduler": staff_headers(client, runtime, clock, "scheduler"),
        "scheduler_actor": str(Account.create_id("scheduler@staff.example.org")),
        "compliance": staff_headers(client, runtime, clock, "compliance", email=COMPLIANCE_EMAIL),
        "compliance_actor": COMPLIANCE_ID,
    }


class Read(NamedTuple):
    """One call of a read endpoint and the access-log row it must leave."""

    route: str
    caller: str  # a key of the world fixture: whose headers
    path: str
    params: dict[str, str]
    actor: str  # a key of the world fixture: the expected actor id
    role: str
    patient: UUID | None
    resource: str
    resource_id: str
    outcome: str = "allowed"


def read_cases(w: dict[str, Any]) -> list[Read]:
    appointment, patient_id = w["appointment_id"], w["patient_id"]
    one_day = {"start": "2026-12-01T00:00:00-05:00", "end": "2026-12-02T00:00:00-05:00"}
    return [
        Read(
            "/v1/patients/me", "patient", "/v1/patients/me", {}, "patient_actor", "patient",
            patient_id, "patient", str(patient_id),
        ),
        Read(
            "/v1/appointments", "patient", "/v1/appointments", {}, "patient_actor", "patient",
            patient_id, "appointment", "*",
        ),
        Read(
            "/v1/appointments/{appointment_id}", "patient", f"/v1/appointments/{appointment}",
            {}, "patient_actor", "patient", patient_id, "appointment", appointment,
        ),
        Read(
            "/v1/me/orders", "patient", "/v1/me/orders", {}, "patient_actor", "patient",
            patient_id, "order", "*",
        ),
        Read(
            "/v1/me/results", "patient", "/v1/me/results", {}, "patient_actor", "patient",
            patient_id, "result", "*",
        ),
        Read(
            "/v1/me/notifications", "patient", "/v1/me/notifications", {}, "patient_actor",
            "patient", patient_id, "notification", "*",
        ),
        Read(
            "/v1/me/notification-preferences", "patient", "/v1/me/notification-preferences",
            {}, "patient_actor", "patient", patient_id, "notification_preferences",
            str(patient_id),
        ),
        Read(
            "/v1/audit/patients/{patient_id}/communications", "compliance",
            f"/v1/audit/patients/{patient_id}/communications", {}, "compliance_actor",
            "compliance", patient_id, "communications", "*",
        ),
        # Someone else's appointment: refused (404), and logged as such.
        Read(
            "/v1/appointments/{appointment_id}", "other", f"/v1/appointments/{appointment}",
            {}, "other_actor", "patient", patient_id, "appointment", appointment,
            "denied_or_missing",
        ),
        Read(
            "/v1/staff/appointments", "scheduler", "/v1/staff/appointments",
            {"location_id": w["location_id"], **one_day}, "scheduler_actor", "scheduler",
            None, "appointment_list", w["location_id"],
        ),
        Read(
            "/v1/staff/appointments/{appointment_id}", "scheduler",
            f"/v1/staff/appointments/{appointment}", {}, "scheduler_actor", "scheduler",
            patient_id, "appointment", appointment,
        ),
        Read(
            "/v1/staff/patients", "scheduler", "/v1/staff/patients",
            {"identifier": "CENTRE|AUDIT-MRN-1"}, "scheduler_actor", "scheduler", w["ris_id"],
            "patient_search", str(w["ris_id"]),
        ),
        Read(
            "/v1/staff/patients/{patient_id}", "scheduler", f"/v1/staff/patients/{patient_id}",
            {}, "scheduler_actor", "scheduler", patient_id, "patient", str(patient_id),
        ),
        Read(
            "/v1/staff/patients/{patient_id}/notification-preferences", "scheduler",
            f"/v1/staff/patients/{patient_id}/notification-preferences", {}, "scheduler_actor",
            "scheduler", patient_id, "notification_preferences", str(patient_id),
        ),
        Read(
            PATH, "compliance", PATH, {"patient_id": str(patient_id)}, "compliance_actor",
            "compliance", patient_id, "access_log", f"patient_id={patient_id}",
        ),
        Read(
            "/v1/audit/alerts", "compliance", "/v1/audit/alerts",
            {"from": "2026-11-01T00:00:00Z"}, "compliance_actor", "compliance", None,
            "alerts", "from=2026-11-01T00:00:00+00:00",
        ),
    ]  # fmt: skip


def test_every_api_read_of_patient_data_logs_exactly_one_row(client, runtime, world):
    cases = read_cases(world)
    # A new endpoint that shows patient data fails here until it has a case.
    assert patient_data_reads(client.app)
    assert patient_data_reads(client.app) <= {case.route for case in cases}
    problems = []
    for n, case in enumerate(cases):
        before = last_id(runtime)
        request_id = f"read-{n}"
        response = client.get(
            case.path,
            params=case.params,
            headers={**world[case.caller], "X-Request-ID": request_id},
        )
        expected_status = 200 if case.outcome == "allowed" else 404
        assert response.status_code == expected_status, (case.route, response.text)
        rows = rows_after(runtime, before)
        if len(rows) != 1:
            problems.append(f"{case.caller} GET {case.route}: {len(rows)} rows")
            continue
        (row,) = rows
        got = tuple(
            row[k] for k in ("actor_id", "role", "patient_id", "resource", "outcome", "request_id")
        )
        want = (
            world[case.actor],
            case.role,
            case.patient,
            case.resource,
            case.outcome,
            request_id,
        )
        if got != want or row["action"] != "read" or case.resource_id not in row["resource_id"]:
            problems.append(f"{case.caller} GET {case.route}: {got} {row['resource_id']}")
    assert problems == []
