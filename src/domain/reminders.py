"""When the reminders of one exam are due, and when any delivery may go given quiet hours.

Pure functions of their arguments (the caller passes "now"), so the same appointment,
offsets and quiet hours always give the same schedule.

**Offsets across a DST change.** An offset is split into whole days and a remainder. The
days count on the location's calendar: the "24 h" reminder of a 09:00 exam is due at
09:00 the day before, and the "72 h" one at 09:00 three days before, whatever the clocks
did in between; that is what patients expect ("the day before at the same time"). The
remainder counts in real elapsed time ("2 h" before a 09:00 exam is 07:00, even on the
night the clocks change). A wall-clock time the clocks skip is read on the offset in force
before the change (02:30 on a spring-forward night is 03:30 of the new time); one they
repeat is the first of the two. Where a zone changed its offset by more than three hours
(a skipped or doubled calendar day, as Samoa at the end of 2011), the calendar rule gives
way to real time for that reminder.

**Quiet hours** are a half-open span of the patient's wall-clock times, [start, end),
crossing midnight when start > end (21:00-08:00). A delivery due inside waits until they
end (``hold_until``); an end the clocks skip is read on the old offset, like any skipped
time (quiet hours ending at 02:30 end at 03:30 on a spring-forward night). For a
reminder, when waiting would bring it to or past the exam's start or the next (later)
reminder, it goes instead one minute before that night's quiet hours began; if that too
is not possible (already passed, or inside quiet hours on a night the clocks change),
the reminder is not created. Safety notices (a cancelled exam tomorrow) are exempt:
``exempt=True`` leaves the due times where they are.

**What is not created**: a reminder whose time (start minus offset) has passed, one at or
after the exam's start, and one not strictly before the next reminder (two offsets that
land on the same instant, or whose order a DST change inverts, give one reminder: the
one nearer the exam).
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from domain.errors import InvalidValueError
from domain.schedule import zone as zone_named

DAY = timedelta(days=1)
# The most a zone's offset changes at a DST change (Antarctica/Troll: 2 h); more than this
# between the calendar rule and real time means the zone skipped or doubled a day.
LARGEST_DST_SHIFT = timedelta(hours=3)
# How long before quiet hours begin a reminder moved ahead of them is due.
AHEAD_OF_QUIET_HOURS = timedelta(minutes=1)
# The longest offset accepted: a year before the exam.
LONGEST_OFFSET = timedelta(days=366)

ON_TIME = "on_time"
AFTER_QUIET_HOURS = "after_quiet_hours"
BEFORE_QUIET_HOURS = "before_quiet_hours"


@dataclass(frozen=True)
class QuietHours:
    """The patient's wall-clock times when nothing but safety notices should reach them:
    [start, end), crossing midnight when start > end. The zone is the patient's, passed
    where the hours are used."""

    start: time
    end: time

    def __post_init__(self) -> None:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise InvalidValueError("quiet hours are wall-clock times, without a zone")
        if self.start == self.end:
            raise InvalidValueError("quiet hours need an end different from their start")

    @classmethod
    def parse(cls, text: str) -> "QuietHours":
        """``"21:00-08:00"``."""
        try:
            first, second = (part.strip() for part in text.split("-"))
            return cls(time.fromisoformat(first), time.fromisoformat(second))
        except ValueError as error:
            raise InvalidValueError(f"quiet hours {text!r} are not HH:MM-HH:MM") from error

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"

    def covers(self, wall_clock: time) -> bool:
        """Whether this wall-clock time lies inside the quiet hours."""
        if self.start < self.end:
            return self.start <= wall_clock < self.end
        return wall_clock >= self.start or wall_clock < self.end

    def contains(self, instant: datetime, zone: str) -> bool:
        """Whether ``instant`` falls inside the quiet hours as the clocks of ``zone`` show."""
        local = _aware(instant).astimezone(zone_named(zone))
        return self.covers(local.time().replace(tzinfo=None))


@dataclass(frozen=True)
class ScheduledReminder:
    """One reminder: ``due`` is when it may go (UTC); ``planned`` is the exam's start minus
    ``offset`` before quiet hours moved it; ``placement`` says whether they did
    (``on_time``, ``after_quiet_hours``, ``before_quiet_hours``)."""

    offset: timedelta
    due: datetime
    planned: datetime
    placement: str


def reminder_offsets(
    exam_type_offsets: Sequence[timedelta] | None, centre_offsets: Sequence[timedelta]
) -> tuple[timedelta, ...]:
    """The offsets that apply to one exam: its type's when the type sets them (an empty
    list meaning "no reminders for this exam"), else the centre's defaults. Largest first,
    each once."""
    chosen = centre_offsets if exam_type_offsets is None else exam_type_offsets
    for offset in chosen:
        if not timedelta(0) < offset <= LONGEST_OFFSET:
            raise InvalidValueError("a reminder offset is a positive time, at most a year")
    return tuple(sorted(set(chosen), reverse=True))


def parse_offsets(text: str) -> tuple[timedelta, ...]:
    """``"72h, 24h"`` (also ``d`` for days and ``m`` for minutes); ``""`` is no reminders."""
    units = {"d": timedelta(days=1), "h": timedelta(hours=1), "m": timedelta(minutes=1)}
    offsets = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        number, unit = part[:-1].strip(), part[-1:].lower()
        if unit not in units or not number.isdigit() or int(number) == 0 or len(number) > 5:
            raise InvalidValueError(f"reminder offset {part!r} is not like 72h, 2d or 90m")
        offsets.append(int(number) * units[unit])
    return reminder_offsets(None, offsets)


def planned_time(start: datetime, offset: timedelta, zone: str) -> datetime:
    """The exam's ``start`` minus ``offset``: whole days on the location's calendar (same
    wall-clock time), the rest in real time. UTC."""
    start = _aware(start).astimezone(UTC)
    days, rest = divmod(offset, DAY)
    real = start - offset
    if not days:
        return real
    where = zone_named(zone)
    local = start.astimezone(where)
    wall_clock = local.time().replace(fold=0)
    earlier = datetime.combine(local.date() - timedelta(days=days), wall_clock, where)
    calendar = earlier.astimezone(UTC) - rest
    return calendar if abs(calendar - real) <= LARGEST_DST_SHIFT else real


def hold_until(due: datetime, quiet_hours: QuietHours | None, zone: str) -> datetime:
    """When a delivery due at ``due`` may go: ``due`` itself outside quiet hours, else the
    end of the quiet hours it falls in (as the clocks of the patient's ``zone`` show). UTC."""
    held = _aware(due).astimezone(UTC)
    if quiet_hours is None:
        return held
    # Every day has allowed times, but a DST change can skip one day's: look a few days on
    # (each step goes to the next instant the clocks read the end of the quiet hours).
    for _ in range(8):
        if not quiet_hours.contains(held, zone):
            return held
        held = min(t for t in _wall_clock_instants(held, quiet_hours.end, zone) if t > held)
    raise InvalidValueError(f"quiet hours {quiet_hours} leave no time in {zone}")


def reminder_schedule(
    start: datetime,
    location_zone: str,
    offsets: Iterable[timedelta],
    now: datetime,
    quiet_hours: QuietHours | None = None,
    patient_zone: str | None = None,
    exempt: bool = False,
) -> list[ScheduledReminder]:
    """The reminders of an exam starting at ``start`` (aware), computed at ``now``: in due
    order (largest offset first), none before ``now``, none at or after ``start``, no two
    at one instant, none inside the quiet hours (read in ``patient_zone``, the location's
    when not given) unless ``exempt``. The rules are in the module's docstring."""
    start = _aware(start).astimezone(UTC)
    now = _aware(now).astimezone(UTC)
    quiet_zone = patient_zone or location_zone
    zone_named(location_zone)
    zone_named(quiet_zone)
    quiet = None if exempt else quiet_hours
    chosen: list[ScheduledReminder] = []
    bound = start  # every reminder is strictly before the exam and the next reminder
    for offset in sorted(reminder_offsets(None, list(offsets))):
        planned = planned_time(start, offset, location_zone)
        if planned < now or planned >= bound:
            continue
        placed = _place(planned, bound, quiet, quiet_zone)
        if placed is None or placed[0] < now:
            continue
        due, placement = placed
        chosen.append(ScheduledReminder(offset, due, planned, placement))
        bound = due
    return list(reversed(chosen))


def _place(
    planned: datetime, bound: datetime, quiet: QuietHours | None, zone: str
) -> tuple[datetime, str] | None:
    """Where quiet hours let a reminder planned at ``planned`` go, strictly before ``bound``."""
    if quiet is None or not quiet.contains(planned, zone):
        return planned, ON_TIME
    held = hold_until(planned, quiet, zone)
    if held < bound:
        return held, AFTER_QUIET_HOURS
    # When the quiet hours began: the last instant the clocks read their start, or, on a
    # night the clocks skip it, the same time read on the new offset (just before the gap).
    began = [t for t in _wall_clock_instants(planned, quiet.start, zone) if t <= planned]
    for moment in reversed(began[-2:]):
        ahead = moment - AHEAD_OF_QUIET_HOURS
        if not quiet.contains(ahead, zone):
            return ahead, BEFORE_QUIET_HOURS
    return None


def _wall_clock_instants(near: datetime, wall_clock: time, zone: str) -> list[datetime]:
    """The instants at which the clocks of ``zone`` read ``wall_clock``, from two days
    before ``near`` to two days after; a skipped time counts on either side of the gap."""
    where = zone_named(zone)
    local_day = near.astimezone(where).date()
    found = set()
    for shift in range(-2, 3):
        day: date = local_day + timedelta(days=shift)
        for fold in (0, 1):
            moment = datetime.combine(day, wall_clock, where).replace(fold=fold)
            found.add(moment.astimezone(UTC))
    return sorted(found)


def _aware(instant: datetime) -> datetime:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise InvalidValueError("times given to the reminder schedule carry their offset")
    return instant
