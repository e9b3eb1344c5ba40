"""Booking edges through the API: an Idempotency-Key reused with another body, exams
that cross the location's local midnight, the local day versus the UTC day, and a
reschedule to another location (and time zone)."""

from datetime import date
from uuid import UUID

import pytest

from api.consistency import HEADER
from application.base import Position
from domain.location import Location
from domain.resource import Resource
from tests.integration.signing_in import desk
from tests.support import catalog_ids, post_booking, register, staff_headers

pytestmark = pytest.mark.integration

RIVERSIDE_CT = Resource.create_id("riverside-ct-1")  # open 24 hours, every day


@pytest.fixture
def ids(client):
    return catalog_ids(client)


def book(client, headers, ids, exam, location, start, key=None):
    headers = {**headers, **({"Idempotency-Key": key} if key else {})}
    return post_booking(client, headers, start, exam, location, ids)


def slot_starts(client, runtime, ids, after, exam, location, start, end) -> list[str]:
    """Slot starts offered in [start, end), once the read models caught up with ``after``."""
    assert runtime.services.sync.wait(Position.parse(after.headers[HEADER]))
    types, locations = ids
    found = client.get(
        "/v1/slots",
        params={
            "appointment_type_id": types[exam],
            "location_id": locations[location],
            "start": start,
            "end": end,
        },
    )
    assert found.status_code == 200, found.text
    return [slot["start"] for slot in found.json()]


def holders(runtime, resource_id: UUID, day: date) -> dict:
    calendar = runtime.services.scheduling.resource_day(resource_id, day)
    return dict(calendar.reservations) if calendar else {}


# Idempotency-Key ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exam", "location", "start"),
    [
        ("ct-head", "riverside", "2026-12-01T09:30:00-05:00"),  # another time
        ("ct-head", "lakeshore", "2026-12-01T09:00:00-06:00"),  # another place
        ("ct-abdomen-pelvis", "riverside", "2026-12-01T09:00:00-05:00"),  # another exam
    ],
)
def test_a_key_reused_with_another_body_is_refused_and_the_first_booking_stays(
    client, ids, exam, location, start
):
    # Given a booking made with an Idempotency-Key
    headers = register(client, "ivy@example.org")
    first = book(client, headers, ids, "ct-head", "riverside", "2026-12-01T09:00:00-05:00", "k-1")
    assert first.status_code == 201, first.text

    # When the same key comes with another body
    reused = book(client, headers, ids, exam, location, start, "k-1")

    # Then it is refused, and the patient still has the first booking only, unchanged
    assert reused.status_code == 409, reused.text
    assert reused.json()["code"] == "idempotency_key_reused"
    mine = client.get("/v1/appointments", headers=headers).json()
    assert mine == [first.json()]


def test_the_same_key_and_body_answer_the_same_booking_even_written_another_way(client, ids):
    headers = register(client, "jon@example.org")
    first = book(client, headers, ids, "ct-head", "riverside", "2026-12-01T09:00:00-05:00", "k-2")
    # The same instant, written in UTC.
    again = book(client, headers, ids, "ct-head", "riverside", "2026-12-01T14:00:00Z", "k-2")
    other_key = book(
        client, headers, ids, "ct-head", "riverside", "2026-12-01T10:00:00-05:00", "k-3"
    )

    assert (first.status_code, again.status_code, other_key.status_code) == (201, 201, 201)
    assert again.json() == first.json()
    assert other_key.json()["id"] != first.json()["id"]
    assert len(client.get("/v1/appointments", headers=headers).json()) == 2


def test_a_retry_after_a_reschedule_answers_the_moved_booking(client, ids):
    # The retry of the first request is still that request, though the booking moved since.
    headers = register(client, "kit@example.org")
    first = book(client, headers, ids, "ct-head", "riverside", "2026-12-01T09:00:00-05:00", "k-4")
    moved = client.post(
        f"/v1/appointments/{first.json()['id']}/reschedule",
        headers=headers,
        json={"start": "2026-12-01T11:00:00-05:00"},
    )
    assert moved.status_code == 200, moved.text

    retried = book(client, headers, ids, "ct-head", "riverside", "2026-12-01T09:00:00-05:00", "k-4")

    assert retried.status_code == 201, retried.text
    assert retried.json() == moved.json()


