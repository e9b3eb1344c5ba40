"""The slot search's runs of free starts in one window (``_free_in``) against the plain
way: every start ``slot_starts`` gives, kept if it lies in the range and overlaps no
reservation (reservations that overlap each other included)."""

from datetime import UTC, datetime, timedelta
from itertools import accumulate

from hypothesis import given
from hypothesis import strategies as st

from application.slot_search import _free_in, _overlaps_any
from domain.schedule import Interval, slot_starts

T = datetime(2026, 12, 7, 13, 0, tzinfo=UTC)
minutes = st.integers(-120, 900).map(lambda m: T + timedelta(minutes=m))


def plain(window, duration, start, end, taken):
    reach = list(accumulate((t.end for t in taken), max))
    starts = [t.start for t in taken]
    return [
        s
        for s in slot_starts([window], duration)
        if start <= s < end and not _overlaps_any(reach, starts, s, s + duration)
    ]


@given(
    opens=minutes,
    hours=st.integers(0, 24 * 60),
    duration=st.sampled_from([5, 10, 15, 20, 30, 45, 60, 90]).map(lambda m: timedelta(minutes=m)),
    start=minutes,
    length=st.integers(1, 1200).map(lambda m: timedelta(minutes=m)),
    taken=st.lists(
        st.tuples(minutes, st.integers(1, 240).map(lambda m: timedelta(minutes=m))), max_size=5
    ),
)
def test_the_free_starts_of_a_window_are_the_plain_ones(
    opens, hours, duration, start, length, taken
):
    window = Interval(opens, opens + timedelta(minutes=hours))
    reservations = sorted(Interval(at, at + span) for at, span in taken)
    reach = list(accumulate((t.end for t in reservations), max))
    starts = [t.start for t in reservations]
    expected = plain(window, duration, start, start + length, reservations)
    assert _free_in(window, duration, start, start + length, reach, starts) == expected


def test_a_reservation_inside_the_window_takes_only_the_slots_it_overlaps():
    window = Interval(T, T + timedelta(hours=2))
    taken = [Interval(T + timedelta(minutes=35), T + timedelta(minutes=50))]
    free = _free_in(
        window, timedelta(minutes=15), T, T + timedelta(days=1), [taken[0].end], [taken[0].start]
    )
    assert len(free) == 8 - 2
    assert T + timedelta(minutes=30) not in free
    assert T + timedelta(minutes=45) not in free
    assert free[0] == T
    assert free[-1] == T + timedelta(minutes=105)
