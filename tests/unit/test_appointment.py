"""Given / when / then: every appointment transition and every refusal."""

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from domain.appointment import (
    BOOKED,
    CANCELLED,
    CHECKED_IN,
    COMPLETED,
    NO_SHOW,
    Appointment,
    BookingInPastError,
    InvalidTransitionError,
    OutsideOpeningHoursError,
    ReasonRequiredError,
)
from domain.schedule import Interval

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
DAY_WINDOW = Interval(
    datetime(2026, 12, 1, 13, 0, tzinfo=UTC), datetime(2026, 12, 1, 23, 0, tzinfo=UTC)
)
META = {"actor_id": "a1", "role": "patient", "request_id": "r1", "source": "test"}


def span(hour: int, minutes: int = 30) -> Interval:
    start = datetime(2026, 12, 1, hour, 0, tzinfo=UTC)
    return Interval(start, start + timedelta(minutes=minutes))


def booked(at: Interval | None = None) -> Appointment:
    """Given a booked appointment."""
    return Appointment.book(
        id=uuid4(),
        patient_id=uuid4(),
        appointment_type_id=uuid4(),
        location_id=uuid4(),
        resource_id=uuid4(),
        span=at or span(14),
        timezone="America/New_York",
        windows=[DAY_WINDOW],
        now=NOW,
        meta=META,
    )


def new_events(appointment: Appointment) -> list[type]:
    return [type(e) for e in appointment.collect_events()]


def test_booking_records_booked_with_who_did_it():
    appointment = booked()
    events = appointment.collect_events()
    assert [type(e) for e in events] == [Appointment.Booked]
    assert events[0].meta == META
    assert appointment.status == BOOKED
    assert appointment.span == span(14)


def test_booking_in_the_past_is_refused():
    with pytest.raises(BookingInPastError):
        Appointment.book(
            id=uuid4(),
            patient_id=uuid4(),
            appointment_type_id=uuid4(),
            location_id=uuid4(),
            resource_id=uuid4(),
            span=Interval(NOW - timedelta(hours=1), NOW - timedelta(minutes=30)),
            timezone="UTC",
            windows=[Interval(NOW - timedelta(hours=5), NOW + timedelta(hours=5))],
            now=NOW,
            meta=META,
        )


def test_booking_starting_right_now_is_refused():
    with pytest.raises(BookingInPastError):
        Appointment.book(
            id=uuid4(),
            patient_id=uuid4(),
            appointment_type_id=uuid4(),
            location_id=uuid4(),
            resource_id=uuid4(),
            span=Interval(NOW, NOW + timedelta(minutes=30)),
            timezone="UTC",
            windows=[Interval(NOW - timedelta(hours=5), NOW + timedelta(hours=5))],
            now=NOW,
            meta=META,
        )


@pytest.mark.parametrize(
    "outside",
    [
        span(11),
        span(22, 90),
        Interval(DAY_WINDOW.start - timedelta(minutes=1), DAY_WINDOW.start + timedelta(minutes=29)),
    ],
)
def test_booking_outside_opening_hours_is_refused(outside):
    with pytest.raises(OutsideOpeningHoursError):
        booked(outside)


def test_booking_exactly_filling_the_window_is_allowed():
    assert booked(DAY_WINDOW).span == DAY_WINDOW


def test_reschedule_keeps_identity_and_moves_the_time():
    appointment = booked()
    identity = appointment.id
    appointment.collect_events()
    appointment.reschedule(
        location_id=appointment.location_id,
        resource_id=appointment.resource_id,
        span=span(16),
        timezone="America/New_York",
        windows=[DAY_WINDOW],
        now=NOW,
        reason="clash with work",
        meta=META,
    )
    assert new_events(appointment) == [Appointment.Rescheduled]
    assert appointment.id == identity
    assert appointment.span == span(16)
    assert appointment.status == BOOKED
    assert appointment.reschedules == 1


