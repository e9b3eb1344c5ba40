"""Staff changes to the catalog, one entry at a time, refusing those that would strand
booked appointments unless told to go ahead.

Which bookings a change strands is decided from the appointments read model
(``AppointmentReader.active_on_resource``), after waiting until it has caught up with the
head of the scheduling log. Why not the write model's ResourceDay calendars: a change of
weekly hours, a location's time zone or a move to another location reaches every future
day, and the write model can only be asked about one calendar day at a time with no
bound on how far ahead patients book; the read model answers "every active booking of
this resource still to come" in one indexed query. Waiting for the head first means
every booking committed before the check is seen. A booking committed between the check
and the catalog save is not (the two applications do not share a transaction): it was
placed against the old hours and stays booked outside the new ones.

A change forced over stranded bookings saves a ``Stranding`` listing them with the change
(one atomic write of the catalog), then settles it: each listed appointment moves to
``needs_new_time`` and its calendar time is freed (``application.stranded``, which also
settles a stranding left unsettled by a crash between the two writes).

Only bookings the change itself strands are listed: those that fit the resource's
windows before the change and not after it. A booking left outside by an earlier forced
change is not listed again, or every later edit of that resource would need ``force``.
"""

import itertools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any, Generic, Literal, TypeVar
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

from application import ports
from application.base import Position, retrying
from application.catalog import Catalog, CatalogChange
from application.catalog_file import (
    AppointmentTypeEntry,
    LocationEntry,
    ResourceEntry,
    parse_catalog,
)
from application.errors import ConcurrencyError, NotFoundError
from application.ports import AppointmentReader, CatalogReader, Clock, ReadModelSync
from application.scheduling import Scheduling
from application.stranded import StrandedAppointments
from domain.appointment import BLOCK, CLOSURE, HOURS, LOCATION, RESOURCE
from domain.appointment_type import MODALITIES, AppointmentType
from domain.context import Actor
from domain.errors import DomainError, InvalidValueError
from domain.location import Location, site_on
from domain.location import check_spec as check_location_spec
from domain.resource import Resource, normalise_spec, windows_on
from domain.schedule import Interval, local_days, merge_touching, zone
from domain.stranding import Stranding

T = TypeVar("T")


class WouldStrandAppointmentsError(DomainError):
    """The change would leave booked appointments outside the resource's opening windows."""

    code = "would_strand_appointments"

    def __init__(self, detail: str, appointments: list["Booking"]) -> None:
        super().__init__(detail)
        self.appointments = appointments


class OutsideCentresError(DomainError):
    """The caller works at other centres than the one the change touches."""

    code = "forbidden"


class UnknownLocationError(DomainError):
    code = "unknown_location"


@dataclass(frozen=True)
class Editor:
    """Who asks for a change: the actor its events carry, and the centres they work at
    (none listed: every centre)."""

    actor: Actor
    centres: frozenset[UUID] = frozenset()

    def check_centre(self, location_id: UUID) -> None:
        if self.centres and location_id not in self.centres:
            raise OutsideCentresError("that location is not one of your centres")

    def check_every_centre(self) -> None:
        if self.centres:
            raise OutsideCentresError("appointment types are shared by every centre")


@dataclass(frozen=True)
class Booking:
    """An active appointment holding time on a resource."""

    id: UUID
    patient_id: UUID
    location_id: UUID
    start: datetime
    end: datetime
    timezone: str
    resource_id: UUID | None = None


@dataclass(frozen=True)
class Opening:
    """Everything that decides when a resource is open: its spec, and its location's."""

    resource: dict[str, Any]
    location_id: UUID
    location: dict[str, Any]

    def fits(self, booking: Booking) -> bool:
        """Whether the booking is at this location and inside one of its open windows."""
        if booking.location_id != self.location_id:
            return False
        tz = zone(self.location["timezone"])
        windows = merge_touching(
            window
            for day in local_days(booking.start, booking.end, tz)
            for window in windows_on(
                self.resource, day, tz, operating=site_on(self.location, day) is not None
            )
        )
        span = Interval(booking.start, booking.end)
        return any(window.contains(span) for window in windows)


