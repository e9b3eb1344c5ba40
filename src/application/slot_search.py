"""Free-slot search over the catalog and availability read models."""

from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import accumulate
from typing import Any, NamedTuple
from uuid import UUID
from zoneinfo import ZoneInfo

from application.errors import InvalidQueryError, NotFoundError
from application.ports import BusyReader, CatalogReader, Clock, ResourceEntry
from domain.appointment_type import booking_horizon_days
from domain.errors import InvalidValueError
from domain.location import site_on
from domain.resource import windows_on
from domain.schedule import Interval, local_days, zone

MAX_RANGE = timedelta(days=31)
Spec = dict[str, Any]
MAX_OPENINGS = 20_000  # (resource, day) pairs whose open windows are remembered


@dataclass(frozen=True)
class Slot:
    start: datetime
    end: datetime
    location_id: UUID
    resource_id: UUID
    timezone: str
    site: str


@dataclass(frozen=True)
class FreeDay:
    """A local day with free slots: how many, and when the first one starts."""

    count: int
    first: datetime


class _FreeStarts(NamedTuple):
    """The free slot starts of one resource on one local day of its location."""

    resource: ResourceEntry
    day: date
    starts: list[datetime]
    duration: timedelta
    timezone: str
    site: str


class SlotSearch:
    """Finds bookable slots; a booking still re-checks everything in the write model."""

    def __init__(self, catalog: CatalogReader, busy: BusyReader, clock: Clock) -> None:
        self._catalog = catalog
        self._busy = busy
        self._clock = clock
        self._openings: dict[tuple[UUID, date], tuple[Spec, Spec, list[Interval], str]] = {}

    def find(
        self,
        *,
        appointment_type_id: UUID,
        start: datetime,
        end: datetime,
        location_id: UUID | None = None,
    ) -> list[Slot]:
        """Free slots for the exam starting in [start, end), soonest first, one per
        location and start time."""
        found: dict[tuple[str, datetime], Slot] = {}
        for free in self._free(appointment_type_id, start, end, location_id):
            resource, duration = free.resource, free.duration
            location_key = str(resource.location_id)
            for slot_start in free.starts:
                key = (location_key, slot_start)
                if key not in found:
                    found[key] = Slot(
                        slot_start,
                        slot_start + duration,
                        resource.location_id,
                        resource.id,
                        free.timezone,
                        free.site,
                    )
        return [found[key] for key in sorted(found, key=lambda k: (k[1], k[0]))]

    def horizon(self, appointment_type_id: UUID) -> timedelta:
        """How far ahead of now the exam is offered (its booking horizon): a search that
        ends within it offers nothing more as time passes, only less."""
        return timedelta(days=booking_horizon_days(self._exam(appointment_type_id)))

    def _exam(self, appointment_type_id: UUID) -> Spec:
        exam = dict(self._catalog.appointment_types()).get(appointment_type_id)
        if exam is None:
            raise NotFoundError("no such appointment type")
        return exam

    def free_days(
        self, *, appointment_type_id: UUID, location_id: UUID, start: datetime, end: datetime
    ) -> dict[date, FreeDay]:
        """The local days (in the location's zone) with a free slot for the exam starting
        in [start, end), each with how many and when the first starts: what ``find``
        gives, counted by day without building every slot (for a page that lists days)."""
        runs: dict[date, list[list[datetime]]] = {}
        for free in self._free(appointment_type_id, start, end, location_id):
            if free.starts:
                runs.setdefault(free.day, []).append(free.starts)
        days = {}
        for day, lists in sorted(runs.items()):
            # One machine's starts are distinct; two machines may share some.
            found = lists[0] if len(lists) == 1 else set().union(*lists)
            days[day] = FreeDay(len(found), min(found))
        return days

    def _free(
        self,
        appointment_type_id: UUID,
        start: datetime,
        end: datetime,
        location_id: UUID | None,
    ) -> Iterator[_FreeStarts]:
        """The free slot starts in [start, end) of each resource for the exam, one local
        day of its location at a time (a start two resources share comes from each)."""
        if start.tzinfo is None or end.tzinfo is None:
            raise InvalidQueryError("start and end need a UTC offset, e.g. 2026-12-01T00:00:00Z")
        if end <= start:
            raise InvalidQueryError("end must be after start")
        if end - start > MAX_RANGE:
            raise InvalidQueryError(f"a search covers at most {MAX_RANGE.days} days")
        exam = self._exam(appointment_type_id)
        duration = timedelta(minutes=int(exam["duration_minutes"]))
        if duration <= timedelta(0):
            raise InvalidValueError("a slot must last longer than zero minutes")
        now = self._clock.now()
        start = max(start, now)
        # Nothing beyond the exam's booking horizon is offered (a booking there is refused).
        end = min(end, now + timedelta(days=booking_horizon_days(exam)))
        resources = self._catalog.resources(str(exam["modality"]), location_id)
        if (
            location_id is not None
            and not resources
            and location_id not in dict(self._catalog.locations())
        ):
            raise NotFoundError("no such location")
        if end <= start:
            return
        busy = self._busy.busy([r.id for r in resources], start - duration, end + duration)
        for resource in resources:
            tz_name = resource.location_spec["timezone"]
            tz = zone(tz_name)
            taken = sorted(busy.get(resource.id, []))
            taken_starts = [interval.start for interval in taken]
            reach = list(accumulate((interval.end for interval in taken), max))
            for day in local_days(start, end, tz):
                windows, site_name = self._opening(resource, day, tz)
                starts = [
                    slot_start
                    for window in windows
                    for slot_start in _free_in(window, duration, start, end, reach, taken_starts)
                ]
                yield _FreeStarts(resource, day, starts, duration, tz_name, site_name)

    def _opening(
        self, resource: ResourceEntry, day: date, tz: ZoneInfo
    ) -> tuple[list[Interval], str]:
        """The resource's open windows on a local day and the site it is at, remembered
        while the catalog read model hands out the same specs (the cached reader does
        until the catalog changes): working them out is most of a month's search."""
        key = (resource.id, day)
        known = self._openings.get(key)
        if known is not None and known[0] is resource.spec and known[1] is resource.location_spec:
            return known[2], known[3]
        site = site_on(resource.location_spec, day)
        windows = windows_on(resource.spec, day, tz, operating=site is not None)
        site_name = site.name if site else ""
        if len(self._openings) >= MAX_OPENINGS:
            self._openings.clear()
        self._openings[key] = (resource.spec, resource.location_spec, windows, site_name)
        return windows, site_name


