"""Per-patient booking caps (issue 9, finding 11): a patient booking for themselves holds
at most 3 active upcoming appointments per exam type and 10 in all (409
``booking_limit_reached``), and makes at most 30 booking requests an hour (429 with
Retry-After); staff booking on a patient's behalf are not capped."""

from datetime import datetime, timedelta
from uuid import UUID

import pytest

from api.consistency import HEADER
from domain.appointment_type import AppointmentType
from domain.context import Actor
from domain.location import Location
from tests.support import catalog_ids, post_booking, register

pytestmark = pytest.mark.integration


@pytest.fixture
def ids(client):
    return catalog_ids(client)


def free_starts(client, ids, exam, day, count, after=None):
    """The first ``count`` free slot starts of ``exam`` at Riverside on ``day`` (once the
    booking answered by ``after`` shows: a search without its token may be a moment old)."""
    types, locations = ids
    token = {} if after is None else {HEADER: after.headers[HEADER]}
    found = client.get(
        "/v1/slots",
        params={
            "appointment_type_id": types[exam],
            "location_id": locations["riverside"],
            "start": f"{day}T00:00:00Z",
            "end": f"{day}T23:59:00Z",
        },
        headers=token,
    )
    assert found.status_code == 200, found.text
    starts = [slot["start"] for slot in found.json()]
    assert len(starts) >= count
    return starts[:count]


def book(client, headers, ids, exam, start):
    return post_booking(client, headers, start, exam, ids=ids)


def sign_in(client, email):
    """A fresh session (the clock moved past the last access token's life)."""
    token = client.post(
        "/v1/auth/token", data={"username": email, "password": "correct horse battery staple"}
    )
    assert token.status_code == 200, token.text
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


def booked(response):
    assert response.status_code == 201, response.text
    return response.json()


def test_the_fourth_booking_of_one_exam_is_refused_and_a_cancellation_frees_a_place(client, ids):
    # Given a patient holding three upcoming X-rays
    headers = register(client, "hoarder@example.org")
    starts = free_starts(client, ids, "xr-chest", "2026-12-02", 5)
    first, *_ = [booked(book(client, headers, ids, "xr-chest", start)) for start in starts[:3]]

    # When they book a fourth
    fourth = book(client, headers, ids, "xr-chest", starts[3])

    # Then it is refused, saying why; another exam is still fine
    assert fourth.status_code == 409, fourth.text
    assert fourth.json()["code"] == "booking_limit_reached"
    assert "3" in fourth.json()["detail"]
    assert "cancel" in fourth.json()["detail"]
    booked(
        book(
            client,
            headers,
            ids,
            "us-abdomen",
            free_starts(client, ids, "us-abdomen", "2026-12-02", 1)[0],
        )
    )

    # And once they cancel one, they may book another
    cancelled = client.post(
        f"/v1/appointments/{first['id']}/cancel", headers=headers, json={"reason": "not needed"}
    )
    assert cancelled.status_code == 200, cancelled.text
    booked(book(client, headers, ids, "xr-chest", starts[4]))


def test_the_eleventh_upcoming_booking_is_refused(client, ids):
    # Given a patient holding ten upcoming appointments: three of three exams, one more
    headers = register(client, "many@example.org")
    plan = [
        ("xr-chest", "2026-12-02", 3),
        ("us-abdomen", "2026-12-02", 3),
        ("ct-head", "2026-12-02", 3),
        ("mri-knee", "2026-12-03", 2),
    ]
    wanted = [
        (exam, start) for exam, day, n in plan for start in free_starts(client, ids, exam, day, n)
    ]
    for exam, start in wanted[:10]:
        booked(book(client, headers, ids, exam, start))

    # When they book an eleventh (of an exam they hold only one of)
    eleventh = book(client, headers, ids, *wanted[10])

    # Then it is refused for the overall cap
    assert eleventh.status_code == 409, eleventh.text
    assert eleventh.json()["code"] == "booking_limit_reached"
    assert "10" in eleventh.json()["detail"]
    assert len(client.get("/v1/appointments", headers=headers).json()) == 10


def test_past_appointments_do_not_count(client, ids, clock):
    # Given three X-rays that are over by now
    headers = register(client, "regular@example.org")
    starts = free_starts(client, ids, "xr-chest", "2026-12-02", 3)
    for start in starts:
        booked(book(client, headers, ids, "xr-chest", start))
    clock.advance(timedelta(days=3))
    headers = sign_in(client, "regular@example.org")

    # When they book another, later
    later = free_starts(client, ids, "xr-chest", "2026-12-07", 1)[0]

    # Then it is accepted
    booked(book(client, headers, ids, "xr-chest", later))


def test_staff_booking_on_a_patient_s_behalf_are_not_capped(client, runtime, ids):
    # Given a patient already at the cap for X-rays
    headers = register(client, "helped@example.org")
    starts = free_starts(client, ids, "xr-chest", "2026-12-02", 5)
    mine = [booked(book(client, headers, ids, "xr-chest", start)) for start in starts[:3]]
    patient_id = UUID(client.get("/v1/patients/me", headers=headers).json()["id"])
    assert len(mine) == 3

    # When a scheduler books two more for them
    scheduler = Actor(id="desk-1", role="scheduler", request_id="r-1", source="api")
    made = [
        runtime.services.scheduling.book(
            patient_id=patient_id,
            appointment_type_id=AppointmentType.create_id("xr-chest"),
            location_id=Location.create_id("riverside"),
            start=datetime.fromisoformat(start),
            actor=scheduler,
        )
        for start in starts[3:]
    ]

    # Then both are made, and the patient now holds five
    assert made[-1].position is not None
    assert runtime.services.sync.wait(made[-1].position)
    assert len(client.get("/v1/appointments", headers=headers).json()) == 5


def test_the_hourly_booking_budget_answers_429_per_patient(client, ids, clock):
    # Given a patient who has made 30 booking requests this hour (not slots: refused 422)
    headers = register(client, "prober@example.org")
    other = register(client, "neighbour@example.org")
    for _ in range(30):
        assert book(client, headers, ids, "xr-chest", "2026-12-02T03:00:00Z").status_code == 422

    # When they make another
    refused = book(client, headers, ids, "xr-chest", "2026-12-02T03:00:00Z")

    # Then it is 429 with Retry-After, while another patient (same address) still books
    assert refused.status_code == 429, refused.text
    assert refused.json()["code"] == "too_many_requests"
    assert 1 <= int(refused.headers["Retry-After"]) <= 3600
    start = free_starts(client, ids, "xr-chest", "2026-12-02", 1)[0]
    neighbours = book(client, other, ids, "xr-chest", start)
    booked(neighbours)

    # And the next hour, they may book again
    clock.advance(timedelta(hours=1))
    headers = sign_in(client, "prober@example.org")
    booked(
        book(
            client,
            headers,
            ids,
            "xr-chest",
            free_starts(client, ids, "xr-chest", "2026-12-02", 1, after=neighbours)[0],
        )
    )