def test_two_patients_may_use_the_same_key(client, ids):
    one = register(client, "one@example.org")
    two = register(client, "two@example.org")
    first = book(client, one, ids, "ct-head", "riverside", "2026-12-01T09:00:00-05:00", "same")
    second = book(client, two, ids, "ct-head", "riverside", "2026-12-01T09:15:00-05:00", "same")
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["id"] != second.json()["id"]


# Local midnight -------------------------------------------------------------------------


def test_the_last_slot_before_local_midnight_holds_one_day_and_off_grid_times_are_refused(
    client, runtime, ids
):
    # Given the 24-hour CT at Riverside (New York), whose slots step from local midnight
    headers = register(client, "nat@example.org")

    # When a 30-minute exam is asked for at 23:45, which would run past midnight
    off_grid = book(
        client, headers, ids, "ct-abdomen-pelvis", "riverside", "2026-12-01T23:45:00-05:00"
    )
    # Then it is refused as a time no slot starts at, and no calendar holds anything
    assert (off_grid.status_code, off_grid.json()["code"]) == (422, "not_a_slot")
    for day in (date(2026, 12, 1), date(2026, 12, 2)):
        assert holders(runtime, RIVERSIDE_CT, day) == {}

    # When the last slot of Tuesday is booked instead
    booked = book(
        client, headers, ids, "ct-abdomen-pelvis", "riverside", "2026-12-01T23:30:00-05:00"
    )
    assert booked.status_code == 201, booked.text
    appointment = booked.json()
    assert (appointment["start"], appointment["end"]) == (
        "2026-12-01T23:30:00-05:00",
        "2026-12-02T00:00:00-05:00",
    )
    assert UUID(appointment["resource_id"]) == RIVERSIDE_CT
    # Then only Tuesday's calendar holds it, and the short slots it overlaps are gone
    assert list(holders(runtime, RIVERSIDE_CT, date(2026, 12, 1))) == [appointment["id"]]
    assert holders(runtime, RIVERSIDE_CT, date(2026, 12, 2)) == {}
    around = slot_starts(
        client,
        runtime,
        ids,
        booked,
        "ct-head",
        "riverside",
        "2026-12-01T23:00:00-05:00",
        "2026-12-02T00:30:00-05:00",
    )
    assert around == [
        "2026-12-01T23:00:00-05:00",
        "2026-12-01T23:15:00-05:00",
        "2026-12-02T00:00:00-05:00",
        "2026-12-02T00:15:00-05:00",
    ]

    # When it is cancelled, Tuesday is free again
    cancelled = client.post(
        f"/v1/appointments/{appointment['id']}/cancel", headers=headers, json={"reason": "ill"}
    )
    assert cancelled.status_code == 200
    assert holders(runtime, RIVERSIDE_CT, date(2026, 12, 1)) == {}
    again = slot_starts(
        client,
        runtime,
        ids,
        cancelled,
        "ct-head",
        "riverside",
        "2026-12-01T23:30:00-05:00",
        "2026-12-02T00:00:00-05:00",
    )
    assert again == ["2026-12-01T23:30:00-05:00", "2026-12-01T23:45:00-05:00"]


def test_an_evening_exam_belongs_to_the_local_day_not_the_utc_day(client, runtime, clock, ids):
    # Given an exam at 20:00 in New York on Tuesday, which is 01:00 UTC on Wednesday
    headers = register(client, "ola@example.org")
    booked = book(client, headers, ids, "ct-head", "riverside", "2026-12-01T20:00:00-05:00")
    assert booked.status_code == 201, booked.text
    appointment_id = booked.json()["id"]

    # Then the calendar of the local day (Tuesday) holds it, Wednesday's does not
    assert list(holders(runtime, RIVERSIDE_CT, date(2026, 12, 1))) == [appointment_id]
    assert holders(runtime, RIVERSIDE_CT, date(2026, 12, 2)) == {}
    # and the front desk finds it in Tuesday's day list, asked in local time
    assert runtime.services.sync.wait(Position.parse(booked.headers[HEADER]))
    desk = staff_headers(client, runtime, clock, "scheduler")

    def day_list(start, end):
        listed = client.get(
            "/v1/staff/appointments",
            headers=desk,
            params={
                "location_id": str(Location.create_id("riverside")),
                "start": start,
                "end": end,
            },
        )
        assert listed.status_code == 200, listed.text
        return [a["id"] for a in listed.json()]

    assert day_list("2026-12-01T00:00:00-05:00", "2026-12-02T00:00:00-05:00") == [appointment_id]
    assert day_list("2026-12-02T00:00:00-05:00", "2026-12-03T00:00:00-05:00") == []
    # while the UTC day it falls on is Wednesday
    assert day_list("2026-12-02T00:00:00Z", "2026-12-03T00:00:00Z") == [appointment_id]


