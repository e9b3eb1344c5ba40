"""Linking people to the RIS's records: staff find a patient the RIS sent us, give them
an activation code, and the patient creates their account on that record, or links the
account they have (the two records merge, nothing lost). Wrong, expired, used or
superseded codes and other birth dates all get the same answer, and count toward the
lockout."""

import re
from datetime import date, datetime, timedelta
from uuid import UUID

import psycopg
import pytest

from application.base import Position
from domain.context import system_actor
from domain.location import Location
from tests.support import (
    RIS_BIRTH,
    audit_rows,
    book,
    catalog_ids,
    register,
    ris_patient,
    settle,
    staff_headers,
)

pytestmark = pytest.mark.integration

BIRTH = RIS_BIRTH
PASSWORD = "correct horse battery staple"
CODE = re.compile(r"^[2-9A-HJKMNP-TV-Z]{4}-[2-9A-HJKMNP-TV-Z]{4}-[2-9A-HJKMNP-TV-Z]{4}$")


def caught_up(runtime) -> None:
    registry = runtime.services.registry
    head = registry.recorder.max_notification_id()
    assert runtime.services.sync.wait(Position(registry.name, head))


def issue(client, desk, patient_id: str) -> str:
    response = client.post(f"/v1/staff/patients/{patient_id}/activation-codes", headers=desk)
    assert response.status_code == 201, response.text
    return response.json()["code"]


def register_with(client, code: str, email: str, birth_date: date = BIRTH):
    return client.post(
        "/v1/patients/register",
        json={
            "email": email,
            "password": PASSWORD,
            "activation_code": code,
            "birth_date": birth_date.isoformat(),
        },
    )


def sign_in(client, email: str) -> dict[str, str]:
    token = client.post("/v1/auth/token", data={"username": email, "password": PASSWORD})
    assert token.status_code == 200, token.text
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


@pytest.fixture
def desk(client, runtime, clock):
    return staff_headers(client, runtime, clock, "scheduler")


def test_staff_find_a_ris_patient_by_identifier_and_by_name_and_birth_date(client, runtime, desk):
    patient_id = ris_patient(runtime)
    by_mrn = client.get(
        "/v1/staff/patients", headers=desk, params={"identifier": "CENTRE|MRN-ANA-1"}
    )
    assert by_mrn.status_code == 200, by_mrn.text
    assert by_mrn.json()["items"] == [
        {
            "id": patient_id,
            "given_name": "Ana",
            "family_name": "López",
            "birth_date": "1985-03-04",
            "administrative_sex": "F",
            "identifiers": [{"authority": "CENTRE", "value": "MRN-ANA-1"}],
            "has_account": False,
        }
    ]
    # Names match whatever their case and accents; the given name narrows it down.
    by_name = client.get(
        "/v1/staff/patients",
        headers=desk,
        params={"family_name": "LOPEZ", "given_name": "ana", "birth_date": "1985-03-04"},
    )
    assert [p["id"] for p in by_name.json()["items"]] == [patient_id]
    other_given = client.get(
        "/v1/staff/patients",
        headers=desk,
        params={"family_name": "lópez", "given_name": "Eva", "birth_date": "1985-03-04"},
    )
    assert other_given.json()["items"] == []
    other_day = client.get(
        "/v1/staff/patients",
        headers=desk,
        params={"family_name": "lópez", "birth_date": "1985-03-05"},
    )
    assert other_day.json()["items"] == []
    runtime.services.access_log.flush()
    assert [row[1] for row in audit_rows(runtime.url, patient_id)] == [
        "patient_search",
        "patient_search",
    ]


def test_a_search_needs_an_identifier_or_a_family_name_and_birth_date(client, desk):
    for params in (
        {},
        {"family_name": "López"},
        {"birth_date": "1985-03-04"},
        {"identifier": "MRN-ANA-1"},
    ):
        response = client.get("/v1/staff/patients", headers=desk, params=params)
        assert response.status_code == 422, params
        assert response.json()["code"] == "invalid_query"


def test_the_name_index_keeps_no_name_in_clear(client, runtime, desk):
    ris_patient(runtime, family="Quixotewright")

    with psycopg.connect(runtime.url) as conn:
        keys = [row[0] for row in conn.execute("SELECT lookup_key FROM rm_patient_lookup")]
    assert keys
    assert all(re.fullmatch("[0-9a-f]{64}", key) for key in keys)
    assert not any("quixotewright" in key.lower() or "1985" in key for key in keys)