def _free_in(
    window: Interval,
    duration: timedelta,
    start: datetime,
    end: datetime,
    reach: list[datetime],
    taken_starts: list[datetime],
) -> list[datetime]:
    """The slot starts of one window (``slot_starts``: from its opening, every
    ``duration``, while the slot fits) that lie in [start, end) and overlap no
    reservation; one check for the whole run when no reservation touches it."""
    fits = (window.end - window.start) // duration
    first = max(0, -((window.start - start) // duration))  # the first at or after start
    stop = min(fits, -((window.start - end) // duration))  # the first at or after end
    if first >= stop:
        return []
    run_start = window.start + duration * first
    run_end = window.start + duration * stop
    candidates = [run_start + duration * k for k in range(stop - first)]
    if not _overlaps_any(reach, taken_starts, run_start, run_end):
        return candidates
    return [s for s in candidates if not _overlaps_any(reach, taken_starts, s, s + duration)]


def _overlaps_any(
    reach: list[datetime], starts: list[datetime], start: datetime, end: datetime
) -> bool:
    """Whether [start, end) overlaps any reservation, given their starts in order and
    ``reach``, the latest end among each start and those before it. (Reservations of one
    resource can overlap for a moment in the read model, while it applies the events of
    one save one at a time; the latest end, not the last one, decides.)"""
    index = bisect_left(starts, end)
    return index > 0 and reach[index - 1] > start