# Reschedule to another location -------------------------------------------------------


def test_a_reschedule_to_another_location_moves_zone_resource_and_calendars(
    client, runtime, clock, ids
):
    # Given a chest X-ray at Riverside (New York), Tuesday 09:00
    headers = register(client, "pia@example.org")
    _, locations = ids
    booked = book(client, headers, ids, "xr-chest", "riverside", "2026-12-01T09:00:00-05:00")
    assert booked.status_code == 201, booked.text
    before = booked.json()

    # When the patient moves it to Lakeshore (Chicago), Wednesday 10:00 local time
    moved = client.post(
        f"/v1/appointments/{before['id']}/reschedule",
        headers=headers,
        json={
            "start": "2026-12-02T10:00:00-06:00",
            "location_id": locations["lakeshore"],
            "reason": "closer to work",
        },
    )

    # Then it keeps its identity and takes Lakeshore's zone, X-ray room and calendar
    assert moved.status_code == 200, moved.text
    after = moved.json()
    assert after["id"] == before["id"]
    assert (after["location_id"], after["timezone"]) == (locations["lakeshore"], "America/Chicago")
    assert (after["start"], after["end"]) == (
        "2026-12-02T10:00:00-06:00",
        "2026-12-02T10:15:00-06:00",
    )
    assert UUID(after["resource_id"]) == Resource.create_id("lakeshore-xr-1")
    assert holders(runtime, UUID(before["resource_id"]), date(2026, 12, 1)) == {}
    assert list(holders(runtime, Resource.create_id("lakeshore-xr-1"), date(2026, 12, 2))) == [
        after["id"]
    ]
    assert client.get(f"/v1/appointments/{after['id']}", headers=headers).json() == after
    # The old time is offered again at Riverside; the new one is gone at Lakeshore.
    riverside = slot_starts(
        client,
        runtime,
        ids,
        moved,
        "xr-chest",
        "riverside",
        "2026-12-01T09:00:00-05:00",
        "2026-12-01T09:15:00-05:00",
    )
    assert riverside == ["2026-12-01T09:00:00-05:00"]
    lakeshore = slot_starts(
        client,
        runtime,
        ids,
        moved,
        "xr-chest",
        "lakeshore",
        "2026-12-02T10:00:00-06:00",
        "2026-12-02T10:30:00-06:00",
    )
    assert lakeshore == ["2026-12-02T10:15:00-06:00"]
    # Riverside's front desk no longer sees it; Lakeshore's does.
    riverside_desk = desk(client, runtime, clock, "riverside")
    lakeshore_desk = desk(client, runtime, clock, "lakeshore")
    path = f"/v1/staff/appointments/{after['id']}"
    assert client.get(path, headers=riverside_desk).status_code == 404
    assert client.get(path, headers=lakeshore_desk).json()["start"] == after["start"]


def test_a_reschedule_to_a_location_without_that_exam_is_refused_and_changes_nothing(
    client, runtime, ids
):
    headers = register(client, "quinn@example.org")
    _, locations = ids
    booked = book(client, headers, ids, "xr-chest", "riverside", "2026-12-01T09:00:00-05:00")
    assert booked.status_code == 201, booked.text

    refused = client.post(
        f"/v1/appointments/{booked.json()['id']}/reschedule",
        headers=headers,
        json={"start": "2026-12-02T10:00:00-06:00", "location_id": locations["prairie-mobile"]},
    )

    assert (refused.status_code, refused.json()["code"]) == (422, "outside_opening_hours")
    assert client.get(f"/v1/appointments/{booked.json()['id']}", headers=headers).json() == (
        booked.json()
    )
    assert list(holders(runtime, UUID(booked.json()["resource_id"]), date(2026, 12, 1))) == [
        booked.json()["id"]
    ]
