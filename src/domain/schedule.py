"""Opening hours, closures, blocks and slot generation.

Weekly hours are wall-clock times in the location's IANA time zone. They are
turned into UTC windows one local day at a time, and slots are stepped through
in UTC so that every slot is a real instant: a wall-clock time skipped by a DST
change never appears, and the repeated hour yields two distinct instants.
"""

import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from domain.errors import InvalidValueError

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MINUTES_PER_DAY = 24 * 60

# The dates and instants the system accepts from outside (requests, catalog files): far
# beyond them, date arithmetic overflows and PostgreSQL refuses the values. An offset is
# one that exists somewhere on Earth (UTC-12:00 .. UTC+14:00).
EARLIEST_YEAR = 1900
LATEST_YEAR = 2100
MAX_OFFSET = timedelta(hours=14)


def out_of_range_problem(value: date) -> str | None:
    """Why a date or instant is outside the accepted range, or None if it is inside."""
    if isinstance(value, datetime):
        offset = value.utcoffset()
        if offset is not None and abs(offset) > MAX_OFFSET:
            return "a UTC offset lies between -14:00 and +14:00"
    if not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
        return f"dates lie between the years {EARLIEST_YEAR} and {LATEST_YEAR}"
    return None


def zone(name: str) -> ZoneInfo:
    """The IANA time zone called ``name``, or an InvalidValueError."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise InvalidValueError(f"unknown time zone {name!r}") from error


@dataclass(frozen=True, order=True)
class Interval:
    """A half-open span of instants [start, end), both timezone-aware."""

    start: datetime
    end: datetime

    def overlaps(self, other: "Interval") -> bool:
        return self.start < other.end and other.start < self.end

    def contains(self, other: "Interval") -> bool:
        return self.start <= other.start and other.end <= self.end


@dataclass(frozen=True)
class DailyOpening:
    """Opening wall-clock minutes of one day: 0 <= opens < closes <= 1440."""

    opens: int
    closes: int

    @classmethod
    def parse(cls, text: str) -> "DailyOpening":
        """Parse ``"07:00-19:00"``; ``24:00`` means the end of the day."""
        try:
            first, second = (part.strip() for part in text.split("-"))
            opening = cls(_minutes(first), _minutes(second))
        except ValueError as error:
            raise InvalidValueError(f"opening hours {text!r} are not HH:MM-HH:MM") from error
        if not 0 <= opening.opens < opening.closes <= MINUTES_PER_DAY:
            raise InvalidValueError(f"opening hours {text!r} must open before they close")
        return opening

    def __str__(self) -> str:
        return f"{_hhmm(self.opens)}-{_hhmm(self.closes)}"


def _minutes(text: str) -> int:
    hours, minutes = text.split(":")
    value = int(hours) * 60 + int(minutes)
    if not (0 <= int(minutes) < 60 and 0 <= value <= MINUTES_PER_DAY):
        raise ValueError(text)
    return value


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def parse_weekly_hours(raw: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """Validate and normalise weekly hours: weekday -> sorted ``HH:MM-HH:MM``."""
    result: dict[str, list[str]] = {}
    for day, spans in raw.items():
        key = day.strip().lower()[:3]
        if key not in WEEKDAYS:
            raise InvalidValueError(f"unknown weekday {day!r}")
        openings = sorted((DailyOpening.parse(span) for span in spans), key=lambda o: o.opens)
        for before, after in itertools.pairwise(openings):
            if after.opens < before.closes:
                raise InvalidValueError(f"opening hours on {key} overlap")
        result[key] = [str(opening) for opening in openings]
    return {day: result[day] for day in WEEKDAYS if result.get(day)}


def local_to_utc(day: date, minutes: int, tz: ZoneInfo, *, earliest: bool) -> datetime:
    """The UTC instant of wall-clock ``minutes`` after midnight on ``day`` in ``tz``.

    A wall-clock time that does not exist (skipped by a DST change) maps to the
    first instant after the gap. An ambiguous one (repeated hour) maps to its
    earlier instant when ``earliest`` is set, else to its later one.
    """
    naive = datetime.combine(day, time()) + timedelta(minutes=minutes)
    for _ in range(MINUTES_PER_DAY):
        if _exists(naive, tz):
            break
        naive += timedelta(minutes=1)
    fold = 0 if earliest else 1
    return naive.replace(tzinfo=tz, fold=fold).astimezone(UTC)


def _exists(naive: datetime, tz: ZoneInfo) -> bool:
    aware = naive.replace(tzinfo=tz)
    return aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == naive


def opening_windows(
    day: date,
    tz: ZoneInfo,
    weekly_hours: Mapping[str, Sequence[str]],
    *,
    closed: bool = False,
    blocks: Iterable[Interval] = (),
) -> list[Interval]:
    """The UTC windows a resource is open on the local ``day``, minus its blocks."""
    if closed:
        return []
    windows = [
        Interval(
            local_to_utc(day, opening.opens, tz, earliest=True),
            local_to_utc(day, opening.closes, tz, earliest=False),
        )
        for opening in map(DailyOpening.parse, weekly_hours.get(WEEKDAYS[day.weekday()], ()))
    ]
    for block in blocks:
        windows = [piece for window in windows for piece in _subtract(window, block)]
    return [window for window in windows if window.start < window.end]


def _subtract(window: Interval, block: Interval) -> list[Interval]:
    if not window.overlaps(block):
        return [window]
    pieces = []
    if window.start < block.start:
        pieces.append(Interval(window.start, block.start))
    if block.end < window.end:
        pieces.append(Interval(block.end, window.end))
    return pieces


def slot_starts(windows: Iterable[Interval], duration: timedelta) -> Iterator[datetime]:
    """Slot start instants: from each window's opening, every ``duration``, while it fits."""
    if duration <= timedelta(0):
        raise InvalidValueError("a slot must last longer than zero minutes")
    for window in windows:
        start = window.start
        while start + duration <= window.end:
            yield start
            start += duration


def is_slot(span: Interval, windows: Iterable[Interval]) -> bool:
    """Whether ``span`` is one of the slots ``slot_starts`` gives for ``windows`` and the
    span's own length: inside a window, a whole number of lengths after its opening."""
    duration = span.end - span.start
    return duration > timedelta(0) and any(
        window.contains(span) and (span.start - window.start) % duration == timedelta(0)
        for window in windows
    )


def merge_touching(windows: Iterable[Interval]) -> list[Interval]:
    """Sorted windows with touching or overlapping neighbours joined (e.g. across midnight)."""
    merged: list[Interval] = []
    for window in sorted(windows):
        if merged and window.start <= merged[-1].end:
            merged[-1] = Interval(merged[-1].start, max(merged[-1].end, window.end))
        else:
            merged.append(window)
    return merged


def local_days(start: datetime, end: datetime, tz: ZoneInfo) -> list[date]:
    """Every local date in ``tz`` touched by the instants [start, end)."""
    first = start.astimezone(tz).date()
    last = (end - timedelta(microseconds=1)).astimezone(tz).date()
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]