def test_a_patient_registers_on_the_ris_record_with_a_code(client, runtime, desk):
    patient_id = ris_patient(runtime)
    code = issue(client, desk, patient_id)
    assert CODE.match(code)

    created = register_with(client, code, "ana@example.org")
    assert created.status_code == 201, created.text
    assert created.json() == {"id": patient_id}  # no second record
    me = client.get("/v1/patients/me", headers=sign_in(client, "ana@example.org"))
    assert me.json()["id"] == patient_id
    assert (me.json()["family_name"], me.json()["email"]) == ("López", "ana@example.org")
    found = client.get(
        "/v1/staff/patients", headers=desk, params={"identifier": "CENTRE|MRN-ANA-1"}
    )
    assert found.json()["items"][0]["has_account"] is True
    # The code worked once.
    again = register_with(client, code, "ana.again@example.org")
    assert again.status_code == 400
    assert again.json()["code"] == "activation_failed"


def test_every_failure_is_the_same_answer(client, runtime, clock, desk):
    patient_id = ris_patient(runtime)
    first = issue(client, desk, patient_id)
    latest = issue(client, desk, patient_id)  # the first one is useless now
    answers = [
        register_with(client, "2222-3333-4444", "a@example.org"),  # no such code
        register_with(client, latest, "b@example.org", BIRTH + timedelta(days=1)),
        register_with(client, first, "c@example.org"),  # superseded
    ]
    clock.advance(timedelta(days=14, seconds=1))
    answers.append(register_with(client, latest, "d@example.org"))  # expired
    assert {(a.status_code, a.json()["code"], a.json()["detail"]) for a in answers} == {
        (400, "activation_failed", "the activation code or birth date is not valid")
    }


def test_wrong_codes_count_toward_the_lockout(client, runtime, desk):
    patient_id = ris_patient(runtime)
    code = issue(client, desk, patient_id)
    statuses = [
        register_with(client, f"2222-3333-{n:04d}".replace("0", "2"), "x@example.org").status_code
        for n in range(6)
    ]
    assert statuses == [400] * 6
    # Locked out now, even with the right code.
    locked = register_with(client, code, "ana@example.org")
    assert locked.status_code == 429
    assert locked.json()["code"] == "too_many_attempts"


def test_an_existing_account_links_and_both_records_keep_their_appointments(client, runtime, desk):
    patient_id = ris_patient(runtime)
    types, locations = catalog_ids(client)
    # The RIS's record has an appointment booked by the front desk...
    ris_booking = runtime.services.scheduling.book(
        patient_id=UUID(patient_id),
        appointment_type_id=UUID(types["xr-chest"]),
        location_id=Location.create_id("riverside"),
        start=datetime.fromisoformat("2026-12-01T10:00:00-05:00"),
        actor=system_actor(source="test"),
    )
    # ... and the patient booked one through the portal before linking.
    own = register(client, "ana.own@example.org")
    own_booking = book(client, own, types, locations, "riverside", "2026-12-01T09:00:00-05:00")
    own_id = client.get("/v1/patients/me", headers=own).json()["id"]
    code = issue(client, desk, patient_id)

    # The registered birth date (1980-02-29) is not the RIS's: refused, the same answer.
    wrong = client.post(
        "/v1/me/activation", headers=own, json={"code": code, "birth_date": "1980-02-29"}
    )
    assert (wrong.status_code, wrong.json()["code"]) == (400, "activation_failed")
    linked = client.post(
        "/v1/me/activation", headers=own, json={"code": code, "birth_date": BIRTH.isoformat()}
    )
    assert linked.status_code == 200, linked.text
    assert linked.json()["patient_id"] == patient_id
    # The old session ended (its token named the merged record); the new one works.
    assert client.get("/v1/patients/me", headers=own).status_code == 401
    fresh = {"Authorization": f"Bearer {linked.json()['tokens']['access_token']}"}
    assert client.get("/v1/patients/me", headers=fresh).json()["id"] == patient_id
    mine = client.get("/v1/appointments", headers=fresh)
    assert {a["id"] for a in mine.json()} == {own_booking["id"], str(ris_booking.appointment.id)}
    # The merged record answers as the survivor; its appointment is the survivor's.
    assert runtime.services.registry.patient(UUID(own_id)).merged_into
    one = client.get(f"/v1/appointments/{own_booking['id']}", headers=fresh)
    assert one.status_code == 200
    # Used: a second link is refused.
    again = client.post(
        "/v1/me/activation", headers=fresh, json={"code": code, "birth_date": BIRTH.isoformat()}
    )
    assert again.status_code == 400


