"""Free-slot search over the catalog and availability read models."""

from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import accumulate
from typing import NamedTuple
from uuid import UUID

from application.errors import InvalidQueryError, NotFoundError
from application.ports import BusyReader, CatalogReader, Clock, ResourceEntry
from domain.appointment_type import booking_horizon_days
from domain.location import site_on
from domain.resource import windows_on
from domain.schedule import local_days, slot_starts, zone

MAX_RANGE = timedelta(days=31)


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

    def free_days(
        self, *, appointment_type_id: UUID, location_id: UUID, start: datetime, end: datetime
    ) -> dict[date, FreeDay]:
        """The local days (in the location's zone) with a free slot for the exam starting
        in [start, end), each with how many and when the first starts: what ``find``
        gives, counted by day without building every slot (for a page that lists days)."""
        starts: dict[date, set[datetime]] = {}
        for free in self._free(appointment_type_id, start, end, location_id):
            if free.starts:
                starts.setdefault(free.day, set()).update(free.starts)
        return {day: FreeDay(len(found), min(found)) for day, found in sorted(starts.items())}

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
        exam = dict(self._catalog.appointment_types()).get(appointment_type_id)
        if exam is None:
            raise NotFoundError("no such appointment type")
        duration = timedelta(minutes=int(exam["duration_minutes"]))
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
                site = site_on(resource.location_spec, day)
                windows = windows_on(resource.spec, day, tz, operating=site is not None)
                starts = [
                    slot_start
                    for slot_start in slot_starts(windows, duration)
                    if start <= slot_start < end
                    and not _overlaps_any(reach, taken_starts, slot_start, slot_start + duration)
                ]
                yield _FreeStarts(
                    resource, day, starts, duration, tz_name, site.name if site else ""
                )


def _overlaps_any(
    reach: list[datetime], starts: list[datetime], start: datetime, end: datetime
) -> bool:
    """Whether [start, end) overlaps any reservation, given their starts in order and
    ``reach``, the latest end among each start and those before it. (Reservations of one
    resource can overlap for a moment in the read model, while it applies the events of
    one save one at a time; the latest end, not the last one, decides.)"""
    index = bisect_left(starts, end)
    return index > 0 and reach[index - 1] > start