def test_reschedule_into_the_past_or_outside_hours_is_refused():
    appointment = booked()
    common = {
        "location_id": appointment.location_id,
        "resource_id": appointment.resource_id,
        "timezone": "UTC",
        "windows": [DAY_WINDOW],
        "now": NOW,
        "reason": "",
        "meta": META,
    }
    with pytest.raises(OutsideOpeningHoursError):
        appointment.reschedule(span=span(23), **common)
    with pytest.raises(BookingInPastError):
        appointment.reschedule(span=Interval(NOW - timedelta(hours=1), NOW), **common)


def test_reschedule_a_cancelled_appointment_is_refused():
    appointment = booked()
    appointment.cancel(reason="no longer needed", meta=META)
    with pytest.raises(InvalidTransitionError):
        appointment.reschedule(
            location_id=appointment.location_id,
            resource_id=appointment.resource_id,
            span=span(16),
            timezone="UTC",
            windows=[DAY_WINDOW],
            now=NOW,
            reason="",
            meta=META,
        )


def test_reschedule_after_it_started_is_refused():
    appointment = booked()
    with pytest.raises(InvalidTransitionError):
        appointment.reschedule(
            location_id=appointment.location_id,
            resource_id=appointment.resource_id,
            span=span(16),
            timezone="UTC",
            windows=[DAY_WINDOW],
            now=span(14).start + timedelta(minutes=5),
            reason="",
            meta=META,
        )


def test_cancel_records_the_reason():
    appointment = booked()
    appointment.collect_events()
    appointment.cancel(reason="  feeling better  ", meta=META)
    assert new_events(appointment) == [Appointment.Cancelled]
    assert appointment.status == CANCELLED
    assert appointment.reason == "feeling better"
    assert not appointment.is_active


def test_cancelling_twice_is_refused():
    appointment = booked()
    appointment.cancel(reason="first", meta=META)
    with pytest.raises(InvalidTransitionError):
        appointment.cancel(reason="second", meta=META)


def test_cancel_needs_a_reason():
    with pytest.raises(ReasonRequiredError):
        booked().cancel(reason="   ", meta=META)


def test_check_in_then_complete():
    appointment = booked()
    appointment.collect_events()
    appointment.check_in(now=span(14).start - timedelta(minutes=20), meta=META)
    assert appointment.status == CHECKED_IN
    assert appointment.is_active
    appointment.complete(meta=META)
    assert appointment.status == COMPLETED
    assert new_events(appointment) == [Appointment.CheckedIn, Appointment.Completed]


def test_check_in_too_early_is_refused():
    with pytest.raises(InvalidTransitionError):
        booked().check_in(now=span(14).start - timedelta(days=2), meta=META)


def test_completing_without_check_in_is_refused():
    with pytest.raises(InvalidTransitionError):
        booked().complete(meta=META)


def test_cancelling_a_checked_in_or_completed_appointment_is_refused():
    appointment = booked()
    appointment.check_in(now=span(14).start, meta=META)
    with pytest.raises(InvalidTransitionError):
        appointment.cancel(reason="x", meta=META)
    appointment.complete(meta=META)
    with pytest.raises(InvalidTransitionError):
        appointment.cancel(reason="x", meta=META)


def test_no_show_only_after_the_start():
    appointment = booked()
    with pytest.raises(InvalidTransitionError):
        appointment.mark_no_show(now=span(14).start - timedelta(minutes=1), reason="", meta=META)
    appointment.mark_no_show(
        now=span(14).start + timedelta(minutes=15), reason="did not come", meta=META
    )
    assert appointment.status == NO_SHOW
    assert not appointment.is_active


def test_no_show_of_a_cancelled_appointment_is_refused():
    appointment = booked()
    appointment.cancel(reason="x", meta=META)
    with pytest.raises(InvalidTransitionError):
        appointment.mark_no_show(now=span(15).start, reason="", meta=META)