def stranded(bookings: Iterable[Booking], *, before: Opening, after: Opening) -> list[Booking]:
    """Pure: the bookings that fit the resource as it was and not as it would be."""
    return [b for b in bookings if before.fits(b) and not after.fits(b)]


def block_index(blocks: list[dict[str, Any]], which: str, tz: ZoneInfo) -> int:
    """Pure: the position of the block ``which`` names, by index (``0``, ``1``...) or by
    its start (ISO-8601, local wall-clock time in ``tz`` or with an offset)."""
    if re.fullmatch("[0-9]{1,9}", which):
        index = int(which)
        if index >= len(blocks):
            raise NotFoundError(f"there is no block {index} (the resource has {len(blocks)})")
        return index
    try:
        start = aware(datetime.fromisoformat(which), tz)
    except ValueError as error:
        raise InvalidValueError(
            f"{which!r} is neither a block index nor a start time like 2026-12-09T12:00"
        ) from error
    for index, block in enumerate(blocks):
        if datetime.fromisoformat(block["start"]) == start:
            return index
    raise NotFoundError(f"no block starts at {start.isoformat()}")


def aware(moment: datetime, tz: ZoneInfo) -> datetime:
    """A time with an offset as it is; a wall-clock one in ``tz``, which must exist there
    (a time in the hour skipped by a DST change is refused; a repeated one is its first)."""
    local = moment if moment.tzinfo is not None else moment.replace(tzinfo=tz)
    try:
        back = local.astimezone(UTC).astimezone(tz)
    except OverflowError:
        raise InvalidValueError(f"{moment.isoformat()} is out of range") from None
    if moment.tzinfo is None and back.replace(tzinfo=None) != moment:
        raise InvalidValueError(f"{moment.isoformat()} does not exist in {tz.key} (DST change)")
    return local


Outcome = Literal["created", "revised", "unchanged"]


@dataclass(frozen=True)
class EntryChange(Generic[T]):
    """What a staff change did: ``created``, ``revised`` or ``unchanged``; the entry as it
    is now; the booked appointments it stranded (with ``force``); where the write landed."""

    outcome: Outcome
    entry: T
    position: Position | None
    stranded: list[Booking] = field(default_factory=list)
    displaced: list[Booking] = field(default_factory=list)
    """The stranded appointments this change moved to ``needs_new_time`` (those still
    booked at their stranded time when it was settled)."""
    displaced_at: Position | None = None
    """Where that move landed in the scheduling log."""


@dataclass(frozen=True)
class Why:
    """What kind of change strands bookings (``domain.appointment``'s causes) and the
    reason the appointments it strands are given, in the patient's words."""

    cause: str
    reason: str


Spec = tuple[UUID, dict[str, Any]]
Saved = tuple[EntryChange[T], Stranding | None]
"""A change saved in the catalog, and the stranding saved with it (to settle next)."""
_CHANGED = "the centre changed its opening times"
_EQUIPMENT = "the equipment for this exam"
Edit = Callable[[dict[str, Any], ZoneInfo], dict[str, Any]]
"""A change of a resource's spec, given the time zone of its location."""


