"""The reminder schedule and quiet-hours hold: properties over real zones (half-hour
offsets, southern-hemisphere DST, a skipped day) and examples of the documented rules."""

from datetime import UTC, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.errors import InvalidValueError
from domain.reminders import (
    AFTER_QUIET_HOURS,
    BEFORE_QUIET_HOURS,
    ON_TIME,
    QuietHours,
    hold_until,
    parse_offsets,
    planned_time,
    reminder_offsets,
    reminder_schedule,
)

NEW_YORK = "America/New_York"
MADRID = "Europe/Madrid"
ZONES = [
    NEW_YORK,
    MADRID,
    "UTC",
    "America/St_Johns",  # -03:30 with DST
    "Asia/Kolkata",  # +05:30
    "Asia/Kathmandu",  # +05:45
    "Australia/Adelaide",  # +09:30, southern DST
    "Australia/Lord_Howe",  # a 30-minute DST shift
    "Pacific/Chatham",  # +12:45 / +13:45
    "America/Santiago",  # southern DST, changes at midnight
    "Pacific/Auckland",
    "Europe/Dublin",  # "negative" DST in the database
    "Africa/Casablanca",  # DST suspended each Ramadan
    "Pacific/Apia",  # skipped 30 December 2011
]
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
NIGHT = QuietHours(time(21), time(8))


def at(zone: str, *fields: int, fold: int = 0) -> datetime:
    return datetime(*fields, tzinfo=ZoneInfo(zone), fold=fold)  # type: ignore[misc]


def local(instant: datetime, zone: str) -> datetime:
    return instant.astimezone(ZoneInfo(zone))


def quiet_at(instant: datetime, quiet: QuietHours, zone: str) -> bool:
    """The oracle: the wall-clock time of ``instant`` in ``zone`` against [start, end)."""
    clock = local(instant, zone).time().replace(tzinfo=None)
    if quiet.start < quiet.end:
        return quiet.start <= clock < quiet.end
    return clock >= quiet.start or clock < quiet.end


@cache
def transitions(zone: str) -> list[datetime]:
    """The instants (UTC, to the hour) where ``zone`` changed its offset, 2011-2012 and
    2026-2027, found by stepping hour by hour."""
    found = []
    where = ZoneInfo(zone)
    for year in (2011, 2026):
        moment = datetime(year, 1, 1, tzinfo=UTC)
        offset = moment.astimezone(where).utcoffset()
        while moment.year < year + 2:
            moment += HOUR
            now_offset = moment.astimezone(where).utcoffset()
            if now_offset != offset:
                found.append(moment)
                offset = now_offset
    return found or [datetime(2026, 6, 1, tzinfo=UTC)]


@st.composite
def exam_starts(draw: st.DrawFn, zone: str) -> datetime:
    """An exam start near one of the zone's DST changes (within ±5 days), or any time
    between 1971 and 2099."""
    if draw(st.booleans()):
        change = draw(st.sampled_from(transitions(zone)))
        quarters = draw(st.integers(-5 * 96, 5 * 96))
        return change + quarters * timedelta(minutes=15)
    return draw(
        st.datetimes(datetime(1971, 1, 1), datetime(2099, 12, 1), timezones=st.just(ZoneInfo(zone)))
    )


