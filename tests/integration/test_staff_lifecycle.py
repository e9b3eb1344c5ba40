"""A staff account's life through the API: disabled, then enabled again; an admin may not
disable themself; the front desk records a no-show; a closure is removed again."""

from datetime import date, datetime
from uuid import UUID

import pytest

from domain.location import Location
from domain.resource import Resource
from tests.integration.signing_in import bearer, desk, desk_email, sign_in_with_code
from tests.integration.test_staff_catalog import BASE, US_RIVERSIDE, slot_times
from tests.support import book, catalog_ids, register, staff_headers

pytestmark = pytest.mark.integration

SCHEDULER = "scheduler@staff.example.org"


def account_id(runtime, email: str) -> UUID:
    return runtime.services.registry.account_by_email(email).id


def test_a_disabled_account_enabled_again_signs_in_and_works(client, runtime, clock):
    # Given an admin and a scheduler who was disabled
    admin = staff_headers(client, runtime, clock, "admin")
    staff_headers(client, runtime, clock, "scheduler")
    scheduler_id = account_id(runtime, SCHEDULER)
    path = f"/v1/staff/accounts/{scheduler_id}"
    assert client.post(f"{path}/disable", headers=admin, json={"reason": "left"}).status_code == 200
    assert sign_in_with_code(client, runtime, clock, SCHEDULER).status_code == 401

    # When the admin enables the account again
    enabled = client.post(f"{path}/enable", headers=admin)

    # Then it reads back enabled, and the scheduler signs in and works again
    assert enabled.status_code == 200, enabled.text
    assert enabled.json()["disabled"] is False
    assert client.get(path, headers=admin).json()["disabled"] is False
    assert not runtime.services.registry.account(scheduler_id).disabled
    signed_in = sign_in_with_code(client, runtime, clock, SCHEDULER)
    assert signed_in.status_code == 200, signed_in.text
    listing = client.get(
        "/v1/staff/appointments",
        headers=bearer(signed_in.json()),
        params={
            "location_id": str(Location.create_id("riverside")),
            "start": "2026-12-01T00:00:00Z",
            "end": "2026-12-02T00:00:00Z",
        },
    )
    assert listing.status_code == 200, listing.text
    events = list(runtime.services.registry.events.get(scheduler_id))
    assert [type(e).__name__ for e in events[-2:]] == ["Disabled", "Enabled"]
    assert events[-1].meta["role"] == "admin"


def test_enabling_an_account_that_is_not_disabled_changes_nothing(client, runtime, clock):
    admin = staff_headers(client, runtime, clock, "admin")
    staff_headers(client, runtime, clock, "scheduler")
    scheduler_id = account_id(runtime, SCHEDULER)
    before = len(list(runtime.services.registry.events.get(scheduler_id)))

    enabled = client.post(f"/v1/staff/accounts/{scheduler_id}/enable", headers=admin)

    assert (enabled.status_code, enabled.json()["disabled"]) == (200, False)
    assert len(list(runtime.services.registry.events.get(scheduler_id))) == before


def test_only_an_admin_enables_and_a_patient_account_is_not_staff(client, runtime, clock):
    admin = staff_headers(client, runtime, clock, "admin")
    scheduler = staff_headers(client, runtime, clock, "scheduler")
    staff_headers(client, runtime, clock, "billing")
    billing_id = account_id(runtime, "billing@staff.example.org")
    client.post(f"/v1/staff/accounts/{billing_id}/disable", headers=admin, json={"reason": "x"})

    refused = client.post(f"/v1/staff/accounts/{billing_id}/enable", headers=scheduler)
    register(client, "pat@example.org")
    patient = client.post(
        f"/v1/staff/accounts/{account_id(runtime, 'pat@example.org')}/enable", headers=admin
    )

    assert refused.status_code == 403
    assert runtime.services.registry.account(billing_id).disabled
    assert (patient.status_code, patient.json()["code"]) == (404, "not_found")


def test_an_admin_cannot_disable_their_own_account(client, runtime, clock):
    # Given a signed-in admin
    admin = staff_headers(client, runtime, clock, "admin")
    admin_id = account_id(runtime, "admin@staff.example.org")
    before = len(list(runtime.services.registry.events.get(admin_id)))

    # When they try to disable their own account
    refused = client.post(
        f"/v1/staff/accounts/{admin_id}/disable", headers=admin, json={"reason": "oops"}
    )

    # Then it is refused, nothing is recorded and their session still works
    assert refused.status_code == 422, refused.text
    assert refused.json()["code"] == "own_account"
    assert not runtime.services.registry.account(admin_id).disabled
    assert len(list(runtime.services.registry.events.get(admin_id))) == before
    assert client.get(f"/v1/staff/accounts/{admin_id}", headers=admin).json()["disabled"] is False