class CatalogAdmin:
    """The staff catalog commands: create or revise one location, resource or appointment
    type, and the front desk's closures, blocks and hours. Every change is one event on
    the entry, carrying the editor's actor."""

    def __init__(
        self,
        catalog: Catalog,
        scheduling: Scheduling,
        appointments: AppointmentReader,
        catalog_view: CatalogReader,
        sync: ReadModelSync,
        clock: Clock,
    ) -> None:
        self._catalog = catalog
        self._scheduling = scheduling
        self._appointments = appointments
        self._catalog_view = catalog_view
        self._sync = sync
        self._clock = clock

    # Commands -------------------------------------------------------------------------

    def put_location(
        self, entry: LocationEntry, editor: Editor, *, force: bool = False
    ) -> EntryChange[Spec]:
        """Create or revise a location. A new time zone or new mobile visit days move the
        windows of all its resources, so their bookings are checked too."""
        spec = parse_catalog({"locations": [entry.model_dump(mode="json")]}).locations[0]
        check_location_spec(spec)
        location_id = Location.create_id(entry.code)
        editor.check_centre(location_id)

        def attempt() -> Saved[Spec]:
            current = self._maybe(self._catalog.location, location_id)
            lost: list[Booking] = []
            if current is not None:
                for resource_id in current.resource_ids:
                    resource = self._catalog.resource(resource_id)
                    lost += stranded(
                        self._bookings(resource_id),
                        before=Opening(resource.spec, location_id, current.spec),
                        after=Opening(resource.spec, location_id, spec),
                    )
            self._refuse_unless_forced(lost, force)
            why = Why(LOCATION, f"the centre changed the opening times of {spec['name']}")
            stranding = _stranding(lost, why, editor)
            change = self._catalog.put(
                Location,
                spec,
                editor.actor,
                expected_version=_version(current),
                also=[stranding] if stranding else [],
            )
            return _entry_change(change, (location_id, spec), lost), stranding

        return self._settled(retrying(attempt))

    def put_resource(
        self, entry: ResourceEntry, editor: Editor, *, force: bool = False
    ) -> EntryChange[ports.ResourceEntry]:
        """Create or revise a resource (a move to another location strands its bookings)."""
        location = self._known_location(entry.location)
        tz = zone(location.timezone)
        for block in entry.blocks:  # refuse wall-clock times that a DST change skips
            aware(block.start, tz)
            aware(block.end, tz)
        # The catalog file's own translation, so that loading the file later finds no change.
        document = {"locations": [location.spec], "resources": [entry.model_dump(mode="json")]}
        spec = parse_catalog(document).resources[0]
        resource_id = Resource.create_id(entry.code)

        why = Why(RESOURCE, f"the centre changed the opening times of {entry.name}")

        def attempt() -> Saved[ports.ResourceEntry]:
            current = self._maybe(self._catalog.resource, resource_id)
            return self._save_resource(current, spec, editor, force, why)

        return self._settled(retrying(attempt))

    def put_appointment_type(
        self, entry: AppointmentTypeEntry, editor: Editor
    ) -> EntryChange[Spec]:
        """Create or revise an exam type (a new duration does not move booked exams)."""
        editor.check_every_centre()
        spec = parse_catalog({"appointment_types": [entry.model_dump(mode="json")]})
        exam_spec = spec.appointment_types[0]
        type_id = AppointmentType.create_id(entry.code)

        def attempt() -> EntryChange[Spec]:
            current = self._maybe(self._catalog.appointment_type, type_id)
            change = self._catalog.put(
                AppointmentType, exam_spec, editor.actor, expected_version=_version(current)
            )
            return _entry_change(change, (type_id, exam_spec), [])

        return retrying(attempt)

    def add_closure(
        self, code: str, day: date, reason: str, editor: Editor, *, force: bool = False
    ) -> EntryChange[ports.ResourceEntry]:
        """Close the resource for a whole local day (again: only the reason changes)."""
        why = Why(CLOSURE, f"{_EQUIPMENT} is closed on {day.isoformat()}" + _because(reason))

        def edit(spec: dict[str, Any], _: ZoneInfo) -> dict[str, Any]:
            closures = [c for c in spec["closures"] if c["date"] != day.isoformat()]
            return {**spec, "closures": [*closures, {"date": day.isoformat(), "reason": reason}]}

        return self._edit_resource(code, edit, editor, force, why)

    def remove_closure(
        self, code: str, day: date, editor: Editor
    ) -> EntryChange[ports.ResourceEntry]:
        """Open the resource again on a day it was closed."""

        def edit(spec: dict[str, Any], _: ZoneInfo) -> dict[str, Any]:
            closures = [c for c in spec["closures"] if c["date"] != day.isoformat()]
            if len(closures) == len(spec["closures"]):
                raise NotFoundError(f"{code!r} is not closed on {day.isoformat()}")
            return {**spec, "closures": closures}

        return self._edit_resource(code, edit, editor, force=False)

    def add_block(
        self,
        code: str,
        start: datetime,
        end: datetime,
        reason: str,
        editor: Editor,
        *,
        force: bool = False,
    ) -> EntryChange[ports.ResourceEntry]:
        """Take the resource out of service from ``start`` to ``end`` (wall-clock times in
        its location's zone, or with offsets)."""
        why = Why(
            BLOCK,
            f"{_EQUIPMENT} is out of service from {start.isoformat(timespec='minutes')}"
            f" to {end.isoformat(timespec='minutes')}" + _because(reason),
        )

        def edit(spec: dict[str, Any], tz: ZoneInfo) -> dict[str, Any]:
            span = Interval(aware(start, tz), aware(end, tz))
            kept = [b for b in spec["blocks"] if _block_span(b) != span]
            block = {"start": span.start.isoformat(), "end": span.end.isoformat(), "reason": reason}
            return {**spec, "blocks": [*kept, block]}

        return self._edit_resource(code, edit, editor, force, why)

    def remove_block(
        self, code: str, which: str, editor: Editor
    ) -> EntryChange[ports.ResourceEntry]:
        """Put the resource back in service: the block named by index or by its start."""

        def edit(spec: dict[str, Any], tz: ZoneInfo) -> dict[str, Any]:
            index = block_index(spec["blocks"], which, tz)
            return {**spec, "blocks": [b for i, b in enumerate(spec["blocks"]) if i != index]}

        return self._edit_resource(code, edit, editor, force=False)

    def set_hours(
        self, code: str, hours: dict[str, list[str]], editor: Editor, *, force: bool = False
    ) -> EntryChange[ports.ResourceEntry]:
        """Replace the resource's weekly opening hours (weekday -> ``HH:MM-HH:MM`` spans)."""
        why = Why(HOURS, f"the opening hours of {_EQUIPMENT} changed")
        return self._edit_resource(
            code, lambda spec, _: {**spec, "hours": hours}, editor, force, why
        )

    # Queries ---------------------------------------------------------------------------

    def location(self, code: str) -> Spec:
        """One location by code, as the write model has it now."""
        location = self._catalog.location(Location.create_id(code))
        return location.id, location.spec

    def appointment_type(self, code: str) -> Spec:
        """One appointment type by code, as the write model has it now."""
        exam = self._catalog.appointment_type(AppointmentType.create_id(code))
        return exam.id, exam.spec

    def resource(self, code: str) -> ports.ResourceEntry:
        """One resource by code with its location, as the write model has them now."""
        resource = self._catalog.resource(Resource.create_id(code))
        location = self._catalog.location(resource.location_id)
        return ports.ResourceEntry(resource.id, resource.spec, location.id, location.spec)

    def resources(self, location_code: str | None = None) -> list[ports.ResourceEntry]:
        """Every resource (of one location), by location and code, from the read model."""
        location_id = None
        if location_code is not None:
            location_id = Location.create_id(location_code)
            if location_id not in dict(self._catalog_view.locations()):
                raise NotFoundError(f"no such location {location_code!r}")
        found = itertools.chain.from_iterable(
            self._catalog_view.resources(modality, location_id) for modality in MODALITIES
        )
        return sorted(found, key=lambda r: (r.location_spec["code"], r.spec["code"]))

    # Internals -------------------------------------------------------------------------

    def _edit_resource(
        self, code: str, edit: Edit, editor: Editor, force: bool, why: Why | None = None
    ) -> EntryChange[ports.ResourceEntry]:
        def attempt() -> Saved[ports.ResourceEntry]:
            current = self._catalog.resource(Resource.create_id(code))
            tz = zone(self._catalog.location(current.location_id).timezone)
            return self._save_resource(current, edit(current.spec, tz), editor, force, why)

        return self._settled(retrying(attempt))

    def _settled(self, saved: "Saved[T]") -> EntryChange[T]:
        """The change, with the appointments its stranding (if any) moved to
        ``needs_new_time``; settled after the catalog's write (see ``application.stranded``)."""
        change, stranding = saved
        if stranding is None:
            return change
        settled = StrandedAppointments(self._scheduling).settle(stranding)
        if settled.position is not None:
            # The answer names the change's own position (one per answer); the read
            # models show the appointments as needing a new time by the time it is read.
            self._sync.wait(settled.position)
        moved = set(settled.moved)
        return replace(
            change,
            displaced=[b for b in change.stranded if b.id in moved],
            displaced_at=settled.position,
        )

    def _save_resource(
        self,
        current: Resource | None,
        spec: dict[str, Any],
        editor: Editor,
        force: bool,
        why: Why | None,
    ) -> "Saved[ports.ResourceEntry]":
        """Check and save a resource's new spec (``current``: as read, None when new)."""
        spec = normalise_spec(spec)
        location = self._catalog.location(UUID(spec["location_id"]))
        editor.check_centre(location.id)
        lost: list[Booking] = []
        if current is not None:
            was_at = self._catalog.location(current.location_id)
            editor.check_centre(was_at.id)
            lost = stranded(
                self._bookings(current.id),
                before=Opening(current.spec, was_at.id, was_at.spec),
                after=Opening(spec, location.id, location.spec),
            )
        self._refuse_unless_forced(lost, force)
        stranding = _stranding(lost, why or Why(RESOURCE, _CHANGED), editor)
        change = self._catalog.put(
            Resource,
            spec,
            editor.actor,
            expected_version=_version(current),
            also=[stranding] if stranding else [],
        )
        entry = ports.ResourceEntry(
            Resource.create_id(spec["code"]), spec, location.id, location.spec
        )
        return _entry_change(change, entry, lost), stranding

    def _known_location(self, code: str) -> Location:
        try:
            return self._catalog.location(Location.create_id(code))
        except NotFoundError:
            raise UnknownLocationError(f"there is no location {code!r}") from None

    def _bookings(self, resource_id: UUID) -> list[Booking]:
        """The resource's active bookings still to come, once the read model has caught up
        with every booking committed so far."""
        head = self._scheduling.recorder.max_notification_id()
        if head and not self._sync.wait(Position(self._scheduling.name, head)):
            raise ConcurrencyError("the appointment list is catching up; please try again")
        return [
            Booking(v.id, v.patient_id, v.location_id, v.start, v.end, v.timezone, resource_id)
            for v in self._appointments.active_on_resource(resource_id, self._clock.now())
        ]

    @staticmethod
    def _refuse_unless_forced(lost: list[Booking], force: bool) -> None:
        if lost and not force:
            raise WouldStrandAppointmentsError(
                f"{len(lost)} booked appointment(s) would fall outside the new opening times;"
                " rebook them first, or repeat with force=true to apply the change anyway",
                lost,
            )

    @staticmethod
    def _maybe(get: Callable[[UUID], T], aggregate_id: UUID) -> T | None:
        try:
            return get(aggregate_id)
        except NotFoundError:
            return None


def _version(aggregate: Any) -> int | None:
    return None if aggregate is None else int(aggregate.version)


def _block_span(block: dict[str, Any]) -> Interval:
    return Interval(datetime.fromisoformat(block["start"]), datetime.fromisoformat(block["end"]))


def _because(reason: str) -> str:
    return f" ({reason.strip()})" if reason.strip() else ""


def _stranding(lost: list[Booking], why: Why, editor: Editor) -> Stranding | None:
    """The stranding a forced change saves with itself (None when it strands nothing)."""
    if not lost:
        return None
    return Stranding.record(
        id=uuid4(),
        cause=why.cause,
        reason=why.reason,
        bookings=[
            Stranding.booking(b.id, b.resource_id, b.start, b.end)
            for b in lost
            if b.resource_id is not None
        ],
        meta=editor.actor.meta(),
    )


def _entry_change(change: CatalogChange, entry: T, lost: list[Booking]) -> EntryChange[T]:
    outcome: Outcome = "created" if change.created else "revised" if change.revised else "unchanged"
    return EntryChange(outcome, entry, change.position, lost)
