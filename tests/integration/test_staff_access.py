"""Staff see their own centres only (404 elsewhere, logged); break-glass with a reason
opens one patient for a while and raises an alert; admins manage staff accounts."""

from datetime import timedelta
from uuid import UUID, uuid4

import pytest

from domain.location import Location
from tests.support import book, catalog_ids, register, staff_headers

pytestmark = pytest.mark.integration


def access_rows(runtime, resource_id):
    runtime.services.access_log.flush()
    with runtime.pool.connection() as conn:
        return conn.execute(
            "SELECT outcome, reason FROM phi_access_log WHERE resource_id = %s"
            " AND role <> 'patient' ORDER BY id",
            (resource_id,),
        ).fetchall()


def grants_and_alerts(runtime) -> tuple[list[tuple], list[tuple]]:
    """(account, patient, reason) of every break-glass grant and (kind, subject) of every
    alert, read from their tables."""
    with runtime.pool.connection() as conn:
        grants = conn.execute(
            "SELECT account_id::text, patient_id::text, reason FROM break_glass_grants"
            " ORDER BY granted_at"
        ).fetchall()
        alerts = conn.execute("SELECT kind, subject_id FROM alerts ORDER BY id").fetchall()
    return grants, alerts


def staff_view(client, headers, appointment_id) -> dict:
    response = client.get(f"/v1/staff/appointments/{appointment_id}", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def scene(client, runtime, clock):
    types, locations = catalog_ids(client)
    here = register(client, "here@example.org")
    there = register(client, "there@example.org")
    at_riverside = book(client, here, types, locations, "riverside", "2026-12-01T09:00:00-05:00")
    at_lakeshore = book(client, there, types, locations, "lakeshore", "2026-12-01T09:00:00-06:00")
    client.get("/v1/appointments", headers=there)  # read models caught up
    scheduler = staff_headers(
        client, runtime, clock, "scheduler", centres=[Location.create_id("riverside")]
    )
    patients = {
        "here": client.get("/v1/patients/me", headers=here).json()["id"],
        "there": client.get("/v1/patients/me", headers=there).json()["id"],
    }
    return locations, scheduler, at_riverside, at_lakeshore, patients


def test_staff_of_one_centre_cannot_read_another_centres_records(client, runtime, scene):
    locations, scheduler, at_riverside, at_lakeshore, patients = scene
    mine = client.get(f"/v1/staff/appointments/{at_riverside['id']}", headers=scheduler)
    assert mine.status_code == 200
    theirs = client.get(f"/v1/staff/appointments/{at_lakeshore['id']}", headers=scheduler)
    assert theirs.status_code == 404
    assert (
        client.get(f"/v1/staff/patients/{patients['here']}", headers=scheduler).status_code == 200
    )
    other = client.get(f"/v1/staff/patients/{patients['there']}", headers=scheduler)
    assert other.status_code == 404
    listing = client.get(
        "/v1/staff/appointments",
        headers=scheduler,
        params={
            "location_id": locations["lakeshore"],
            "start": "2026-12-01T00:00:00Z",
            "end": "2026-12-02T00:00:00Z",
        },
    )
    assert listing.status_code == 404
    assert ("denied_or_missing", "") in access_rows(runtime, at_lakeshore["id"])
    assert ("denied_or_missing", "") in access_rows(runtime, patients["there"])


def test_break_glass_opens_one_patient_for_a_while_and_raises_an_alert(
    client, runtime, clock, scene
):
    _, scheduler, _, at_lakeshore, patients = scene
    too_short = client.post(
        "/v1/staff/break-glass",
        headers=scheduler,
        json={"patient_id": patients["there"], "reason": "urgent"},
    )
    assert too_short.status_code == 422
    unknown = client.post(
        "/v1/staff/break-glass",
        headers=scheduler,
        json={"patient_id": str(uuid4()), "reason": "Patient collapsed in the waiting room"},
    )
    assert unknown.status_code == 404
    # A refused break-glass leaves no grant and no alert, and opens nothing.
    assert grants_and_alerts(runtime) == ([], [])
    assert (
        client.get(f"/v1/staff/patients/{patients['there']}", headers=scheduler).status_code == 404
    )
    granted = client.post(
        "/v1/staff/break-glass",
        headers=scheduler,
        json={
            "patient_id": patients["there"],
            "reason": "Patient collapsed in our waiting room; need prior imaging",
            "minutes": 5,
        },
    )
    assert granted.status_code == 201, granted.text
    seen = client.get(f"/v1/staff/patients/{patients['there']}", headers=scheduler)
    assert seen.status_code == 200
    assert (
        client.get(f"/v1/staff/appointments/{at_lakeshore['id']}", headers=scheduler).status_code
        == 200
    )
    reasons = [
        reason
        for outcome, reason in access_rows(runtime, patients["there"])
        if outcome == "allowed"
    ]
    assert reasons == ["Patient collapsed in our waiting room; need prior imaging"]
    grants, alerts = grants_and_alerts(runtime)
    assert [(patient, reason) for _, patient, reason in grants] == [
        (patients["there"], "Patient collapsed in our waiting room; need prior imaging")
    ]
    assert [kind for kind, _ in alerts] == ["break_glass"]

    clock.advance(timedelta(minutes=6))  # the grant ran out; the session did not
    assert (
        client.get(f"/v1/staff/patients/{patients['there']}", headers=scheduler).status_code == 404
    )


def test_break_glass_opens_another_centres_appointment_of_a_patient_seen_here_too(
    client, runtime, clock, scene
):
    locations, scheduler, _, at_lakeshore, patients = scene
    types, _ = catalog_ids(client)
    there = client.post(
        "/v1/auth/token",
        data={"username": "there@example.org", "password": "correct horse battery staple"},
    ).json()["access_token"]
    book(
        client,
        {"Authorization": f"Bearer {there}"},
        types,
        locations,
        "riverside",
        "2026-12-02T09:00:00-05:00",
    )
    path = f"/v1/staff/appointments/{at_lakeshore['id']}"
    assert client.get(path, headers=scheduler).status_code == 404
    granted = client.post(
        "/v1/staff/break-glass",
        headers=scheduler,
        json={"patient_id": patients["there"], "reason": "Comparing with the Lakeshore scan"},
    )
    assert granted.status_code == 201, granted.text
    assert client.get(path, headers=scheduler).status_code == 200


def test_billing_may_not_break_glass(client, runtime, clock, scene):
    _, _, _, _, patients = scene
    billing = staff_headers(
        client, runtime, clock, "billing", centres=[Location.create_id("riverside")]
    )
    refused = client.post(
        "/v1/staff/break-glass",
        headers=billing,
        json={"patient_id": patients["there"], "reason": "a long enough reason here"},
    )
    assert refused.status_code == 403
    # No grant, no alert: the patient of another centre stays out of reach.
    assert grants_and_alerts(runtime) == ([], [])
    assert client.get(f"/v1/staff/patients/{patients['there']}", headers=billing).status_code == 404


def test_front_desk_checks_in_and_completes(client, runtime, clock, scene):
    _, _, at_riverside, at_lakeshore, _ = scene
    clock.set(clock.now().replace(day=1, month=12, hour=13, minute=50))
    lakeshore_desk = staff_headers(
        client,
        runtime,
        clock,
        "scheduler",
        email="lakeshore.desk@staff.example.org",
        centres=[Location.create_id("lakeshore")],
    )
    before = staff_view(client, lakeshore_desk, at_lakeshore["id"])
    scheduler = staff_headers(
        client,
        runtime,
        clock,
        "scheduler",
        email="desk@staff.example.org",
        centres=[Location.create_id("riverside")],
    )
    path = f"/v1/staff/appointments/{at_riverside['id']}"
    noted = client.patch(path, headers=scheduler, json={"notes": "Interpreter: Spanish"})
    assert noted.status_code == 200, noted.text
    assert noted.json()["notes"] == "Interpreter: Spanish"
    assert client.post(f"{path}/check-in", headers=scheduler).json()["status"] == "checked_in"
    assert staff_view(client, scheduler, at_riverside["id"])["status"] == "checked_in"
    assert client.post(f"{path}/complete", headers=scheduler).json()["status"] == "completed"
    read_back = staff_view(client, scheduler, at_riverside["id"])
    assert (read_back["status"], read_back["notes"]) == ("completed", "Interpreter: Spanish")
    elsewhere = client.post(
        f"/v1/staff/appointments/{at_lakeshore['id']}/check-in", headers=scheduler
    )
    assert elsewhere.status_code == 404
    assert (
        client.patch(
            f"/v1/staff/appointments/{at_lakeshore['id']}", headers=scheduler, json={"notes": "x"}
        ).status_code
        == 404
    )
    # The refused changes changed nothing.
    assert staff_view(client, lakeshore_desk, at_lakeshore["id"]) == before


def test_admin_creates_staff_and_changes_roles_others_cannot(client, runtime, clock):
    admin = staff_headers(client, runtime, clock, "admin")
    scheduler = staff_headers(client, runtime, clock, "scheduler")
    body = {
        "email": "new.billing@example.org",
        "password": "a long staff password",
        "role": "billing",
    }
    registry = runtime.services.registry
    assert client.post("/v1/staff/accounts", headers=scheduler, json=body).status_code == 403
    assert registry.account_by_email("new.billing@example.org") is None
    created = client.post("/v1/staff/accounts", headers=admin, json=body)
    assert created.status_code == 201
    account_id = created.json()["id"]
    shown = client.get(f"/v1/staff/accounts/{account_id}", headers=admin)
    assert shown.status_code == 200, shown.text
    assert (shown.json()["email"], shown.json()["role"]) == ("new.billing@example.org", "billing")
    refused = client.post(
        f"/v1/staff/accounts/{account_id}/role", headers=scheduler, json={"role": "admin"}
    )
    assert refused.status_code == 403
    promoted = client.post(
        f"/v1/staff/accounts/{account_id}/role", headers=admin, json={"role": "compliance"}
    )
    assert promoted.status_code == 200, promoted.text
    assert promoted.json()["role"] == "compliance"
    assert client.get(f"/v1/staff/accounts/{account_id}", headers=admin).json()["role"] == (
        "compliance"
    )
    escalate = client.post(
        "/v1/staff/accounts",
        headers=admin,
        json={**body, "email": "x@example.org", "role": "patient"},
    )
    assert escalate.status_code == 422
    assert registry.account_by_email("x@example.org") is None
    # The change is an audited event with who did it.
    account = registry.account(UUID(account_id))
    events = list(runtime.services.registry.events.get(account.id))
    assert events[-1].meta["role"] == "admin"
    assert type(events[-1]).__name__ == "RoleChanged"