def test_the_front_desk_records_a_no_show_which_frees_the_time(client, runtime, clock):
    # Given a booking at Riverside on Tuesday at 09:00 New York time
    types, locations = catalog_ids(client)
    patient = register(client, "noshow@example.org")
    booked = book(client, patient, types, locations, "riverside", "2026-12-01T09:00:00-05:00")
    path = f"/v1/staff/appointments/{booked['id']}"
    before_start = desk(client, runtime, clock, "riverside")
    too_early = client.post(f"{path}/no-show", headers=before_start, json={"reason": "absent"})
    assert (too_early.status_code, too_early.json()["code"]) == (409, "invalid_transition")

    # When the desk records a no-show twenty minutes after the start
    clock.set(datetime.fromisoformat("2026-12-01T09:20:00-05:00"))
    signed_in = sign_in_with_code(client, runtime, clock, desk_email("riverside"))
    riverside_desk = bearer(signed_in.json())
    lakeshore_desk = desk(client, runtime, clock, "lakeshore")
    elsewhere = client.post(f"{path}/no-show", headers=lakeshore_desk, json={"reason": "absent"})
    marked = client.post(f"{path}/no-show", headers=riverside_desk, json={"reason": "did not come"})

    # Then the appointment is a no-show with the reason, for staff and for the patient,
    # and its time is free on the resource's calendar
    assert elsewhere.status_code == 404
    assert marked.status_code == 200, marked.text
    assert (marked.json()["status"], marked.json()["reason"]) == ("no_show", "did not come")
    assert client.get(path, headers=riverside_desk).json()["status"] == "no_show"
    patient_again = client.post(
        "/v1/auth/token",
        data={"username": "noshow@example.org", "password": "correct horse battery staple"},
    ).json()
    mine = client.get(f"/v1/appointments/{booked['id']}", headers=bearer(patient_again)).json()
    assert mine["status"] == "no_show"
    calendar = runtime.services.scheduling.resource_day(
        UUID(booked["resource_id"]), date(2026, 12, 1)
    )
    assert calendar is not None
    assert booked["id"] not in calendar.reservations
    again = client.post(f"{path}/no-show", headers=riverside_desk, json={"reason": "again"})
    assert (again.status_code, again.json()["code"]) == (409, "invalid_transition")
    no_reason = client.post(f"{path}/no-show", headers=riverside_desk, json={"reason": ""})
    assert no_reason.status_code == 422


def test_a_closure_removed_again_reads_back_and_brings_the_slots_back(client, runtime, clock):
    # Given a scheduler who closed the Riverside ultrasound on a Thursday
    scheduler = staff_headers(client, runtime, clock, "scheduler")
    resource_path = f"{BASE}/resources/{US_RIVERSIDE}"
    closed = client.post(
        f"{resource_path}/closures",
        headers=scheduler,
        json={"date": "2026-12-03", "reason": "Inspection"},
    )
    assert closed.status_code == 200, closed.text
    assert client.get(resource_path, headers=scheduler).json()["closures"] == [
        {"date": "2026-12-03", "reason": "Inspection"}
    ]
    assert slot_times(client, runtime, closed, "us-abdomen", "riverside", "2026-12-03") == []

    # When the closure is removed
    removed = client.delete(f"{resource_path}/closures/2026-12-03", headers=scheduler)

    # Then the resource reads back open that day, in the API, the write model and search
    assert removed.status_code == 200, removed.text
    assert removed.json()["outcome"] == "revised"
    assert removed.json()["resource"]["closures"] == []
    assert client.get(resource_path, headers=scheduler).json()["closures"] == []
    resource = runtime.services.catalog.resource(Resource.create_id(US_RIVERSIDE))
    assert resource.spec["closures"] == []
    offered = slot_times(client, runtime, removed, "us-abdomen", "riverside", "2026-12-03")
    assert offered[0] == "08:00"
    assert offered[-1] == "16:30"
    assert len(offered) == 18
    gone = client.delete(f"{resource_path}/closures/2026-12-03", headers=scheduler)
    assert (gone.status_code, gone.json()["code"]) == (404, "not_found")
