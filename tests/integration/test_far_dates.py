"""Far-off dates through the API (issue 9, finding 6): every instant a route accepts lies
in a sane range (years 1900..2100, offsets within ±14:00) or is refused 422 with a code,
never a 500 or a dropped connection; a booking is held within its exam's horizon, and
the slot search offers nothing beyond it."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from application.ports import RateLimiter
from domain.appointment_type import AppointmentType
from domain.context import system_actor
from tests.support import catalog_ids, demo_specs, post_booking, register, staff_headers

pytestmark = pytest.mark.integration

FAR_OFFSET = "9999-12-31T00:00:00+23:59"  # from the red-team report
FAR_FUTURE = "9999-12-31T09:00:00Z"
FAR_PAST = "0001-01-01T00:00:00Z"
ONE_DAY_IN = "2026-12-02T09:00:00-05:00"  # a slot of the 24-hour Riverside CT


@pytest.fixture
def ids(client):
    return catalog_ids(client)


def book(client, headers, ids, start, exam="ct-head", location="riverside"):
    return post_booking(client, headers, start, exam, location, ids)


def slots(client, ids, start, end, exam="ct-head"):
    types, locations = ids
    return client.get(
        "/v1/slots",
        params={
            "appointment_type_id": types[exam],
            "location_id": locations["riverside"],
            "start": start,
            "end": end,
        },
    )


def refused(response, code: str) -> str:
    assert response.status_code == 422, response.text
    assert response.json()["code"] == code, response.text
    return response.json()["detail"]


@pytest.mark.parametrize("start", [FAR_FUTURE, FAR_PAST, FAR_OFFSET, "2026-12-02T09:00:00-14:01"])
def test_a_booking_far_off_or_with_an_impossible_offset_is_refused_422(client, ids, start):
    headers = register(client, "far@example.org")

    detail = refused(book(client, headers, ids, start), "out_of_range")

    assert "1900" in detail or "14:00" in detail
    assert client.get("/v1/appointments", headers=headers).json() == []


@pytest.mark.parametrize("start", [FAR_PAST, FAR_FUTURE, FAR_OFFSET])
def test_a_reschedule_to_a_far_date_is_refused_and_the_booking_stays(client, ids, start):
    # Given a booking
    headers = register(client, "move@example.org")
    booked = book(client, headers, ids, ONE_DAY_IN)
    assert booked.status_code == 201, booked.text

    # When it is moved to a far-off date
    moved = client.post(
        f"/v1/appointments/{booked.json()['id']}/reschedule",
        headers=headers,
        json={"start": start},
    )

    # Then that is refused, and the booking is where it was
    refused(moved, "out_of_range")
    mine = client.get(f"/v1/appointments/{booked.json()['id']}", headers=headers)
    assert mine.json()["start"] == booked.json()["start"]


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (FAR_OFFSET, "9999-12-31T12:00:00Z"),
        ("2026-12-01T00:00:00Z", FAR_OFFSET),
        (FAR_PAST, "0001-01-02T00:00:00Z"),
        ("2101-01-01T00:00:00Z", "2101-01-02T00:00:00Z"),
    ],
)
def test_a_slot_search_with_far_dates_is_refused_422(client, ids, start, end):
    refused(slots(client, ids, start, end), "out_of_range")


def test_a_staff_day_list_with_far_dates_is_refused_422(client, runtime, clock, ids):
    headers = staff_headers(client, runtime, clock, "scheduler")
    _, locations = ids

    answer = client.get(
        "/v1/staff/appointments",
        headers=headers,
        params={"location_id": locations["riverside"], "start": FAR_OFFSET, "end": FAR_FUTURE},
    )

    refused(answer, "out_of_range")


@pytest.mark.parametrize("name", ["from", "to"])
def test_the_audit_search_refuses_far_dates(client, runtime, clock, name):
    headers = staff_headers(client, runtime, clock, "compliance")

    for value in (FAR_OFFSET, FAR_PAST, FAR_FUTURE):
        detail = refused(
            client.get("/v1/audit/access", headers=headers, params={name: value}),
            "out_of_range",
        )
        assert detail.startswith(name)


def test_a_staff_catalog_block_in_year_9999_is_refused(client, runtime, clock):
    headers = staff_headers(client, runtime, clock, "admin")

    answer = client.post(
        "/v1/staff/catalog/resources/riverside-ct-1/blocks",
        headers=headers,
        json={"start": "9999-12-31T08:00:00", "end": "9999-12-31T09:00:00", "reason": "x"},
    )

    assert "2100" in refused(answer, "out_of_range")


# The booking horizon ------------------------------------------------------------------


def test_a_booking_beyond_the_default_horizon_of_a_year_is_refused_with_how_far_one_can_book(
    client, ids
):
    # Given the demo catalog, whose exams name no horizon (the clock is 2026-11-30)
    headers = register(client, "ahead@example.org")

    # When a patient books well within 2100 but more than 365 days ahead
    late = book(client, headers, ids, "2027-12-15T09:00:00-05:00")

    # Then it is refused, saying how far ahead one can book; a year ahead is still fine
    detail = refused(late, "beyond_booking_horizon")
    assert "365 days" in detail
    assert "2027-11-30" in detail
    assert book(client, headers, ids, "2027-11-15T09:00:00-05:00").status_code == 201


def test_a_reschedule_beyond_the_horizon_is_refused(client, ids):
    headers = register(client, "later@example.org")
    booked = book(client, headers, ids, ONE_DAY_IN)
    assert booked.status_code == 201, booked.text

    moved = client.post(
        f"/v1/appointments/{booked.json()['id']}/reschedule",
        headers=headers,
        json={"start": "2028-06-01T09:00:00-04:00"},
    )

    refused(moved, "beyond_booking_horizon")


def test_the_slot_search_offers_nothing_beyond_the_horizon(client, ids, clock):
    horizon_end = clock.now() + timedelta(days=365)

    # A search across the horizon stops there; one wholly beyond it finds nothing
    across = slots(client, ids, "2027-11-25T00:00:00Z", "2027-12-05T00:00:00Z")
    beyond = slots(client, ids, "2027-12-10T00:00:00Z", "2027-12-20T00:00:00Z")

    assert across.status_code == 200, across.text
    starts = [datetime.fromisoformat(slot["start"]) for slot in across.json()]
    assert starts
    assert max(starts) < horizon_end
    assert max(starts) > horizon_end - timedelta(hours=1)  # offered right up to it
    assert beyond.status_code == 200
    assert beyond.json() == []


def test_an_exam_s_own_horizon_holds_bookings_and_slots(client, runtime, ids):
    # Given the CT head exam with a horizon of 14 days
    specs = demo_specs()
    for spec in specs.appointment_types:
        if spec["code"] == "ct-head":
            spec["booking_horizon_days"] = 14
    change = runtime.services.catalog.apply(specs, system_actor(source="test"))
    assert change.position is not None
    assert runtime.services.sync.wait(change.position)
    headers = register(client, "soon@example.org")

    # When a patient books it 20 days ahead, and CT abdomen (no horizon) the same day
    refusal = book(client, headers, ids, "2026-12-20T09:00:00-05:00")
    other = book(client, headers, ids, "2026-12-20T09:00:00-05:00", exam="ct-abdomen-pelvis")

    # Then the first is refused and the other booked; no CT head slot is offered there
    assert "14 days" in refused(refusal, "beyond_booking_horizon")
    assert other.status_code == 201, other.text
    found = slots(client, ids, "2026-12-19T00:00:00Z", "2026-12-21T00:00:00Z")
    assert found.status_code == 200
    assert found.json() == []
    exam = runtime.services.catalog.appointment_type(AppointmentType.create_id("ct-head"))
    assert exam.booking_horizon_days == 14


# Any instant, never a server error ------------------------------------------------------

OFFSETS = st.one_of(
    st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1),
    st.sampled_from([-24 * 60 + 1, -14 * 60, 14 * 60, 14 * 60 + 1, 24 * 60 - 1, 0]),
)
MOMENTS = st.one_of(
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59)),
    st.datetimes(min_value=datetime(2026, 11, 1), max_value=datetime(2028, 1, 31)),
    st.sampled_from([datetime(1, 1, 1), datetime(9999, 12, 31, 23, 59, 59)]),
)


def written(moment: datetime, offset_minutes: int) -> str:
    return moment.replace(tzinfo=timezone(timedelta(minutes=offset_minutes))).isoformat()


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    start=MOMENTS,
    start_offset=OFFSETS,
    length=st.sampled_from([timedelta(hours=1), timedelta(days=3), timedelta(days=40)]),
    end_offset=OFFSETS,
)
def test_no_slot_search_answers_a_server_error(
    client, ids, start, start_offset, length, end_offset
):
    latest = datetime(9999, 12, 31, 23, 59)
    end = start + length if latest - start > length else latest
    answer = slots(client, ids, written(start, start_offset), written(end, end_offset))

    assert answer.status_code in (200, 422), answer.text
    if answer.status_code == 422:
        assert set(answer.json()) == {"code", "detail"}
        if not (1900 <= start.year <= 2100 and abs(start_offset) <= 14 * 60):
            assert answer.json()["code"] == "out_of_range"


class Unlimited(RateLimiter):
    def hit(self, bucket: str, key: str, limit: int, window_seconds: int, now: datetime) -> float:
        return 0


@pytest.fixture
def patient(client, runtime):
    # The hourly booking budget is lifted (it is tested on its own), so that it does not
    # answer in place of the validation under test.
    runtime.services.rate_limiter = Unlimited()
    return register(client, "hypothesis@example.org")


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(start=MOMENTS, offset=OFFSETS, reschedule=st.booleans())
def test_no_booking_or_reschedule_answers_a_server_error(
    client, ids, clock, patient, start, offset, reschedule
):
    # Given a patient with a booking (and maybe more); when they book or move one to any
    # instant at all; then the answer is a booking or a 4xx with a code, never a 5xx
    if reschedule:
        first = book(client, patient, ids, (clock.now() + timedelta(days=2)).isoformat())
        assert first.status_code in (201, 409), first.text
        mine = client.get("/v1/appointments", headers=patient).json()
        answer = client.post(
            f"/v1/appointments/{mine[0]['id']}/reschedule",
            headers=patient,
            json={"start": written(start, offset)},
        )
    else:
        answer = book(client, patient, ids, written(start, offset))

    assert answer.status_code < 500, answer.text
    assert answer.status_code in (200, 201, 409, 422), answer.text
    if answer.status_code >= 400:
        assert set(answer.json()) == {"code", "detail"}
    if start.year > 2100 or start.year < 1900 or abs(offset) > 14 * 60:
        assert answer.json()["code"] == "out_of_range"
    elif start.replace(tzinfo=UTC) > clock.now() + timedelta(days=367):
        assert answer.json()["code"] == "beyond_booking_horizon"


def test_an_old_catalog_without_horizons_loads_with_the_specs_it_always_had():
    # The demo catalog names no horizon: its specs carry no such key (no new revision).
    assert all("booking_horizon_days" not in spec for spec in demo_specs().appointment_types)
