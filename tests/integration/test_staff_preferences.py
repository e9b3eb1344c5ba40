"""The front desk records what a patient asked for on the phone: a scheduler turns text
messages off or changes the language (source ``staff``, logged with who did it), only for
patients within their reach (404 otherwise, logged); push stays the patient's own to turn
on; billing may read, not change; a patient gets 403."""

import pytest

from domain.location import Location
from tests.support import audit_rows, book, catalog_ids, register, staff_headers

pytestmark = pytest.mark.integration

PATH = "/v1/staff/patients/{}/notification-preferences"


@pytest.fixture
def scene(client, runtime, clock):
    types, locations = catalog_ids(client)
    here = register(client, "here@example.org")
    there = register(client, "there@example.org")
    book(client, here, types, locations, "riverside", "2026-12-01T09:00:00-05:00")
    book(client, there, types, locations, "lakeshore", "2026-12-01T09:00:00-06:00")
    client.get("/v1/appointments", headers=there)  # read models caught up
    desk = staff_headers(
        client, runtime, clock, "scheduler", centres=[Location.create_id("riverside")]
    )
    patients = {
        "here": client.get("/v1/patients/me", headers=here).json()["id"],
        "there": client.get("/v1/patients/me", headers=there).json()["id"],
    }
    return desk, here, patients


def test_the_desk_turns_email_off_and_the_language_to_spanish_as_the_patient_asked(
    client, runtime, scene
):
    desk, here, patients = scene

    changed = client.patch(
        PATH.format(patients["here"]),
        headers=desk,
        json={"channels": {"email": False}, "language": "es"},
    )

    assert changed.status_code == 200, changed.text
    email = changed.json()["channels"]["email"]
    assert (email["enabled"], email["source"]) == (False, "staff")
    assert changed.json()["language"] == "es"
    # The patient sees the same, and nothing else moved.
    mine = client.get("/v1/me/notification-preferences", headers=here).json()
    assert (mine["channels"]["email"]["enabled"], mine["language"]) == (False, "es")
    assert mine["channels"]["sms"]["enabled"] is False
    runtime.services.access_log.flush()
    actions = [
        (a, r, role)
        for a, r, role, _, _ in audit_rows(runtime.settings.database_url, patients["here"])
    ]
    assert ("update", "notification_preferences", "scheduler") in actions
    # The change names who made it.
    patient = runtime.services.registry.patient_by_id(patients["here"])
    assert patient.preferences.consent("email").source == "staff"


def test_a_patient_out_of_reach_is_404_and_logged(client, runtime, scene):
    desk, _, patients = scene

    read = client.get(PATH.format(patients["there"]), headers=desk)
    changed = client.patch(
        PATH.format(patients["there"]), headers=desk, json={"channels": {"email": False}}
    )

    assert (read.status_code, changed.status_code) == (404, 404)
    runtime.services.access_log.flush()
    outcomes = [(a, r) for a, r, *_ in audit_rows(runtime.settings.database_url, patients["there"])]
    assert outcomes.count(("read", "notification_preferences")) == 2
    patient = runtime.services.registry.patient_by_id(patients["there"])
    assert patient.preferences.consent("email").source == "registration"


def test_push_is_turned_on_only_by_the_patient_and_sms_needs_a_number(client, scene):
    desk, _, patients = scene

    push = client.patch(
        PATH.format(patients["here"]), headers=desk, json={"channels": {"push": True}}
    )
    sms = client.patch(
        PATH.format(patients["here"]), headers=desk, json={"channels": {"sms": True}}
    )

    assert push.status_code == 422, push.text
    assert (sms.status_code, sms.json()["code"]) == (422, "invalid_value")


def test_billing_reads_but_does_not_change_and_a_patient_is_refused(client, runtime, clock, scene):
    _, here, patients = scene
    billing = staff_headers(client, runtime, clock, "billing")

    assert client.get(PATH.format(patients["here"]), headers=billing).status_code == 200
    patch = {"channels": {"email": False}}
    assert (
        client.patch(PATH.format(patients["here"]), headers=billing, json=patch).status_code == 403
    )
    assert client.get(PATH.format(patients["here"]), headers=here).status_code == 403
