"""The patient's REST API on real PostgreSQL: register, sign in, search, book, list,
reschedule, cancel; error bodies; a patient reaches only their own appointments."""

import pytest

from tests.support import catalog_ids, post_booking, register

pytestmark = pytest.mark.integration

TUESDAY_9AM_NY = "2026-12-01T09:00:00-05:00"


def test_health_and_readiness(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["projections"] is True


def test_register_then_same_email_again_is_409(client):
    first = register(client, "ann@example.org")
    again = client.post(
        "/v1/patients/register",
        json={
            "email": "ANN@example.org ",
            "password": "another long password",
            "given_name": "Ann",
            "family_name": "Other",
            "birth_date": "1990-01-01",
        },
    )
    assert again.status_code == 409
    assert again.json() == {"code": "email_taken", "detail": again.json()["detail"]}
    # The first account is untouched: its password and profile, not the second's.
    taken = {"username": "ann@example.org", "password": "another long password"}
    assert client.post("/v1/auth/token", data=taken).status_code == 401
    assert client.get("/v1/patients/me", headers=first).json()["family_name"] == "Patient"


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("password", "short", "weak_password"),
        ("email", "not-an-email", "invalid_value"),
        ("birth_date", "2999-01-01", "invalid_value"),
        ("birth_date", "yesterday", "validation_error"),
    ],
)
def test_register_refuses_bad_input_with_a_clear_code(client, runtime, field, value, code):
    payload = {
        "email": "bob@example.org",
        "password": "long enough password",
        "given_name": "Bob",
        "family_name": "Example",
        "birth_date": "1970-05-05",
        field: value,
    }
    response = client.post("/v1/patients/register", json=payload)
    assert response.status_code == 422
    assert response.json()["code"] == code
    assert runtime.services.registry.account_by_email("bob@example.org") is None


def test_register_refuses_fields_it_does_not_know(client, runtime):
    response = client.post(
        "/v1/patients/register",
        json={
            "email": "eve@example.org",
            "password": "long enough password",
            "given_name": "Eve",
            "family_name": "Example",
            "birth_date": "1970-05-05",
            "role": "admin",
        },
    )
    assert response.status_code == 422
    assert runtime.services.registry.account_by_email("eve@example.org") is None


def test_sign_in_with_a_wrong_password_or_unknown_email_looks_the_same(client):
    register(client, "carol@example.org")
    wrong = client.post(
        "/v1/auth/token", data={"username": "carol@example.org", "password": "x" * 12}
    )
    unknown = client.post(
        "/v1/auth/token", data={"username": "nobody@example.org", "password": "x" * 12}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()


def test_token_response_shape_and_refresh_rotation(client):
    register(client, "dan@example.org")
    first = client.post(
        "/v1/auth/token",
        data={"username": "dan@example.org", "password": "correct horse battery staple"},
    ).json()
    assert {"access_token", "token_type", "expires_in", "refresh_token"} <= set(first)
    assert first["token_type"] == "bearer"
    assert 0 < first["expires_in"] <= 900
    second = client.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200
    # The used token is refused, and its reuse revokes the rotated one too.
    reused = client.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert reused.status_code == 401
    revoked = client.post(
        "/v1/auth/refresh", json={"refresh_token": second.json()["refresh_token"]}
    )
    assert revoked.status_code == 401


def test_catalog_lists_locations_and_exam_types(client):
    locations = client.get("/v1/catalog/locations").json()
    types = client.get("/v1/catalog/appointment-types").json()
    assert {loc["kind"] for loc in locations} == {"fixed", "mobile"}
    assert len({loc["timezone"] for loc in locations}) >= 2
    assert {t["modality"] for t in types} >= {"MR", "CT", "DX", "US", "MG"}
    assert all({"id", "name", "cpt", "duration_minutes", "preparation"} <= set(t) for t in types)


def test_slots_carry_the_location_offset_and_mobile_sites_change_by_day(client):
    types, locations = catalog_ids(client)
    found = client.get(
        "/v1/slots",
        params={
            "appointment_type_id": types["mammo-screening"],
            "location_id": locations["prairie-mobile"],
            "start": "2026-11-30T00:00:00Z",
            "end": "2026-12-05T00:00:00Z",
        },
    ).json()
    assert found
    assert all(slot["start"].endswith("-06:00") for slot in found)
    sites_by_day = {}
    for slot in found:
        sites_by_day.setdefault(slot["start"][:10], set()).add(slot["site"])
    assert sites_by_day["2026-12-01"] == {"Northbrook Public Library car park"}
    assert sites_by_day["2026-12-02"] == {"Oak Grove Community Health Center"}


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"start": "2026-12-01T00:00:00Z", "end": "2027-03-01T00:00:00Z"}, "invalid_query"),
        ({"start": "2026-12-02T00:00:00Z", "end": "2026-12-01T00:00:00Z"}, "invalid_query"),
        ({"start": "2026-12-01T00:00:00", "end": "2026-12-02T00:00:00"}, "validation_error"),
        ({"start": "tomorrow", "end": "2026-12-02T00:00:00Z"}, "validation_error"),
    ],
)
def test_bad_slot_ranges_get_422_with_a_clear_message(client, params, code):
    types, _ = catalog_ids(client)
    response = client.get("/v1/slots", params={"appointment_type_id": types["ct-head"], **params})
    assert response.status_code == 422
    assert response.json()["code"] == code
    assert response.json()["detail"]