offsets_strategy = st.lists(
    st.one_of(
        st.integers(1, 240).map(lambda h: h * HOUR),
        st.integers(1, 14).map(lambda d: d * DAY),
        st.integers(1, 3000).map(lambda m: m * timedelta(minutes=1)),
    ),
    max_size=6,
)
wall_clocks = st.integers(0, 24 * 60 - 1).map(lambda m: time(m // 60, m % 60))
quiet_strategy = st.one_of(
    st.none(),
    st.tuples(wall_clocks, wall_clocks)
    .filter(lambda pair: pair[0] != pair[1])
    .map(lambda pair: QuietHours(*pair)),
)


@st.composite
def cases(draw: st.DrawFn) -> dict:
    zone = draw(st.sampled_from(ZONES))
    start = draw(exam_starts(zone)).astimezone(UTC)  # UTC: aware arithmetic in real time
    return {
        "start": start,
        "location_zone": zone,
        "offsets": draw(offsets_strategy),
        "now": start - draw(st.integers(-600, 20 * 24 * 60)) * timedelta(minutes=1),
        "quiet_hours": draw(quiet_strategy),
        "patient_zone": draw(st.one_of(st.none(), st.sampled_from(ZONES))),
        "exempt": draw(st.booleans()),
    }


@settings(max_examples=800, deadline=None)
@given(cases())
def test_no_reminder_is_due_in_quiet_hours_after_the_exam_before_now_or_twice(case):
    # When the schedule of any exam is computed
    schedule = reminder_schedule(**case)

    # Then every reminder is due from now until before the exam starts
    dues = [reminder.due for reminder in schedule]
    assert all(case["now"] <= due < case["start"] for due in dues)
    # in order, each once, larger offsets first
    assert dues == sorted(set(dues))
    offsets = [reminder.offset for reminder in schedule]
    assert offsets == sorted(set(offsets), reverse=True)
    assert all(due.utcoffset() == timedelta(0) for due in dues)
    # and, unless exempt, none inside the patient's quiet hours
    quiet, zone = case["quiet_hours"], case["patient_zone"] or case["location_zone"]
    for reminder in schedule:
        if case["exempt"] or quiet is None:
            assert (reminder.due, reminder.placement) == (reminder.planned, ON_TIME)
        else:
            assert not quiet_at(reminder.due, quiet, zone), (reminder, local(reminder.due, zone))
            assert (reminder.due == reminder.planned) == (reminder.placement == ON_TIME)


@settings(max_examples=300, deadline=None)
@given(cases())
def test_without_quiet_hours_every_reminder_of_hours_still_ahead_is_kept(case):
    # Given offsets under a day (real time: no calendar arithmetic, so no two coincide)
    offsets = {offset for offset in case["offsets"] if offset < DAY}
    start, now = case["start"], case["now"]

    # When the schedule is computed without quiet hours
    schedule = reminder_schedule(start, case["location_zone"], offsets, now)

    # Then each offset whose time is still ahead is there, at exactly start minus offset
    expected = sorted(start - o for o in offsets if start - o >= now)
    assert [reminder.due for reminder in schedule] == expected


@settings(max_examples=500, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    due=st.data(),
    quiet=quiet_strategy.filter(lambda q: q is not None),
)
def test_hold_until_gives_a_time_out_of_quiet_hours_within_two_days(zone, due, quiet):
    instant = due.draw(exam_starts(zone))

    held = hold_until(instant, quiet, zone)

    assert held >= instant
    assert held - instant < 2 * DAY
    assert not quiet_at(held, quiet, zone)
    if not quiet_at(instant, quiet, zone):
        assert held == instant


# The documented DST rule: whole days on the location's calendar, the rest in real time.


@pytest.mark.parametrize(
    ("zone", "exam", "offset", "expected", "real_hours"),
    [
        # New York springs forward on Sunday 8 March 2026 (02:00 -> 03:00)
        (NEW_YORK, (2026, 3, 8, 9), DAY, (2026, 3, 7, 9), 23),  # exam after the change
        (NEW_YORK, (2026, 3, 9, 9), DAY, (2026, 3, 8, 9), 24),  # day after: no change between
        (NEW_YORK, (2026, 3, 7, 9), DAY, (2026, 3, 6, 9), 24),  # day before the change
        (NEW_YORK, (2026, 3, 10, 9), 3 * DAY, (2026, 3, 7, 9), 71),
        # and falls back on Sunday 1 November 2026 (02:00 -> 01:00)
        (NEW_YORK, (2026, 11, 1, 9), DAY, (2026, 10, 31, 9), 25),
        (NEW_YORK, (2026, 11, 2, 9), DAY, (2026, 11, 1, 9), 24),
        (NEW_YORK, (2026, 11, 3, 9), 72 * HOUR, (2026, 10, 31, 9), 73),
        # Madrid springs forward on Sunday 29 March 2026 (02:00 -> 03:00)
        (MADRID, (2026, 3, 29, 10), DAY, (2026, 3, 28, 10), 23),
        (MADRID, (2026, 3, 30, 10), DAY, (2026, 3, 29, 10), 24),
        # and falls back on Sunday 25 October 2026 (03:00 -> 02:00)
        (MADRID, (2026, 10, 25, 10), DAY, (2026, 10, 24, 10), 25),
        (MADRID, (2026, 10, 26, 10), DAY, (2026, 10, 25, 10), 24),
        # Adelaide (southern hemisphere) falls back on Sunday 5 April 2026 (03:00 -> 02:00)
        ("Australia/Adelaide", (2026, 4, 5, 11), DAY, (2026, 4, 4, 11), 25),
    ],
)
def test_whole_days_keep_the_wall_clock_time(zone, exam, offset, expected, real_hours):
    start = at(zone, *exam)

    planned = planned_time(start, offset, zone)

    assert local(planned, zone).replace(tzinfo=None) == datetime(*expected)
    assert start - planned == real_hours * HOUR


def test_hours_under_a_day_are_real_time_across_a_change():
    # Given an exam at 03:30 on the night New York springs forward
    start = at(NEW_YORK, 2026, 3, 8, 3, 30)

    # Then "2 h before" is two real hours: 00:30 on the clocks, which moved on an hour
    planned = planned_time(start, 2 * HOUR, NEW_YORK)
    assert start - planned == 2 * HOUR
    assert local(planned, NEW_YORK).replace(tzinfo=None) == datetime(2026, 3, 8, 0, 30)
    # and "26 h" is the day before at the same time, less two real hours
    planned = planned_time(start, 26 * HOUR, NEW_YORK)
    assert local(planned, NEW_YORK).replace(tzinfo=None) == datetime(2026, 3, 7, 1, 30)


def test_a_skipped_wall_clock_time_reads_on_the_old_offset():
    # Given an exam at 02:30 the day after New York skips 02:00-03:00
    start = at(NEW_YORK, 2026, 3, 9, 2, 30)

    # Then the day-before reminder is at 03:30, just after the gap
    planned = planned_time(start, DAY, NEW_YORK)
    assert local(planned, NEW_YORK).replace(tzinfo=None) == datetime(2026, 3, 8, 3, 30)


def test_a_repeated_wall_clock_time_is_the_first_of_the_two():
    # Given an exam at 01:30 the day after New York repeats 01:00-02:00
    start = at(NEW_YORK, 2026, 11, 2, 1, 30)

    # Then the day-before reminder is at the first 01:30 (still daylight time)
    planned = planned_time(start, DAY, NEW_YORK)
    assert planned == at(NEW_YORK, 2026, 11, 1, 1, 30, fold=0).astimezone(UTC)
    assert start - planned == 25 * HOUR


def test_a_skipped_calendar_day_falls_back_to_real_time():
    # Given an exam on 31 December 2011 in Samoa, which went from 29 to 31 December
    start = at("Pacific/Apia", 2011, 12, 31, 10)

    # Then the day before (which never happened there) is 24 real hours before
    assert planned_time(start, DAY, "Pacific/Apia") == start.astimezone(UTC) - DAY


# Quiet hours.


def test_a_reminder_in_quiet_hours_waits_until_they_end():
    # Given an exam at 09:00 and quiet hours 21:00-08:00
    start = at(NEW_YORK, 2026, 12, 10, 9)
    offsets = [72 * HOUR, 24 * HOUR, 2 * HOUR]

    schedule = reminder_schedule(start, NEW_YORK, offsets, at(NEW_YORK, 2026, 12, 1), NIGHT)

    # Then the 2 h reminder (07:00) goes at 08:00; the others are on time
    assert [(local(r.due, NEW_YORK).replace(tzinfo=None), r.placement) for r in schedule] == [
        (datetime(2026, 12, 7, 9), ON_TIME),
        (datetime(2026, 12, 9, 9), ON_TIME),
        (datetime(2026, 12, 10, 8), AFTER_QUIET_HOURS),
    ]
    assert schedule[-1].planned == at(NEW_YORK, 2026, 12, 10, 7).astimezone(UTC)


def test_a_reminder_that_would_wait_past_the_exam_goes_before_quiet_hours_begin():
    # Given an exam at 07:30 and quiet hours 21:00-08:00
    start = at(NEW_YORK, 2026, 12, 10, 7, 30)

    schedule = reminder_schedule(start, NEW_YORK, [2 * HOUR], at(NEW_YORK, 2026, 12, 1), NIGHT)

    # Then the 2 h reminder (05:30) goes the evening before, a minute before 21:00
    [reminder] = schedule
    assert local(reminder.due, NEW_YORK).replace(tzinfo=None) == datetime(2026, 12, 9, 20, 59)
    assert reminder.placement == BEFORE_QUIET_HOURS


def test_a_reminder_that_would_wait_past_the_next_one_goes_before_quiet_hours_begin():
    # Given an exam at 10:00, offsets 4 h and 3 h, quiet hours 05:00-09:00
    start = at(MADRID, 2026, 12, 10, 10)
    quiet = QuietHours(time(5), time(9))

    schedule = reminder_schedule(
        start, MADRID, [4 * HOUR, 3 * HOUR], at(MADRID, 2026, 12, 1), quiet
    )

    # Then the 3 h one (07:00) waits until 09:00, and the 4 h one (06:00), which would
    # wait past it, goes at 04:59
    assert [(local(r.due, MADRID).strftime("%H:%M"), r.placement) for r in schedule] == [
        ("04:59", BEFORE_QUIET_HOURS),
        ("09:00", AFTER_QUIET_HOURS),
    ]


def test_quiet_hours_beginning_at_a_skipped_time_began_before_the_gap():
    # Given quiet hours 02:30-08:00 and an exam at 07:30 on the night New York skips
    # 02:00-03:00, so the quiet hours begin when the clocks jump to 03:00
    quiet = QuietHours(time(2, 30), time(8))
    start = at(NEW_YORK, 2026, 3, 8, 7, 30)

    [reminder] = reminder_schedule(start, NEW_YORK, [HOUR], at(NEW_YORK, 2026, 3, 1), quiet)

    # Then the 1 h reminder (06:30) goes before the gap: a minute before 02:30 read on the
    # new offset (01:30 of the old one), not at 03:29, which is inside the quiet hours
    assert local(reminder.due, NEW_YORK).replace(tzinfo=None) == datetime(2026, 3, 8, 1, 29)
    assert reminder.placement == BEFORE_QUIET_HOURS


def test_a_reminder_with_no_allowed_time_left_is_not_created():
    # Given it is 22:00 (quiet hours 21:00-08:00) and the exam is at 07:00 tomorrow
    start = at(NEW_YORK, 2026, 12, 10, 7)
    now = at(NEW_YORK, 2026, 12, 9, 22)

    # Then the 2 h reminder (05:00) can go neither after quiet hours nor before them
    assert reminder_schedule(start, NEW_YORK, [2 * HOUR], now, NIGHT) == []


def test_quiet_hours_are_read_in_the_patients_zone():
    # Given an exam at 09:00 in New York (15:00 in Madrid) and a patient in Madrid
    start = at(NEW_YORK, 2026, 12, 10, 9)
    quiet = QuietHours(time(13), time(16))  # a Madrid siesta

    [reminder] = reminder_schedule(
        start, NEW_YORK, [DAY], at(NEW_YORK, 2026, 12, 1), quiet, patient_zone=MADRID
    )

    # Then the day-before reminder (15:00 in Madrid) waits until 16:00 Madrid time
    assert local(reminder.due, MADRID).replace(tzinfo=None) == datetime(2026, 12, 9, 16)


def test_safety_notices_are_exempt_from_quiet_hours():
    start = at(NEW_YORK, 2026, 12, 10, 7)

    [reminder] = reminder_schedule(
        start, NEW_YORK, [2 * HOUR], at(NEW_YORK, 2026, 12, 1), NIGHT, exempt=True
    )

    assert local(reminder.due, NEW_YORK).hour == 5
    assert reminder.placement == ON_TIME


# What is not created.


def test_passed_and_duplicate_reminders_are_not_created():
    # Given an exam in 30 hours and offsets 72 h, 3 days (the same), 24 h and 48 h
    now = at(NEW_YORK, 2026, 12, 9, 3).astimezone(UTC)
    start = now + 30 * HOUR
    offsets = [72 * HOUR, 3 * DAY, 24 * HOUR, 48 * HOUR]

    schedule = reminder_schedule(start, NEW_YORK, offsets, now)

    # Then only the 24 h reminder is left: the others' times have passed
    assert [(r.offset, r.due) for r in schedule] == [(DAY, start - DAY)]


def test_offsets_a_dst_change_would_invert_give_one_reminder():
    # Given an exam the morning New York springs forward, offsets 24 h (the day before at
    # the same time: 23 real hours) and 23 h 30 min (real time, so half an hour earlier)
    start = at(NEW_YORK, 2026, 3, 8, 10)
    offsets = [24 * HOUR, 23 * HOUR + 30 * timedelta(minutes=1)]

    schedule = reminder_schedule(start, NEW_YORK, offsets, at(NEW_YORK, 2026, 3, 1))

    # Then one reminder is left: the one nearer the exam
    assert [r.offset for r in schedule] == [23 * HOUR + 30 * timedelta(minutes=1)]


def test_a_reminder_at_or_after_the_exam_is_not_created():
    start = at(NEW_YORK, 2026, 12, 10, 9).astimezone(UTC)
    assert reminder_schedule(start, NEW_YORK, [HOUR], start - 30 * timedelta(minutes=1)) == []
    assert reminder_schedule(start, NEW_YORK, [HOUR], start + HOUR) == []


# hold_until on its own.


@pytest.mark.parametrize(
    ("due", "expected"),
    [
        ((2026, 12, 9, 23), (2026, 12, 10, 8)),  # late evening: the next morning
        ((2026, 12, 10, 7, 59), (2026, 12, 10, 8)),  # early morning: the same morning
        ((2026, 12, 10, 8), (2026, 12, 10, 8)),  # the end is outside (half-open)
        ((2026, 12, 10, 20, 59), (2026, 12, 10, 20, 59)),
        ((2026, 12, 10, 21), (2026, 12, 11, 8)),
    ],
)
def test_hold_until_waits_for_the_end_of_quiet_hours(due, expected):
    held = hold_until(at(NEW_YORK, *due), NIGHT, NEW_YORK)
    assert local(held, NEW_YORK).replace(tzinfo=None) == datetime(*expected)
    assert held.tzinfo == UTC


def test_hold_until_without_quiet_hours_is_the_due_time():
    due = at(MADRID, 2026, 12, 10, 3)
    assert hold_until(due, None, MADRID) == due


def test_an_end_the_clocks_skip_is_read_on_the_old_offset():
    # Given quiet hours ending at 02:30, on the night New York skips 02:00-03:00
    quiet = QuietHours(time(22), time(2, 30))

    held = hold_until(at(NEW_YORK, 2026, 3, 8, 1), quiet, NEW_YORK)

    # Then a delivery due at 01:00 goes at 03:30 (02:30 on the old offset)
    assert local(held, NEW_YORK).replace(tzinfo=None) == datetime(2026, 3, 8, 3, 30)


# Values.


def test_offsets_come_from_the_exam_type_when_it_sets_them():
    centre = [72 * HOUR, 24 * HOUR]
    assert reminder_offsets(None, centre) == (72 * HOUR, 24 * HOUR)
    assert reminder_offsets([2 * HOUR, 48 * HOUR, 2 * HOUR], centre) == (48 * HOUR, 2 * HOUR)
    assert reminder_offsets([], centre) == ()


def test_offsets_and_quiet_hours_parse():
    assert parse_offsets("72h, 2d,90m") == (72 * HOUR, 2 * DAY, 90 * timedelta(minutes=1))
    assert parse_offsets("") == ()
    assert QuietHours.parse("21:00-08:00") == NIGHT
    assert str(NIGHT) == "21:00-08:00"


@pytest.mark.parametrize("bad", ["72", "h", "0h", "-2h", "1.5h", "72 hours", "400d", "999999h"])
def test_malformed_offsets_are_refused(bad):
    with pytest.raises(InvalidValueError):
        parse_offsets(bad)


@pytest.mark.parametrize("bad", ["21:00", "21:00-21:00", "25:00-08:00", "night"])
def test_malformed_quiet_hours_are_refused(bad):
    with pytest.raises(InvalidValueError):
        QuietHours.parse(bad)


def test_naive_times_and_unknown_zones_are_refused():
    with pytest.raises(InvalidValueError):
        reminder_schedule(datetime(2026, 12, 10, 9), NEW_YORK, [DAY], at(NEW_YORK, 2026, 12, 1))
    with pytest.raises(InvalidValueError):
        reminder_schedule(
            at(NEW_YORK, 2026, 12, 10), "Mars/Olympus", [DAY], at(NEW_YORK, 2026, 1, 1)
        )
