"""Given / when / then: the per-resource-per-day calendar refuses overlaps."""

from datetime import UTC, date, datetime, timedelta
from uuid import uuid4

import pytest

from domain.resource_day import ResourceDay, SlotUnavailableError
from domain.schedule import Interval

META = {"actor_id": "a", "role": "patient", "request_id": "", "source": "test"}


def at(hour: int, minute: int = 0, minutes: int = 30) -> Interval:
    start = datetime(2026, 12, 1, hour, minute, tzinfo=UTC)
    return Interval(start, start + timedelta(minutes=minutes))


def calendar() -> ResourceDay:
    return ResourceDay(resource_id=uuid4(), day=date(2026, 12, 1))


def test_identity_is_derived_from_resource_and_day():
    resource_id = uuid4()
    first = ResourceDay(resource_id=resource_id, day=date(2026, 12, 1))
    assert first.id == ResourceDay.create_id(resource_id, date(2026, 12, 1))
    assert first.id != ResourceDay.create_id(resource_id, date(2026, 12, 2))


def test_overlapping_reservation_is_refused():
    day = calendar()
    day.reserve("a", at(9), META)
    with pytest.raises(SlotUnavailableError):
        day.reserve("b", at(9, 15), META)


def test_touching_reservations_are_allowed():
    day = calendar()
    day.reserve("a", at(9), META)
    day.reserve("b", at(9, 30), META)
    assert set(day.reservations) == {"a", "b"}


def test_released_time_can_be_taken_again():
    day = calendar()
    day.reserve("a", at(9), META)
    day.release("a", META)
    day.reserve("b", at(9), META)
    assert list(day.reservations) == ["b"]


def test_a_holder_may_move_within_its_own_time():
    day = calendar()
    day.reserve("a", at(9), META)
    day.reserve("a", at(9, 15), META)
    assert day.reservations["a"] == at(9, 15)


def test_reserving_the_same_span_again_records_nothing():
    day = calendar()
    day.reserve("a", at(9), META)
    day.collect_events()
    day.reserve("a", at(9), META)
    assert day.collect_events() == []


def test_releasing_what_was_not_held_records_nothing():
    day = calendar()
    day.collect_events()
    day.release("nobody", META)
    assert day.collect_events() == []
