"""Opening hours, windows and slots, including the DST edges (examples and properties)."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.errors import InvalidValueError
from domain.schedule import (
    DailyOpening,
    Interval,
    is_slot,
    local_days,
    local_to_utc,
    merge_touching,
    opening_windows,
    parse_weekly_hours,
    slot_starts,
)

NEW_YORK = ZoneInfo("America/New_York")
ALL_DAY = {day: ["00:00-24:00"] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


def slots(day: date, tz: ZoneInfo, hours: dict[str, list[str]], minutes: int) -> list[datetime]:
    return list(slot_starts(opening_windows(day, tz, hours), timedelta(minutes=minutes)))


def test_parse_weekly_hours_normalises_and_sorts():
    hours = parse_weekly_hours({"Monday": ["13:00-18:00", "08:00-12:00"], "sun": ["00:00-24:00"]})
    assert hours == {"mon": ["08:00-12:00", "13:00-18:00"], "sun": ["00:00-24:00"]}


@pytest.mark.parametrize("bad", ["9-5", "18:00-08:00", "08:00-08:00", "25:00-26:00", "08:60-09:00"])
def test_malformed_hours_are_refused(bad):
    with pytest.raises(InvalidValueError):
        DailyOpening.parse(bad)


def test_overlapping_hours_are_refused():
    with pytest.raises(InvalidValueError):
        parse_weekly_hours({"mon": ["08:00-12:00", "11:00-13:00"]})


def test_closed_day_and_blocks_remove_time():
    day = date(2026, 12, 1)
    hours = {"tue": ["08:00-12:00"]}
    assert opening_windows(day, NEW_YORK, hours, closed=True) == []
    block = Interval(
        datetime(2026, 12, 1, 9, 0, tzinfo=NEW_YORK), datetime(2026, 12, 1, 10, 0, tzinfo=NEW_YORK)
    )
    windows = opening_windows(day, NEW_YORK, hours, blocks=[block])
    assert [
        (w.start.astimezone(NEW_YORK).hour, w.end.astimezone(NEW_YORK).hour) for w in windows
    ] == [
        (8, 9),
        (10, 12),
    ]


def test_spring_forward_day_has_23_hourly_slots_and_no_2am():
    starts = slots(date(2026, 3, 8), NEW_YORK, ALL_DAY, 60)
    local_hours = [s.astimezone(NEW_YORK).hour for s in starts]
    assert len(starts) == 23
    assert 2 not in local_hours


def test_fall_back_day_has_25_hourly_slots_and_1am_twice_with_distinct_offsets():
    starts = slots(date(2026, 11, 1), NEW_YORK, ALL_DAY, 60)
    one_am = [s.astimezone(NEW_YORK) for s in starts if s.astimezone(NEW_YORK).hour == 1]
    assert len(starts) == 25
    assert len(set(starts)) == 25
    assert [t.utcoffset() for t in one_am] == [timedelta(hours=-4), timedelta(hours=-5)]


def test_opening_inside_the_skipped_hour_starts_when_the_gap_ends():
    start = local_to_utc(date(2026, 3, 8), 2 * 60 + 30, NEW_YORK, earliest=True)
    assert start.astimezone(NEW_YORK).hour == 3
    assert start.astimezone(NEW_YORK).minute == 0


def test_merge_touching_joins_midnight():
    a = Interval(datetime(2026, 1, 1, 20, tzinfo=UTC), datetime(2026, 1, 2, 0, tzinfo=UTC))
    b = Interval(datetime(2026, 1, 2, 0, tzinfo=UTC), datetime(2026, 1, 2, 4, tzinfo=UTC))
    assert merge_touching([b, a]) == [Interval(a.start, b.end)]


def test_local_days_of_a_span_crossing_midnight():
    start = datetime(2026, 12, 1, 23, 30, tzinfo=NEW_YORK)
    assert local_days(start, start + timedelta(hours=1), NEW_YORK) == [
        date(2026, 12, 1),
        date(2026, 12, 2),
    ]


# Properties ---------------------------------------------------------------------------

ZONES = ["America/New_York", "America/Chicago", "Europe/London"]


def transition_days(zone_name: str) -> list[date]:
    """Local days on which the zone's UTC offset changes, 2024-2030."""
    tz = ZoneInfo(zone_name)
    days = []
    day = date(2024, 1, 1)
    while day.year <= 2030:
        before = datetime(day.year, day.month, day.day, tzinfo=tz).utcoffset()
        nxt = day + timedelta(days=1)
        after = datetime(nxt.year, nxt.month, nxt.day, tzinfo=tz).utcoffset()
        if before != after:
            days.append(day)
        day = nxt
    return days


