"""The portal's booking journey through its forms: scan, place, day, time, check your
answers, booked; then moving and cancelling, and what a taken time or a second press of
the button does."""

import re
from datetime import datetime
from uuid import UUID

import pytest

from tests.support import (
    catalog_ids,
    form_token,
    portal_register,
    post_booking,
    radio_values,
    register,
)

pytestmark = pytest.mark.integration


def choose(portal, path: str, params: dict[str, str], name: str, pick: int = 0):
    """Show a step, check it rendered, and pick one of its radio values."""
    page = portal.get(path, params=params)
    assert page.status_code == 200, page.text
    values = radio_values(page.text, name)
    assert values, f"no {name} to choose on {path}"
    return page, values[pick]


def journey_to_check(portal, exam_code: str, location_code: str, day_pick: int = 1):
    """Walk the journey up to check-your-answers: the check page and the choices (the
    day is the second one offered: the first slot of today starts at the clock's very
    instant, which the booking refuses as past)."""
    types, locations = catalog_ids(portal)
    exam, location = types[exam_code], locations[location_code]
    page, _ = choose(portal, "/book", {}, "appointment_type_id")
    assert exam in radio_values(page.text, "appointment_type_id")
    chosen = {"appointment_type_id": exam}
    page, _ = choose(portal, "/book/location", chosen, "location_id")
    assert location in radio_values(page.text, "location_id")
    chosen["location_id"] = location
    _, day = choose(portal, "/book/day", chosen, "day", day_pick)
    time_page, start = choose(portal, "/book/time", {**chosen, "day": day}, "start")
    check = portal.get("/book/check", params={**chosen, "start": start})
    assert check.status_code == 200, check.text
    return check, time_page, {**chosen, "start": start}


def post_check(portal, check_page, chosen):
    key = re.search(r'name="booking_key" value="([^"]+)"', check_page.text).group(1)
    return portal.post(
        "/book/check",
        data={**chosen, "booking_key": key, "csrf_token": form_token(check_page.text)},
        follow_redirects=False,
    )


def test_a_patient_books_a_scan_through_the_pages(portal, runtime):
    # Given a patient who created an account in the portal
    portal_register(portal, "ana@example.org")

    # When they walk the journey to a chest X-ray at Lakeshore (Chicago)
    check, time_page, chosen = journey_to_check(portal, "xr-chest", "lakeshore")

    # Then the time step names the zone, and check-your-answers says what, where, when
    assert "Central Standard Time (CST)" in time_page.text
    assert "Chest X-ray, two views" in check.text
    assert "2500 Sample Drive, Chicago, IL 60000" in check.text
    assert re.search(r"\w+day \d+ \w+ 2026, \d+:\d\d (am|pm) CST", check.text)
    assert "Remove jewellery from the neck and chest" in check.text

    # When they book it
    booked = post_check(portal, check, chosen)

    # Then the confirmation page shows it, with a calendar file and what happens next
    assert booked.status_code == 303
    location = booked.headers["location"]
    appointment_id = re.fullmatch(r"/appointments/([0-9a-f-]{36})/booked", location).group(1)
    confirmation = portal.get(location)
    assert confirmation.status_code == 200
    assert "Appointment booked" in confirmation.text
    assert f"/appointments/{appointment_id}.ics" in confirmation.text
    assert "What happens next" in confirmation.text
    view = runtime.services.appointments.get(UUID(appointment_id))
    assert view.status == "booked"
    assert view.start == datetime.fromisoformat(chosen["start"])

    # And the calendar file holds the same time in UTC, the exam and the address
    ics = portal.get(f"/appointments/{appointment_id}.ics")
    assert ics.status_code == 200
    assert ics.headers["content-type"].startswith("text/calendar")
    assert f"DTSTART:{view.start.strftime('%Y%m%dT%H%M%SZ')}" in ics.text
    assert "SUMMARY:Chest X-ray\\, two views" in ics.text
    assert "2500 Sample Drive\\, Chicago" in ics.text

    # And the appointment is listed as upcoming
    listed = portal.get("/appointments")
    assert f'href="/appointments/{appointment_id}"' in listed.text


def test_the_mobile_unit_shows_where_it_is_each_day(portal):
    portal_register(portal, "mia@example.org")
    types, locations = catalog_ids(portal)
    chosen = {"appointment_type_id": types["mammo-screening"]}

    # The place step names the coach's rounds
    places = portal.get("/book/location", params=chosen)
    assert "Oak Grove Community Health Center" in places.text
    assert "Monday, Wednesday" in places.text

    # The day step names each day's site; the time step and the check page its address
    chosen["location_id"] = locations["prairie-mobile"]
    days = portal.get("/book/day", params=chosen)
    assert "At Northbrook Public Library car park" in days.text  # Tuesday 1 December
    times = portal.get("/book/time", params={**chosen, "day": "2026-12-01"})
    assert (
        "the mobile unit is at Northbrook Public Library car park, 48 Fictional Road" in times.text
    )
    start = radio_values(times.text, "start")[0]
    check = portal.get("/book/check", params={**chosen, "start": start})
    assert "48 Fictional Road, Northbrook, IL 60002" in check.text
    assert "Mobile unit: Prairie Mobile Mammography Coach" in check.text


