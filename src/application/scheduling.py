"""Scheduling application: appointments and the per-resource-per-day calendars
that keep them from overlapping, always saved together in one atomic write."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID, uuid4

from eventsourcing.application import AggregateNotFoundError

from application.base import BaseApplication, Position, retrying
from application.catalog import Catalog
from application.errors import IdempotencyKeyReusedError, NotFoundError
from application.ports import Clock
from domain.appointment import (
    Appointment,
    BookingInPastError,
    NotASlotError,
    OutsideOpeningHoursError,
)
from domain.context import Actor
from domain.errors import DomainError, InvalidValueError
from domain.identifiers import derived_id
from domain.location import Location
from domain.order import ImagingOrder, ResultReference
from domain.resource import Resource
from domain.resource_day import ResourceDay, SlotUnavailableError
from domain.ris_booking import OCCUPYING as RIS_OCCUPYING
from domain.ris_booking import RisBooking
from domain.schedule import Interval, is_slot, local_days, merge_touching, zone
from domain.unmatched_result import UnmatchedResult

MAX_ATTEMPTS = 16
T = TypeVar("T")


@dataclass(frozen=True)
class Written:
    """An appointment as a command left it, and where the write landed."""

    appointment: Appointment
    position: Position | None


@dataclass(frozen=True)
class Plan:
    """A decided change: the appointment and every aggregate to save with it."""

    appointment: Appointment
    aggregates: list[Any]


@dataclass
class _Placement:
    resource: Resource
    windows: list[Interval]
    timezone: str


class Scheduling(BaseApplication):
    name = "scheduling"

    def __init__(
        self,
        env: Any = None,
        *,
        catalog: Catalog | None = None,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(env)
        self._catalog = catalog
        self._clock = clock

    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            raise RuntimeError("this Scheduling instance was built for reading only")
        return self._catalog

    def now(self) -> datetime:
        if self._clock is None:
            raise RuntimeError("this Scheduling instance was built for reading only")
        return self._clock.now()

    # Commands -------------------------------------------------------------------------

    def book(
        self,
        *,
        patient_id: UUID,
        appointment_type_id: UUID,
        location_id: UUID,
        start: datetime,
        actor: Actor,
        idempotency_key: str | None = None,
    ) -> Written:
        """Book the exam at ``start`` on any free matching resource of the location.

        With an idempotency key, a retry returns the appointment the first call made.
        """
        appointment_id = (
            derived_id("appointment", str(patient_id), idempotency_key)
            if idempotency_key
            else uuid4()
        )

        return self._retrying(
            lambda: self._commit(
                self.plan_book(
                    appointment_id=appointment_id,
                    patient_id=patient_id,
                    appointment_type_id=appointment_type_id,
                    location_id=location_id,
                    start=start,
                    actor=actor,
                )
            )
        )

    def plan_book(
        self,
        *,
        appointment_id: UUID,
        patient_id: UUID,
        appointment_type_id: UUID,
        location_id: UUID,
        start: datetime,
        actor: Actor,
    ) -> "Plan":
        """Decide a booking against the current state, without saving it."""
        existing = self._find(appointment_id)
        if existing is not None:
            # A retry is the same request as the one that made the booking (compared with
            # the booking as first made: a reschedule since does not change the request).
            first: Appointment = self.repository.get(appointment_id, version=1)
            if (first.patient_id, first.appointment_type_id, first.location_id, first.start) != (
                patient_id,
                appointment_type_id,
                location_id,
                start,
            ):
                raise IdempotencyKeyReusedError(
                    "that Idempotency-Key was already used for a different booking"
                )
            return Plan(existing, [])
        exam = self.catalog.appointment_type(appointment_type_id)
        location = self.catalog.location(location_id)
        span = self._span(start, exam.duration_minutes)
        now = self.now()
        if span.start <= now:
            raise BookingInPastError("an appointment must start in the future")
        calendars: dict[UUID, ResourceDay] = {}
        placement = self._place(exam.modality, location, span, str(appointment_id), calendars)
        appointment = Appointment.book(
            id=appointment_id,
            patient_id=patient_id,
            appointment_type_id=exam.id,
            location_id=location.id,
            resource_id=placement.resource.id,
            span=span,
            timezone=placement.timezone,
            windows=placement.windows,
            now=now,
            meta=actor.meta(),
        )
        reserved = self._reserve(placement, span, str(appointment_id), calendars, actor)
        return Plan(appointment, [appointment, *reserved])

    def reschedule(
        self,
        appointment_id: UUID,
        *,
        start: datetime,
        location_id: UUID | None,
        reason: str,
        actor: Actor,
        owner: UUID | None,
    ) -> Written:
        """Move an appointment to a new start (and maybe location); same identity."""

        return self._retrying(
            lambda: self._commit(
                self.plan_reschedule(
                    appointment_id,
                    start=start,
                    location_id=location_id,
                    reason=reason,
                    actor=actor,
                    owner=owner,
                )
            )
        )

    def plan_reschedule(
        self,
        appointment_id: UUID,
        *,
        start: datetime,
        location_id: UUID | None,
        reason: str,
        actor: Actor,
        owner: UUID | None,
    ) -> "Plan":
        """Decide a move against the current state, without saving it."""
        appointment = self.appointment(appointment_id, owner)
        exam = self.catalog.appointment_type(appointment.appointment_type_id)
        location = self.catalog.location(location_id or appointment.location_id)
        span = self._span(start, exam.duration_minutes)
        calendars = self._release(appointment, actor)
        released = list(calendars.values())
        placement = self._place(
            exam.modality,
            location,
            span,
            str(appointment.id),
            calendars,
            prefer=appointment.resource_id,
        )
        appointment.reschedule(
            location_id=location.id,
            resource_id=placement.resource.id,
            span=span,
            timezone=placement.timezone,
            windows=placement.windows,
            now=self.now(),
            reason=reason,
            meta=actor.meta(),
        )
        reserved = self._reserve(placement, span, str(appointment.id), calendars, actor)
        touched = {calendar.id: calendar for calendar in [*released, *reserved]}
        return Plan(appointment, [appointment, *touched.values()])

    def cancel(
        self, appointment_id: UUID, *, reason: str, actor: Actor, owner: UUID | None
    ) -> Written:
        """Cancel and free the resource's time."""
        return self._retrying(
            lambda: self._commit(
                self.plan_cancel(appointment_id, reason=reason, actor=actor, owner=owner)
            )
        )

    def plan_cancel(
        self, appointment_id: UUID, *, reason: str, actor: Actor, owner: UUID | None
    ) -> "Plan":
        """Decide a cancellation against the current state, without saving it."""
        appointment = self.appointment(appointment_id, owner)
        appointment.cancel(reason=reason, meta=actor.meta())
        calendars = self._release(appointment, actor)
        return Plan(appointment, [appointment, *calendars.values()])

    def modify(
        self, appointment_id: UUID, *, notes: str, actor: Actor, owner: UUID | None
    ) -> Written:
        """Change an appointment's notes for the centre; its time stays."""
        return self._simple(
            appointment_id, lambda a: a.modify(notes=notes, meta=actor.meta()), owner
        )

    def check_in(self, appointment_id: UUID, *, actor: Actor) -> Written:
        """Front desk: the patient has arrived."""
        return self._simple(appointment_id, lambda a: a.check_in(now=self.now(), meta=actor.meta()))

    def complete(self, appointment_id: UUID, *, actor: Actor) -> Written:
        """Front desk: the exam was performed."""
        return self._simple(appointment_id, lambda a: a.complete(meta=actor.meta()))

    def mark_no_show(self, appointment_id: UUID, *, reason: str, actor: Actor) -> Written:
        """Front desk: the patient did not come; their time is freed."""

        def plan() -> Plan:
            appointment = self.appointment(appointment_id, None)
            appointment.mark_no_show(now=self.now(), reason=reason, meta=actor.meta())
            calendars = self._release(appointment, actor)
            return Plan(appointment, [appointment, *calendars.values()])

        return self._retrying(lambda: self._commit(plan()))

    # Queries of the write model --------------------------------------------------------

    def appointment(self, appointment_id: UUID, owner: UUID | None = None) -> Appointment:
        """One appointment; NotFoundError if missing or (with ``owner``) someone else's."""
        appointment = self._find(appointment_id)
        if appointment is None or (owner is not None and appointment.patient_id != owner):
            raise NotFoundError("no such appointment")
        return appointment

    def resource_day(self, resource_id: UUID, day: Any) -> ResourceDay | None:
        try:
            calendar: Any = self.repository.get(ResourceDay.create_id(resource_id, day))
        except AggregateNotFoundError:
            return None
        return calendar if isinstance(calendar, ResourceDay) else None

    # Internals -------------------------------------------------------------------------

    def _find(self, appointment_id: UUID) -> Appointment | None:
        try:
            aggregate: Any = self.repository.get(appointment_id)
        except AggregateNotFoundError:
            return None
        return aggregate if isinstance(aggregate, Appointment) else None

    @staticmethod
    def _span(start: datetime, minutes: int) -> Interval:
        if start.tzinfo is None or start.utcoffset() is None:
            raise OutsideOpeningHoursError("the start time needs a UTC offset")
        return Interval(start, start + timedelta(minutes=minutes))

    def _calendar(
        self, resource_id: UUID, day: Any, calendars: dict[UUID, ResourceDay]
    ) -> ResourceDay:
        calendar_id = ResourceDay.create_id(resource_id, day)
        if calendar_id not in calendars:
            calendars[calendar_id] = self.resource_day(resource_id, day) or ResourceDay(
                resource_id=resource_id, day=day
            )
        return calendars[calendar_id]

    def _place(
        self,
        modality: str,
        location: Location,
        span: Interval,
        holder: str,
        calendars: dict[UUID, ResourceDay],
        prefer: UUID | None = None,
    ) -> _Placement:
        """The first resource of the location that is open and free for ``span``, which
        must be one of its slots (as the slot search finds them: per local day)."""
        tz = zone(location.timezone)
        days = local_days(span.start, span.end, tz)
        ids = sorted(location.resource_ids, key=lambda rid: (rid != prefer, str(rid)))
        open_somewhere = a_slot_somewhere = False
        for resource_id in ids:
            resource = self.catalog.resource(resource_id)
            if resource.modality != modality:
                continue
            days_windows = [
                window
                for day in days
                for window in resource.windows_on(
                    day, tz, operating=location.site_on(day) is not None
                )
            ]
            windows = merge_touching(days_windows)
            if not any(window.contains(span) for window in windows):
                continue
            open_somewhere = True
            if not is_slot(span, days_windows):
                continue
            a_slot_somewhere = True
            if all(
                self._calendar(resource.id, day, calendars).clash(span, holder) is None
                for day in days
            ):
                return _Placement(resource, windows, location.timezone)
        if a_slot_somewhere:
            raise SlotUnavailableError("that time is no longer available at this location")
        if open_somewhere:
            raise NotASlotError(
                "that time is not one of the exam's slots at this location;"
                " pick one from the slot search (GET /v1/slots)"
            )
        raise OutsideOpeningHoursError("no resource for this exam is open at that time there")

    def _reserve(
        self,
        placement: _Placement,
        span: Interval,
        holder: str,
        calendars: dict[UUID, ResourceDay],
        actor: Actor,
    ) -> list[ResourceDay]:
        days = local_days(span.start, span.end, zone(placement.timezone))
        reserved = [self._calendar(placement.resource.id, day, calendars) for day in days]
        for calendar in reserved:
            calendar.reserve(holder, span, actor.meta())
        return reserved

    def _release(
        self,
        appointment: Appointment,
        actor: Actor,
        calendars: dict[UUID, ResourceDay] | None = None,
    ) -> dict[UUID, ResourceDay]:
        """Free the appointment's time on its resource's days (in ``calendars``, which
        collects the days touched)."""
        calendars = {} if calendars is None else calendars
        self._free(
            appointment.resource_id,
            appointment.span,
            appointment.timezone,
            str(appointment.id),
            calendars,
            actor,
        )
        return calendars

    def _simple(
        self,
        appointment_id: UUID,
        change: Callable[[Appointment], object],
        owner: UUID | None = None,
    ) -> Written:
        def plan() -> Plan:
            appointment = self.appointment(appointment_id, owner)
            change(appointment)
            return Plan(appointment, [appointment])

        return self._retrying(lambda: self._commit(plan()))

    def _commit(self, plan: "Plan") -> Written:
        """Save everything a plan changed in one atomic write."""
        recordings = self.save(*plan.aggregates) if plan.aggregates else []
        return Written(plan.appointment, self.position_of(recordings))

    @staticmethod
    def _retrying(attempt: Callable[[], T]) -> T:
        """Writers racing for one busy calendar pause a little longer at each try."""
        return retrying(attempt, tries=MAX_ATTEMPTS, pause=0.002)

    # Orders, results and the RIS's own bookings (inbound HL7) ---------------------------
    #
    # Orders live here, beside appointments, because an order becomes an appointment and
    # a RIS booking that takes a patient's time changes appointments and calendars in one
    # atomic save. Each command names the inbound message (``message_id``) that caused
    # it, and does nothing when that message was already applied.

    @staticmethod
    def order_ids(placer: str, filler: str) -> list[UUID]:
        """The identities an order with these numbers may have. The RIS is the filler
        and every result it sends names its filler number, so that comes first."""
        ids = []
        if filler:
            ids.append(derived_id("imaging-order", "filler", filler))
        if placer:
            ids.append(derived_id("imaging-order", "placer", placer))
        return ids

    def find_order(self, placer: str, filler: str) -> ImagingOrder | None:
        for order_id in self.order_ids(placer, filler):
            try:
                order: Any = self.repository.get(order_id)
            except AggregateNotFoundError:
                continue
            if isinstance(order, ImagingOrder):
                return order
        return None

    def receive_order(
        self,
        *,
        control: str,
        patient_id: UUID,
        placer: str,
        filler: str,
        accession_number: str,
        procedure_code: str,
        procedure_text: str,
        message_id: str,
        actor: Actor,
    ) -> str:
        """ORM/OMI: a new order (NW) waits to be scheduled, a change (XO) is applied, a
        cancellation (CA, DC, OC) ends it. Returns ``applied`` or ``ignored``."""

        def attempt() -> str:
            order = self.find_order(placer, filler)
            if control in NEW_ORDER and order is None:
                ids = self.order_ids(placer, filler)
                if not ids:
                    raise InvalidValueError("an order needs a placer or a filler order number")
                order = ImagingOrder.place(
                    id=ids[0],
                    patient_id=patient_id,
                    placer_number=placer,
                    filler_number=filler,
                    accession_number=accession_number,
                    procedure_code=procedure_code,
                    procedure_text=procedure_text,
                    message_id=message_id,
                    meta=actor.meta(),
                )
            elif control in NEW_ORDER | CHANGE_ORDER and order is not None:
                order.change(
                    accession_number=accession_number,
                    procedure_code=procedure_code,
                    procedure_text=procedure_text,
                    message_id=message_id,
                    meta=actor.meta(),
                )
            elif control in CANCEL_ORDER and order is not None:
                order.cancel(
                    reason=f"cancelled by the RIS ({control})",
                    message_id=message_id,
                    meta=actor.meta(),
                )
            elif control in CHANGE_ORDER:
                raise UnknownOrderError("the RIS changed an order we do not know")
            else:
                return "ignored"
            self.save(order)
            return "applied"

        return self._retrying(attempt)

    def reference_result(
        self,
        result: ResultReference,
        *,
        placer: str,
        filler: str,
        patient_identifier: str,
        message_id: str,
        actor: Actor,
    ) -> str:
        """ORU: attach a result reference to its order (``applied``), or keep it for
        review when no order matches (``kept_for_review``). Never the report text."""

        def attempt() -> str:
            order = self.find_order(placer, filler)
            if order is not None:
                order.reference_result(result, message_id=message_id, meta=actor.meta())
                self.save(order)
                return "applied"
            if self.unmatched_result(message_id) is None:
                self.save(
                    UnmatchedResult.keep(
                        result,
                        message_id=message_id,
                        placer_number=placer,
                        filler_number=filler,
                        patient_identifier=patient_identifier,
                        meta=actor.meta(),
                    )
                )
            return "kept_for_review"

        return self._retrying(attempt)

    def unmatched_result(self, message_id: str) -> UnmatchedResult | None:
        try:
            kept: Any = self.repository.get(UnmatchedResult.create_id(message_id))
        except AggregateNotFoundError:
            return None
        return kept if isinstance(kept, UnmatchedResult) else None

    def ris_booking(self, filler_id: str) -> RisBooking | None:
        try:
            booking: Any = self.repository.get(RisBooking.create_id(filler_id))
        except AggregateNotFoundError:
            return None
        return booking if isinstance(booking, RisBooking) else None

    def occupy_for_ris(
        self,
        *,
        filler_id: str,
        resource_id: UUID,
        span: Interval,
        timezone: str,
        message_id: str,
        actor: Actor,
    ) -> list[UUID]:
        """SIU S12/S13/S14: the RIS's booking holds ``span`` on the resource. The RIS
        wins a clash: each patient appointment in the way is marked as needing a new
        time and its time freed, all in one atomic save. Returns those appointments."""

        def attempt() -> list[UUID]:
            booking = self.ris_booking(filler_id)
            if booking is not None and booking.has_applied(message_id):
                return []
            calendars: dict[UUID, ResourceDay] = {}
            holder = RisBooking.holder_of(filler_id)
            if booking is not None:
                if booking.status == RIS_OCCUPYING:
                    self._free(
                        booking.resource_id,
                        booking.span,
                        booking.timezone,
                        holder,
                        calendars,
                        actor,
                    )
                booking.move(
                    resource_id=resource_id,
                    span=span,
                    timezone=timezone,
                    message_id=message_id,
                    meta=actor.meta(),
                )
            else:
                booking = RisBooking(
                    filler_id=filler_id,
                    resource_id=resource_id,
                    start=span.start,
                    end=span.end,
                    timezone=timezone,
                    message_id=message_id,
                    meta=actor.meta(),
                )
            displaced: dict[UUID, Appointment] = {}
            for day in local_days(span.start, span.end, zone(timezone)):
                calendar = self._calendar(resource_id, day, calendars)
                while (other := calendar.clash(span, holder)) is not None:
                    appointment = self._holder_appointment(other)
                    appointment.displace(
                        by=holder,
                        reason="the radiology system booked this time; please choose a new one",
                        meta=actor.meta(),
                    )
                    self._release(appointment, actor, calendars)
                    displaced[appointment.id] = appointment
                calendar.reserve(holder, span, actor.meta())
            self.save(booking, *displaced.values(), *calendars.values())
            return list(displaced)

        return self._retrying(attempt)

    def release_for_ris(
        self, *, filler_id: str, reason: str, message_id: str, actor: Actor
    ) -> bool:
        """SIU S15/S26: the RIS's booking no longer holds its time. False when we never
        saw that booking (or another message had already released it)."""

        def attempt() -> bool:
            booking = self.ris_booking(filler_id)
            if booking is None:
                return False
            if booking.has_applied(message_id):
                return True
            if booking.status != RIS_OCCUPYING:
                return False
            calendars: dict[UUID, ResourceDay] = {}
            self._free(
                booking.resource_id,
                booking.span,
                booking.timezone,
                booking.holder,
                calendars,
                actor,
            )
            booking.release(reason=reason, message_id=message_id, meta=actor.meta())
            self.save(booking, *calendars.values())
            return True

        return self._retrying(attempt)

    def _free(
        self,
        resource_id: UUID,
        span: Interval,
        timezone: str,
        holder: str,
        calendars: dict[UUID, ResourceDay],
        actor: Actor,
    ) -> None:
        for day in local_days(span.start, span.end, zone(timezone)):
            self._calendar(resource_id, day, calendars).release(holder, actor.meta())

    def _holder_appointment(self, holder: str) -> Appointment:
        """The patient appointment holding calendar time (another RIS booking is not one)."""
        try:
            appointment = self._find(UUID(holder))
        except ValueError:
            appointment = None
        if appointment is None:
            raise SlotUnavailableError("another booking of the radiology system holds that time")
        return appointment


NEW_ORDER = frozenset({"NW"})
CHANGE_ORDER = frozenset({"XO", "XX"})
CANCEL_ORDER = frozenset({"CA", "DC", "OC", "CR"})


class UnknownOrderError(DomainError):
    code = "unknown_order"
