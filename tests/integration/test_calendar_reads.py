"""Calendars kept folded per process (``application.calendar_reads``) on the real event
store: a process that kept a calendar sees what another process booked on it since, a
command's changes to the calendar it was handed never reach the kept one, and what is
kept matches a fresh read of every event."""

from copy import deepcopy
from datetime import datetime, timedelta
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest

from application.scheduling import Scheduling, SchedulingLog
from domain.appointment_type import AppointmentType
from domain.context import Actor
from domain.location import Location
from domain.resource_day import ResourceDay, SlotUnavailableError
from domain.schedule import Interval

pytestmark = pytest.mark.integration

# Riverside's single CT is open around the clock; its abdomen-pelvis exams take 30 minutes.
FIRST = datetime(2026, 12, 16, 9, 0, tzinfo=ZoneInfo("America/New_York"))
CT = AppointmentType.create_id("ct-abdomen-pelvis")
RIVERSIDE = Location.create_id("riverside")


def book(scheduling, n: int):
    patient = uuid4()
    return scheduling.book(
        patient_id=patient,
        appointment_type_id=CT,
        location_id=RIVERSIDE,
        start=FIRST + timedelta(minutes=30 * n),
        actor=Actor(id=str(patient), role="patient", source="test"),
    ).appointment


def test_a_kept_calendar_catches_up_with_another_process_and_hands_out_copies(runtime):
    scheduling = runtime.services.scheduling
    first = book(scheduling, 0)
    other_process = SchedulingLog(dict(scheduling.env))  # its own kept calendars
    try:
        day = FIRST.date()
        kept = other_process.resource_day(first.resource_id, day)
        assert kept is not None
        assert set(kept.reservations) == {str(first.id)}

        second = book(scheduling, 1)  # written after the other process kept the day
        caught_up = other_process.resource_day(first.resource_id, day)
        assert caught_up is not None
        assert set(caught_up.reservations) == {str(first.id), str(second.id)}

        # A command changes the copy it was handed, never what is kept.
        span = Interval(FIRST + timedelta(hours=3), FIRST + timedelta(hours=3, minutes=30))
        caught_up.reserve("someone-else", span, {"actor_id": "test"})
        again = other_process.resource_day(first.resource_id, day)
        assert again is not None
        assert "someone-else" not in again.reservations
        assert again.version == caught_up.version - 1

        fresh = other_process.find(ResourceDay.create_id(first.resource_id, day), ResourceDay)
        assert fresh is not None
        assert (fresh.version, fresh.reservations) == (again.version, again.reservations)
    finally:
        other_process.close()


def test_a_slot_another_process_booked_after_this_one_kept_the_day_is_refused(runtime):
    """This process kept the day; another books a slot meanwhile: booking that slot
    here is refused (no double booking), and the next free one is booked."""
    scheduling = runtime.services.scheduling
    book(scheduling, 4)  # this process now keeps the day
    other = Scheduling(
        dict(scheduling.env), catalog=scheduling.catalog, clock=runtime.services.clock
    )
    try:
        rival = book(other, 5)
    finally:
        other.close()
    with pytest.raises(SlotUnavailableError):
        book(scheduling, 5)
    mine = book(scheduling, 6)
    day = scheduling.resource_day(mine.resource_id, FIRST.date())
    assert day is not None
    assert {str(rival.id), str(mine.id)} <= set(day.reservations)


def test_a_copy_shares_nothing_a_command_changes():
    day = ResourceDay(resource_id=uuid4(), day=FIRST.date())
    span = Interval(FIRST, FIRST + timedelta(minutes=30))
    day.reserve("a", span, {})
    replica = deepcopy(day)
    replica.reserve("b", Interval(span.end, span.end + timedelta(minutes=30)), {})
    assert set(day.reservations) == {"a"}
    assert set(replica.reservations) == {"a", "b"}
    assert len(day.collect_events()) == 2  # Opened, Reserved a: not b's
    assert len(replica.collect_events()) == 3
