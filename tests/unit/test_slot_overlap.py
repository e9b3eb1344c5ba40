"""The slot search's overlap test against reservations that overlap each other (as the
read model can show them for a moment while it applies one save's events)."""

from datetime import UTC, datetime, timedelta
from itertools import accumulate

from application.slot_search import _overlaps_any
from domain.schedule import Interval

T = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def overlaps(taken: list[Interval], start: datetime, minutes: int = 15) -> bool:
    taken = sorted(taken)
    reach = list(accumulate((t.end for t in taken), max))
    starts = [t.start for t in taken]
    return _overlaps_any(reach, starts, start, start + timedelta(minutes=minutes))


def test_a_long_reservation_is_not_hidden_by_a_short_one_inside_it():
    long = Interval(T, T + timedelta(hours=2))
    short = Interval(T + timedelta(minutes=30), T + timedelta(minutes=45))
    assert overlaps([long, short], T + timedelta(hours=1))
    assert not overlaps([long, short], T + timedelta(hours=2))
    assert not overlaps([long, short], T - timedelta(minutes=15))
    assert overlaps([short], T + timedelta(minutes=40))
    assert not overlaps([short], T + timedelta(hours=1))
