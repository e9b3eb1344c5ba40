"""GET /v1/audit/alerts: the alerts break-glass grants raise, for compliance only, newest
first, each reading of them logged."""

from datetime import timedelta

import pytest

from domain.location import Location
from tests.support import T0, register, staff_headers

pytestmark = pytest.mark.integration

PATH = "/v1/audit/alerts"
REASON = "Patient collapsed in our waiting room; need prior imaging"


def break_glass(client, scheduler, patient_id: str) -> str:
    granted = client.post(
        "/v1/staff/break-glass",
        headers=scheduler,
        json={"patient_id": patient_id, "reason": REASON, "minutes": 5},
    )
    assert granted.status_code == 201, granted.text
    return str(granted.json()["id"])


@pytest.fixture
def scene(client, runtime, clock):
    patient = register(client, "far.away@example.org")
    patient_id = client.get("/v1/patients/me", headers=patient).json()["id"]
    scheduler = staff_headers(
        client, runtime, clock, "scheduler", centres=[Location.create_id("riverside")]
    )
    compliance = staff_headers(client, runtime, clock, "compliance")
    return scheduler, compliance, patient_id


def test_break_glass_grants_are_listed_newest_first_and_each_read_is_logged(
    client, runtime, clock, scene
):
    # given two break-glass grants a minute apart
    scheduler, compliance, patient_id = scene
    first = break_glass(client, scheduler, patient_id)
    clock.advance(timedelta(minutes=1))
    second = break_glass(client, scheduler, patient_id)
    # when compliance lists the alerts, one per page
    page = client.get(PATH, headers=compliance, params={"limit": 1})
    # then the newest comes first, with a link to the older one
    assert page.status_code == 200, page.text
    body = page.json()
    assert [(a["kind"], a["subject_id"]) for a in body["items"]] == [("break_glass", second)]
    older = client.get(
        PATH, headers=compliance, params={"limit": 1, "before_id": body["next_before_id"]}
    )
    assert [a["subject_id"] for a in older.json()["items"]] == [first]
    assert older.json()["next_before_id"] is None
    # and a time range leaves the earlier one out
    since = client.get(
        PATH, headers=compliance, params={"from": (T0 + timedelta(seconds=30)).isoformat()}
    )
    assert [a["subject_id"] for a in since.json()["items"]] == [second]
    # and every read is in the access log
    assert runtime.services.access_log.flush(timeout=30)
    with runtime.pool.connection() as conn:
        reads = conn.execute(
            "SELECT role, outcome FROM phi_access_log WHERE resource = 'alerts'"
        ).fetchall()
    assert reads == [("compliance", "allowed")] * 3


@pytest.mark.parametrize("role", ["scheduler", "billing", "admin", "integration"])
def test_other_staff_roles_are_refused(client, runtime, clock, role):
    headers = staff_headers(client, runtime, clock, role, email=f"{role}.alerts@example.org")
    response = client.get(PATH, headers=headers)
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"


def test_patients_and_anonymous_callers_are_refused(client):
    assert client.get(PATH).status_code == 401
    patient = register(client, "curious@example.org")
    assert client.get(PATH, headers=patient).status_code == 403


def test_a_range_that_ends_before_it_starts_is_refused(client, scene):
    _, compliance, _ = scene
    response = client.get(
        PATH,
        headers=compliance,
        params={"from": "2026-12-02T00:00:00Z", "to": "2026-12-01T00:00:00Z"},
    )
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_query"


@pytest.mark.parametrize("before_id", [2**63, 10**30])
def test_a_before_id_past_the_ids_range_is_refused_not_a_server_error(client, scene, before_id):
    # given compliance; when it pages from an id no bigint holds
    _, compliance, _ = scene
    response = client.get(PATH, headers=compliance, params={"before_id": before_id})
    # then the query is refused (it was a 500 NumericValueOutOfRange from PostgreSQL)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "validation_error"
    assert "before_id" in response.json()["detail"]