def test_a_time_taken_meanwhile_offers_the_nearest_free_times(portal, client):
    # Given a patient on check-your-answers for a time
    portal_register(portal, "ben@example.org")
    check, _, chosen = journey_to_check(portal, "xr-chest", "lakeshore")

    # When someone else books that time first (through the API)
    other = register(client, "other@example.org")
    taken = post_booking(client, other, chosen["start"], "xr-chest", "lakeshore")
    assert taken.status_code == 201, taken.text

    # Then booking says so, with the nearest free times to choose from (not that one)
    answer = post_check(portal, check, chosen)
    assert answer.status_code == 409
    assert "That time was just taken" in answer.text
    assert 'class="error-summary"' in answer.text
    nearest = radio_values(answer.text, "start")
    assert 0 < len(nearest) <= 6
    assert chosen["start"] not in nearest


def test_pressing_book_twice_books_once(portal, runtime):
    portal_register(portal, "cy@example.org")
    check, _, chosen = journey_to_check(portal, "ct-head", "riverside")
    first = post_check(portal, check, chosen)
    second = post_check(portal, check, chosen)
    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"]
    patient_id = runtime.services.registry.account_by_email("cy@example.org").patient_id
    assert len(runtime.services.appointments.for_patient(patient_id)) == 1


def test_missing_or_wrong_answers_send_the_person_back_a_step(portal):
    portal_register(portal, "dee@example.org")
    types, locations = catalog_ids(portal)

    # No scan chosen: the scan question again, with the error summary and the message
    no_exam = portal.get("/book/location")
    assert no_exam.status_code == 422
    assert "Choose the scan you need" in no_exam.text
    assert 'href="#appointment_type_id"' in no_exam.text

    # A place without a machine for that scan (no mammography at Lakeshore)
    wrong_place = portal.get(
        "/book/day",
        params={
            "appointment_type_id": types["mammo-screening"],
            "location_id": locations["lakeshore"],
        },
    )
    assert wrong_place.status_code == 422
    assert "Choose where you want to go" in wrong_place.text

    # No day chosen
    chosen = {"appointment_type_id": types["xr-chest"], "location_id": locations["riverside"]}
    no_day = portal.get("/book/time", params=chosen)
    assert no_day.status_code == 422
    assert "Choose a day" in no_day.text


def test_a_full_day_points_to_the_next_available_one(portal):
    # Christmas Day: Riverside's X-ray room is closed
    portal_register(portal, "eve@example.org")
    types, locations = catalog_ids(portal)
    chosen = {"appointment_type_id": types["xr-chest"], "location_id": locations["riverside"]}
    page = portal.get("/book/time", params={**chosen, "day": "2026-12-25"})
    assert page.status_code == 200
    assert "There are no free times on" in page.text
    assert "Next available: Saturday 26 December" not in page.text  # closed at weekends
    assert re.search(r'day=2026-12-28">Next available: Monday 28 December', page.text)


def book_through_pages(portal, exam: str = "xr-chest", place: str = "lakeshore") -> str:
    check, _, chosen = journey_to_check(portal, exam, place)
    booked = post_check(portal, check, chosen)
    assert booked.status_code == 303, booked.text
    return booked.headers["location"].split("/")[2]


def test_a_patient_moves_an_appointment_through_the_pages(portal, runtime):
    portal_register(portal, "fay@example.org")
    appointment_id = book_through_pages(portal)
    before = runtime.services.appointments.get(UUID(appointment_id))
    base = f"/appointments/{appointment_id}/reschedule"

    # The appointment page offers to change the time; the same day and time steps follow
    shown = portal.get(f"/appointments/{appointment_id}")
    assert f'href="{base}"' in shown.text
    _, day = choose(portal, base, {}, "day", pick=2)
    _, start = choose(portal, base, {"day": day}, "start", pick=1)
    check = portal.get(base, params={"start": start})
    assert check.status_code == 200
    assert "Check your new time" in check.text

    moved = portal.post(
        base,
        data={"start": start, "csrf_token": form_token(check.text)},
        follow_redirects=False,
    )
    assert moved.status_code == 303
    assert moved.headers["location"] == f"/appointments/{appointment_id}?done=rescheduled"
    after = runtime.services.appointments.get(before.id)
    assert after.start == datetime.fromisoformat(start)
    assert after.start != before.start
    assert "Your appointment has been moved" in portal.get(moved.headers["location"]).text


def test_a_patient_cancels_an_appointment_through_the_pages(portal, runtime):
    portal_register(portal, "gus@example.org")
    appointment_id = book_through_pages(portal, "ct-head", "riverside")
    page = portal.get(f"/appointments/{appointment_id}/cancel")
    assert page.status_code == 200

    cancelled = portal.post(
        f"/appointments/{appointment_id}/cancel",
        data={"reason": "Feeling better", "csrf_token": form_token(page.text)},
        follow_redirects=False,
    )

    assert cancelled.status_code == 303
    view = runtime.services.appointments.get(UUID(appointment_id))
    assert (view.status, view.reason) == ("cancelled", "Feeling better")
    shown = portal.get(cancelled.headers["location"])
    assert "Your appointment has been cancelled" in shown.text
    assert "/cancel" not in shown.text  # nothing left to change
    again = portal.get(f"/appointments/{appointment_id}/cancel")
    assert again.status_code == 409


def test_the_booking_caps_are_the_apis(portal, runtime):
    # Given the cap of one upcoming appointment per exam type
    from application.scheduling import BookingLimits

    runtime.services.scheduling.limits = BookingLimits(per_exam_type=1, overall=10)
    portal_register(portal, "hal@example.org")
    book_through_pages(portal)

    # When a second chest X-ray is booked
    check, _, chosen = journey_to_check(portal, "xr-chest", "lakeshore", day_pick=3)
    refused = post_check(portal, check, chosen)

    # Then the check page says why, in words
    assert refused.status_code == 409
    assert "Cancel one to book another" in refused.text