def test_linking_keeps_the_choices_made_on_the_account_before(client, runtime, desk):
    # Given a patient who turned e-mail off and chose Spanish before linking their account
    patient_id = ris_patient(runtime)
    own = register(client, "ana.prefs@example.org")
    prefs = "/v1/me/notification-preferences"
    document = client.get(prefs, headers=own).json()
    document["channels"]["email"]["enabled"] = False
    document["language"] = "es"
    assert client.put(prefs, headers=own, json=document).status_code == 200
    code = issue(client, desk, patient_id)

    # When they link it to the centre's record, which never asked them
    linked = client.post(
        "/v1/me/activation", headers=own, json={"code": code, "birth_date": BIRTH.isoformat()}
    )
    assert linked.status_code == 200, linked.text

    # Then the centre's record keeps their choices: no e-mail, in Spanish
    fresh = {"Authorization": f"Bearer {linked.json()['tokens']['access_token']}"}
    now = client.get(prefs, headers=fresh).json()
    email = now["channels"]["email"]
    assert (email["enabled"], email["source"]) == (False, "merge")
    assert now["language"] == "es"


def test_staff_outside_the_patients_centre_get_404(client, runtime, clock):
    types, locations = catalog_ids(client)
    patient = register(client, "seen.at.riverside@example.org")
    book(client, patient, types, locations, "riverside", "2026-12-01T09:00:00-05:00")
    client.get("/v1/appointments", headers=patient)  # read models caught up
    patient_id = client.get("/v1/patients/me", headers=patient).json()["id"]
    lakeshore = staff_headers(
        client,
        runtime,
        clock,
        "scheduler",
        email="lakeshore.desk@example.org",
        centres=[locations["lakeshore"]],
    )
    assert client.get(f"/v1/staff/patients/{patient_id}", headers=lakeshore).status_code == 404
    refused = client.post(f"/v1/staff/patients/{patient_id}/activation-codes", headers=lakeshore)
    assert refused.status_code == 404
    searched = client.get(
        "/v1/staff/patients",
        headers=lakeshore,
        params={"family_name": "Patient", "birth_date": "1980-02-29"},
    )
    assert searched.json()["items"] == []
    # A RIS patient booked nowhere yet belongs to no centre: any desk may reach them.
    ris_id = ris_patient(runtime)
    assert client.get(f"/v1/staff/patients/{ris_id}", headers=lakeshore).status_code == 200


def test_admins_list_staff_accounts_without_secrets(client, runtime, clock):
    staff_headers(client, runtime, clock, "scheduler")
    admin = staff_headers(client, runtime, clock, "admin")
    register(client, "not.staff@example.org")
    listed = client.get("/v1/staff/accounts", headers=admin)
    assert listed.status_code == 200, listed.text
    items = listed.json()["items"]
    assert [(i["email"], i["role"]) for i in items] == [
        ("admin@staff.example.org", "admin"),
        ("scheduler@staff.example.org", "scheduler"),
    ]
    assert set(items[0]) == {"id", "email", "role", "centres", "disabled", "second_factor_enrolled"}
    assert all(i["second_factor_enrolled"] for i in items)


def test_the_day_list_and_one_appointment_say_who_the_patient_is(client, runtime, desk):
    patient_id = ris_patient(runtime)
    code = issue(client, desk, patient_id)
    assert register_with(client, code, "ana@example.org").status_code == 201
    ana = sign_in(client, "ana@example.org")
    types, locations = catalog_ids(client)
    booked = book(client, ana, types, locations, "riverside", "2026-12-01T09:00:00-05:00")
    settle(runtime)  # the staff day list is read without a consistency token
    day = client.get(
        "/v1/staff/appointments",
        headers=desk,
        params={
            "location_id": locations["riverside"],
            "start": "2026-12-01T00:00:00Z",
            "end": "2026-12-02T00:00:00Z",
        },
    )
    assert day.status_code == 200, day.text
    [listed] = [a for a in day.json() if a["id"] == booked["id"]]
    assert listed["patient_id"] == patient_id
    assert listed["patient"] == {
        "id": patient_id,
        "given_name": "Ana",
        "family_name": "López",
        "birth_date": "1985-03-04",
        "mrn": {"authority": "CENTRE", "value": "MRN-ANA-1"},
    }
    one = client.get(f"/v1/staff/appointments/{booked['id']}", headers=desk)
    assert one.json()["patient"]["mrn"]["value"] == "MRN-ANA-1"
    details = client.get(f"/v1/staff/patients/{patient_id}", headers=desk)
    assert details.json()["identifiers"] == [{"authority": "CENTRE", "value": "MRN-ANA-1"}]


def test_a_patient_sets_their_administrative_sex(client):
    headers = register(client, "sex@example.org")
    assert client.get("/v1/patients/me", headers=headers).json()["administrative_sex"] == ""
    changed = client.patch("/v1/patients/me", headers=headers, json={"administrative_sex": "O"})
    assert changed.status_code == 200, changed.text
    assert client.get("/v1/patients/me", headers=headers).json()["administrative_sex"] == "O"
    refused = client.patch("/v1/patients/me", headers=headers, json={"administrative_sex": "X"})
    assert refused.status_code == 422