def test_a_patient_changes_their_profile(client):
    headers = register(client, "fay@example.org")
    changed = client.patch(
        "/v1/patients/me", headers=headers, json={"family_name": "Moore", "phone": "+1 555 0100"}
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["family_name"], changed.json()["given_name"]) == ("Moore", "Test")
    me = client.get("/v1/patients/me", headers=headers).json()
    assert (me["family_name"], me["phone"], me["birth_date"]) == (
        "Moore",
        "+1 555 0100",
        "1980-02-29",
    )
    assert client.patch("/v1/patients/me", headers=headers, json={"phone": None}).status_code == 200
    assert client.get("/v1/patients/me", headers=headers).json()["phone"] is None
    for bad in ({"given_name": None}, {"birth_date": "2999-01-01"}, {"email": "x@example.org"}):
        refused = client.patch("/v1/patients/me", headers=headers, json=bad)
        assert refused.status_code == 422, (bad, refused.text)
    assert client.get("/v1/patients/me", headers=headers).json()["family_name"] == "Moore"
    assert client.patch("/v1/patients/me", json={"family_name": "X"}).status_code == 401


def test_book_list_reschedule_cancel(client):
    headers = register(client, "erin@example.org")
    types, locations = catalog_ids(client)
    booked = post_booking(client, headers, TUESDAY_9AM_NY, ids=(types, locations))
    assert booked.status_code == 201, booked.text
    appointment = booked.json()
    assert appointment["status"] == "booked"
    assert appointment["start"] == TUESDAY_9AM_NY
    assert appointment["end"] == "2026-12-01T09:15:00-05:00"

    # The next read reflects the write (no sleeping).
    history = client.get("/v1/appointments", headers=headers).json()
    assert [a["id"] for a in history] == [appointment["id"]]

    moved = client.post(
        f"/v1/appointments/{appointment['id']}/reschedule",
        headers=headers,
        json={"start": "2026-12-01T10:00:00-05:00", "reason": "later suits me"},
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["id"] == appointment["id"]
    assert client.get(f"/v1/appointments/{appointment['id']}", headers=headers).json()["start"] == (
        "2026-12-01T10:00:00-05:00"
    )

    # Notes for the centre change the appointment without moving it; too long is a 422.
    path = f"/v1/appointments/{appointment['id']}"
    noted = client.patch(path, headers=headers, json={"notes": "  I use a   wheelchair "})
    assert noted.status_code == 200, noted.text
    assert (noted.json()["notes"], noted.json()["start"]) == (
        "I use a wheelchair",
        "2026-12-01T10:00:00-05:00",
    )
    assert client.get(path, headers=headers).json()["notes"] == "I use a wheelchair"
    too_long = client.patch(path, headers=headers, json={"notes": "x" * 501})
    assert too_long.status_code == 422
    assert client.patch(path, headers=headers, json={}).status_code == 422
    assert client.get(path, headers=headers).json()["notes"] == "I use a wheelchair"

    # The old time is free again, the new one is taken.
    slots = client.get(
        "/v1/slots",
        params={
            "appointment_type_id": types["ct-head"],
            "location_id": locations["riverside"],
            "start": "2026-12-01T14:00:00Z",
            "end": "2026-12-01T15:15:00Z",
        },
    ).json()
    starts = {s["start"] for s in slots}
    assert TUESDAY_9AM_NY in starts
    assert "2026-12-01T10:00:00-05:00" not in starts

    cancelled = client.post(
        f"/v1/appointments/{appointment['id']}/cancel", headers=headers, json={"reason": "better"}
    )
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    again = client.post(
        f"/v1/appointments/{appointment['id']}/cancel", headers=headers, json={"reason": "again"}
    )
    assert again.status_code == 409
    assert again.json()["code"] == "invalid_transition"
    rescheduled_after_cancel = client.post(
        f"/v1/appointments/{appointment['id']}/reschedule",
        headers=headers,
        json={"start": "2026-12-01T11:00:00-05:00"},
    )
    assert rescheduled_after_cancel.status_code == 409
    assert client.patch(path, headers=headers, json={"notes": "late"}).status_code == 409
    assert client.get("/v1/appointments", headers=headers).json()[0]["status"] == "cancelled"
    # The refused changes left the cancelled appointment as it was.
    after = client.get(path, headers=headers).json()
    assert (after["start"], after["notes"], after["reason"]) == (
        "2026-12-01T10:00:00-05:00",
        "I use a wheelchair",
        "better",
    )


def test_booking_refusals(client):
    headers = register(client, "fay@example.org")
    types, locations = catalog_ids(client)

    def book(start, code="ct-head", location="riverside"):
        return client.post(
            "/v1/appointments",
            headers=headers,
            json={
                "appointment_type_id": types[code],
                "location_id": locations[location],
                "start": start,
            },
        )

    past = book("2026-11-30T06:00:00-05:00")
    assert (past.status_code, past.json()["code"]) == (422, "booking_in_past")
    closed = book("2026-12-01T03:00:00-05:00", code="xr-chest")
    assert (closed.status_code, closed.json()["code"]) == (422, "outside_opening_hours")
    lunch = book("2026-12-01T12:15:00-05:00", code="xr-chest")
    assert (lunch.status_code, lunch.json()["code"]) == (422, "outside_opening_hours")
    holiday = book("2026-12-25T10:00:00-05:00", code="xr-chest")
    assert (holiday.status_code, holiday.json()["code"]) == (422, "outside_opening_hours")
    no_offset = post_booking(client, headers, "2026-12-01T09:00:00", ids=(types, locations))
    assert (no_offset.status_code, no_offset.json()["code"]) == (422, "validation_error")
    unknown = client.post(
        "/v1/appointments",
        headers=headers,
        json={
            "appointment_type_id": "00000000-0000-0000-0000-000000000000",
            "location_id": locations["riverside"],
            "start": TUESDAY_9AM_NY,
        },
    )
    assert (unknown.status_code, unknown.json()["code"]) == (404, "not_found")


def test_idempotency_key_returns_the_first_result(client):
    headers = register(client, "gus@example.org")
    types, locations = catalog_ids(client)
    body = {
        "appointment_type_id": types["ct-head"],
        "location_id": locations["riverside"],
        "start": TUESDAY_9AM_NY,
    }
    keyed = {**headers, "Idempotency-Key": "booking-attempt-1"}
    first = client.post("/v1/appointments", headers=keyed, json=body)
    second = client.post("/v1/appointments", headers=keyed, json=body)
    assert first.status_code == 201
    assert second.status_code == 201
    assert first.json() == second.json()
    assert len(client.get("/v1/appointments", headers=headers).json()) == 1


def test_a_patient_cannot_see_or_change_someone_elses_appointment(client, runtime):
    owner = register(client, "hal@example.org")
    other = register(client, "ida@example.org")
    types, locations = catalog_ids(client)
    booked = client.post(
        "/v1/appointments",
        headers=owner,
        json={
            "appointment_type_id": types["ct-head"],
            "location_id": locations["riverside"],
            "start": TUESDAY_9AM_NY,
        },
    ).json()
    path = f"/v1/appointments/{booked['id']}"
    assert client.get(path, headers=other).status_code == 404
    assert client.post(f"{path}/cancel", headers=other, json={"reason": "x"}).status_code == 404
    assert (
        client.post(
            f"{path}/reschedule", headers=other, json={"start": "2026-12-01T11:00:00-05:00"}
        ).status_code
        == 404
    )
    assert client.patch(path, headers=other, json={"notes": "x"}).status_code == 404
    assert client.get("/v1/appointments", headers=other).json() == []
    assert client.get(path, headers=owner).json()["status"] == "booked"
    assert client.get(path, headers=owner).json()["notes"] == ""
    # The refused read is in the access log, as a denial.
    runtime.services.access_log.flush()
    with runtime.pool.connection() as conn:
        outcomes = conn.execute(
            "SELECT outcome FROM phi_access_log WHERE resource_id = %s", (booked["id"],)
        ).fetchall()
    assert ("denied_or_missing",) in outcomes


def test_endpoints_need_a_valid_token(client):
    assert client.get("/v1/appointments").status_code == 401
    bad = client.get("/v1/appointments", headers={"Authorization": "Bearer not-a-token"})
    assert bad.status_code == 401
    assert bad.json()["code"] == "invalid_token"


def test_expired_access_token_is_refused(client, clock):
    headers = register(client, "jo@example.org")
    assert client.get("/v1/appointments", headers=headers).status_code == 200
    from datetime import timedelta

    clock.advance(timedelta(minutes=16))
    expired = client.get("/v1/appointments", headers=headers)
    assert expired.status_code == 401
    assert expired.json()["code"] == "invalid_token"
