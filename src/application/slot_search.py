"""Free-slot search over the catalog and availability read models."""

from bisect import bisect_left
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import accumulate
from uuid import UUID

from application.errors import InvalidQueryError, NotFoundError
from application.ports import BusyReader, CatalogReader, Clock
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
            return []
        busy = self._busy.busy([r.id for r in resources], start - duration, end + duration)
        found: dict[tuple[str, datetime], Slot] = {}
        for resource in resources:
            tz_name = resource.location_spec["timezone"]
            tz = zone(tz_name)
            location_key = str(resource.location_id)
            taken = sorted(busy.get(resource.id, []))
            taken_starts = [interval.start for interval in taken]
            reach = list(accumulate((interval.end for interval in taken), max))
            for day in local_days(start, end, tz):
                site = site_on(resource.location_spec, day)
                site_name = site.name if site else ""
                windows = windows_on(resource.spec, day, tz, operating=site is not None)
                for slot_start in slot_starts(windows, duration):
                    if not start <= slot_start < end:
                        continue
                    key = (location_key, slot_start)
                    if key in found:
                        continue
                    slot_end = slot_start + duration
                    if _overlaps_any(reach, taken_starts, slot_start, slot_end):
                        continue
                    found[key] = Slot(
                        slot_start, slot_end, resource.location_id, resource.id, tz_name, site_name
                    )
        return [found[key] for key in sorted(found, key=lambda k: (k[1], k[0]))]


def _overlaps_any(
    reach: list[datetime], starts: list[datetime], start: datetime, end: datetime
) -> bool:
    """Whether [start, end) overlaps any reservation, given their starts in order and
    ``reach``, the latest end among each start and those before it. (Reservations of one
    resource can overlap for a moment in the read model, while it applies the events of
    one save one at a time; the latest end, not the last one, decides.)"""
    index = bisect_left(starts, end)
    return index > 0 and reach[index - 1] > start