TRANSITIONS = {name: transition_days(name) for name in ZONES}


@st.composite
def dst_day_and_hours(draw):
    zone_name = draw(st.sampled_from(ZONES))
    day = draw(st.sampled_from(TRANSITIONS[zone_name])) + timedelta(days=draw(st.integers(-1, 1)))
    opens = draw(st.integers(0, 23 * 60 + 45))
    closes = draw(st.integers(opens + 1, 24 * 60))
    spec = f"{opens // 60:02d}:{opens % 60:02d}-{closes // 60:02d}:{closes % 60:02d}"
    hours = {w: [spec] for w in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    minutes = draw(st.sampled_from([5, 10, 15, 20, 30, 45, 60, 90]))
    return ZoneInfo(zone_name), day, hours, minutes


@settings(max_examples=400, deadline=None)
@given(dst_day_and_hours())
def test_slots_around_dst_exist_never_repeat_and_fill_the_window(case):
    tz, day, hours, minutes = case
    duration = timedelta(minutes=minutes)
    windows = opening_windows(day, tz, hours)
    starts = list(slot_starts(windows, duration))

    # Never the same instant twice.
    assert len(starts) == len(set(starts))
    for start in starts:
        local = start.astimezone(tz)
        wall = local.replace(tzinfo=None)
        # The wall-clock time exists (it is not in a skipped hour) ...
        assert wall.replace(tzinfo=tz).astimezone(UTC).astimezone(tz).replace(tzinfo=None) == wall
        # ... and, with its fold, names exactly this instant.
        assert wall.replace(tzinfo=tz, fold=local.fold).astimezone(UTC) == start
        # It lies on the local day asked for and inside a window.
        assert any(w.start <= start and start + duration <= w.end for w in windows)
    for window in windows:
        # Exactly as many slots as fit: nothing is lost around the change either.
        inside = [s for s in starts if window.start <= s < window.end]
        assert len(inside) == (window.end - window.start) // duration
        assert window.start.astimezone(tz).date() == day


@settings(max_examples=300, deadline=None)
@given(dst_day_and_hours(), st.integers(-120, 25 * 60), st.sampled_from([1, 5, 15]))
def test_a_span_is_a_slot_exactly_when_the_slot_search_steps_to_it(case, offset, grain):
    # given a day's windows (DST days included) and an exam length
    tz, day, hours, minutes = case
    duration = timedelta(minutes=minutes)
    windows = opening_windows(day, tz, hours)
    # when a span of that length starts anywhere around the day
    start = datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC) + timedelta(
        minutes=offset - offset % grain
    )
    # then it is a slot exactly when slot_starts yields its start
    expected = start in set(slot_starts(windows, duration))
    assert is_slot(Interval(start, start + duration), windows) is expected


def test_a_span_off_the_grid_or_past_the_window_is_not_a_slot():
    # given 08:00-09:00 and 20-minute slots (08:00, 08:20, 08:40)
    windows = opening_windows(date(2026, 12, 1), NEW_YORK, {"tue": ["08:00-09:00"]})
    eight = windows[0].start

    def span(minutes_after: int, length: int = 20) -> Interval:
        start = eight + timedelta(minutes=minutes_after)
        return Interval(start, start + timedelta(minutes=length))

    assert [m for m in range(-20, 60) if is_slot(span(m), windows)] == [0, 20, 40]
    # a span of another length steps on its own grid
    assert is_slot(span(30, length=30), windows)
    assert not is_slot(span(30, length=0), windows)
