"""Scheduling application: appointments and the per-resource-per-day calendars
that keep them from overlapping, always saved together in one atomic write.

Orders and the RIS's own bookings share this event store (``application.ris``)."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID, uuid4

from application.base import BUSY, BaseApplication, Position, retrying
from application.calendar_reads import CalendarReads
from application.calendar_turns import CalendarGate, CalendarTurns, calendar_key
from application.calendars import Calendars
from application.catalog import Catalog
from application.catalog_reads import CatalogAtHead, SharedCatalog
from application.errors import (
    BeyondBookingHorizonError,
    BookingLimitReachedError,
    IdempotencyKeyReusedError,
    NotFoundError,
)
from application.ports import AppointmentReader, Clock
from application.ris.booked_orders import BookedOrders
from domain.appointment import (
    ACTIVE,
    Appointment,
    BookingInPastError,
    NotASlotError,
    OutsideOpeningHoursError,
)
from domain.appointment_type import AppointmentType
from domain.context import Actor
from domain.identifiers import derived_id
from domain.location import Location
from domain.resource import Resource
from domain.resource_day import ResourceDay, SlotUnavailableError
from domain.schedule import Interval, is_slot, local_days, merge_touching, zone

MAX_ATTEMPTS = 16
T = TypeVar("T")
PATIENT = "patient"  # the role of an actor booking for themselves


@dataclass(frozen=True)
class BookingLimits:
    """What one patient may hold and ask for when booking for themselves (staff booking
    on a patient's behalf are not limited): active upcoming appointments per exam type
    and in all, and booking requests per hour (counted by the API's rate limiter).
    0 lifts a limit (the benchmarks book thousands of slots as a few patients)."""

    per_exam_type: int = 3
    overall: int = 10
    requests_per_hour: int = 30

    @property
    def caps_bookings(self) -> bool:
        return self.per_exam_type > 0 or self.overall > 0


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


def retry_writes(attempt: Callable[[], T]) -> T:
    """Writers racing for one busy calendar pause a little longer at each try."""
    return retrying(attempt, tries=MAX_ATTEMPTS, pause=0.002)


class SchedulingLog(BaseApplication):
    """The scheduling event store and its queries, without the appointment commands
    (which need the catalog and a clock): what followers (projections, the delivery
    policy) read, and what the RIS slice's ``Orders`` and ``RisBookings`` write to."""

    name = "scheduling"

    def __init__(self, env: Any = None) -> None:
        super().__init__(env)
        self._calendar_reads = CalendarReads(self)

    def appointment(self, appointment_id: UUID, owner: UUID | None = None) -> Appointment:
        """One appointment; NotFoundError if missing or (with ``owner``) someone else's."""
        appointment = self.find(appointment_id, Appointment)
        if appointment is None or (owner is not None and appointment.patient_id != owner):
            raise NotFoundError("no such appointment")
        return appointment

    def resource_day(self, resource_id: UUID, day: date) -> ResourceDay | None:
        """The resource's calendar of the local ``day``, if anything was ever booked on it."""
        return self._calendar_reads.get(ResourceDay.create_id(resource_id, day))

    def calendars(self) -> Calendars:
        """A fresh set of calendars for one command to collect what it touches."""
        return Calendars(self.resource_day)


class Scheduling(SchedulingLog):
    """Appointments: book, move, cancel, and the front desk's changes."""

    name = SchedulingLog.name  # the library names a subclass after itself otherwise

    def __init__(
        self,
        env: Any = None,
        *,
        catalog: Catalog,
        clock: Clock,
        bookings: AppointmentReader | None = None,
        limits: BookingLimits | None = None,
        survivor: Callable[[UUID], UUID] | None = None,
        gate: CalendarGate | None = None,
    ) -> None:
        """``bookings`` (the appointments read model) lets ``book`` count what a patient
        already holds against ``limits``; without it, bookings are not capped.
        ``survivor`` names the record a patient's record was merged into (ADT^A40), so
        that a patient may book the orders the RIS placed under a record merged into
        theirs; without it, records are taken as never merged. ``gate`` lets writers of one
        busy calendar in several processes take turns (``CalendarTurns``)."""
        super().__init__(env)
        self.catalog = catalog
        self._shared_catalog = SharedCatalog(catalog)
        self._clock = clock
        self._bookings = bookings
        self.limits = limits or BookingLimits()
        self._orders = BookedOrders(self, survivor)
        self._turns = CalendarTurns(gate, busy=BUSY)

    def now(self) -> datetime:
        return self._clock.now()

    def close(self) -> None:
        self._turns.close()
        super().close()

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
        order_id: UUID | None = None,
    ) -> Written:
        """Book the exam at ``start`` on any free matching resource of the location; for
        ``order_id``, one of the patient's orders waiting to be scheduled, which becomes
        scheduled in the same save.

        With an idempotency key, a retry returns the appointment the first call made.
        """
        appointment_id = (
            derived_id("appointment", str(patient_id), idempotency_key)
            if idempotency_key
            else uuid4()
        )

        return self._turns.write(
            calendar_key(location_id, start.astimezone(UTC).date()),
            lambda: self._commit(
                self.plan_book(
                    appointment_id=appointment_id,
                    patient_id=patient_id,
                    appointment_type_id=appointment_type_id,
                    location_id=location_id,
                    start=start,
                    actor=actor,
                    order_id=order_id,
                    retried=idempotency_key is not None,
                )
            ),
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
        order_id: UUID | None = None,
        retried: bool = True,
    ) -> "Plan":
        """Decide a booking against the current state, without saving it. Unless
        ``retried`` is False (a fresh ``appointment_id``, no Idempotency-Key), a booking
        of that id may exist already: a retry of the request that made it."""
        existing = self.find(appointment_id, Appointment) if retried else None
        if existing is not None:
            # A retry is the same request as the one that made the booking (compared with
            # the booking as first made: a reschedule since does not change the request).
            first: Appointment = self.repository.get(appointment_id, version=1)
            made = (
                first.patient_id,
                first.appointment_type_id,
                first.location_id,
                first.start,
                first.order_id,
            )
            if made != (patient_id, appointment_type_id, location_id, start, order_id):
                raise IdempotencyKeyReusedError(
                    "that Idempotency-Key was already used for a different booking"
                )
            return Plan(existing, [])
        catalog = self._shared_catalog.current()
        exam = catalog.appointment_type(appointment_type_id)
        order = None if order_id is None else self._orders.to_book(order_id, patient_id, exam)
        location = catalog.location(location_id)
        now = self.now()
        self._within_horizon(exam, start, now)
        span = self._span(start, exam.duration_minutes)
        if span.start <= now:
            raise BookingInPastError("an appointment must start in the future")
        if actor.role == PATIENT:
            self._within_limits(patient_id, exam, now)
        calendars = self.calendars()
        placement = self._place(
            catalog, exam.modality, location, span, str(appointment_id), calendars
        )
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
            order_id=order_id,
        )
        reserved = self._reserve(placement, span, str(appointment_id), calendars, actor)
        if order is None:
            return Plan(appointment, [appointment, *reserved])
        order.link_appointment(appointment.id, actor.meta())
        return Plan(appointment, [appointment, *reserved, order])

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

        return self._turns.write(
            calendar_key(location_id or "its own", start.astimezone(UTC).date()),
            lambda: self._commit(
                self.plan_reschedule(
                    appointment_id,
                    start=start,
                    location_id=location_id,
                    reason=reason,
                    actor=actor,
                    owner=owner,
                )
            ),
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
        catalog = self._shared_catalog.current()
        exam = catalog.appointment_type(appointment.appointment_type_id)
        location = catalog.location(location_id or appointment.location_id)
        self._within_horizon(exam, start, self.now())
        span = self._span(start, exam.duration_minutes)
        calendars = self.calendars()
        released = calendars.free_appointment(appointment, actor)
        placement = self._place(
            catalog,
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
        return retry_writes(
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
        freed = self.calendars().free_appointment(appointment, actor)
        return Plan(appointment, [appointment, *freed, *self._orders.released(appointment, actor)])

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
        """Front desk: the exam was performed (and so its order, in the same save)."""

        def plan() -> Plan:
            appointment = self.appointment(appointment_id, None)
            appointment.complete(meta=actor.meta())
            return Plan(appointment, [appointment, *self._orders.completed(appointment, actor)])

        return retry_writes(lambda: self._commit(plan()))

    def mark_no_show(self, appointment_id: UUID, *, reason: str, actor: Actor) -> Written:
        """Front desk: the patient did not come; their time is freed."""

        def plan() -> Plan:
            appointment = self.appointment(appointment_id, None)
            appointment.mark_no_show(now=self.now(), reason=reason, meta=actor.meta())
            freed = self.calendars().free_appointment(appointment, actor)
            released = self._orders.released(appointment, actor)
            return Plan(appointment, [appointment, *freed, *released])

        return retry_writes(lambda: self._commit(plan()))

    # Internals -------------------------------------------------------------------------

    @staticmethod
    def _within_horizon(exam: AppointmentType, start: datetime, now: datetime) -> None:
        """Refuse a start further ahead than the exam may be booked."""
        days = exam.booking_horizon_days
        if start.tzinfo is not None and start - now > timedelta(days=days):
            last = (now + timedelta(days=days)).date().isoformat()
            raise BeyondBookingHorizonError(
                f"{exam.spec.get('name', 'this exam')} can be booked at most {days} days"
                f" ahead (up to {last})"
            )

    def _within_limits(self, patient_id: UUID, exam: AppointmentType, now: datetime) -> None:
        """Refuse a booking that would give the patient more active upcoming appointments
        than ``limits`` allow.

        A soft limit, counted from the appointments read model, not an aggregate: the API
        waits until the read model holds the patient's own earlier writes, but two of
        their bookings racing each other can both pass (going over by one or two), which
        is acceptable against hoarding. A cancellation frees a place once it is read."""
        if self._bookings is None or not self.limits.caps_bookings:
            return
        held = [
            view
            for view in self._bookings.for_patient(patient_id)
            if view.status in ACTIVE and view.end > now
        ]
        same_type = sum(1 for view in held if view.appointment_type_id == exam.id)
        if 0 < self.limits.per_exam_type <= same_type:
            raise BookingLimitReachedError(
                f"you already have {same_type} upcoming appointments for this exam, the most"
                f" one patient may hold ({self.limits.per_exam_type}); cancel one to book another"
            )
        if 0 < self.limits.overall <= len(held):
            raise BookingLimitReachedError(
                f"you already have {len(held)} upcoming appointments, the most one patient may"
                f" hold ({self.limits.overall}); cancel one to book another"
            )

    @staticmethod
    def _span(start: datetime, minutes: int) -> Interval:
        if start.tzinfo is None or start.utcoffset() is None:
            raise OutsideOpeningHoursError("the start time needs a UTC offset")
        return Interval(start, start + timedelta(minutes=minutes))

    def _place(
        self,
        catalog: CatalogAtHead,
        modality: str,
        location: Location,
        span: Interval,
        holder: str,
        calendars: Calendars,
        prefer: UUID | None = None,
    ) -> _Placement:
        """The first resource of the location that is open and free for ``span``, which
        must be one of its slots (as the slot search finds them: per local day)."""
        tz = zone(location.timezone)
        days = local_days(span.start, span.end, tz)
        ids = sorted(location.resource_ids, key=lambda rid: (rid != prefer, str(rid)))
        open_somewhere = a_slot_somewhere = False
        for resource_id in ids:
            resource = catalog.resource(resource_id)
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
            if all(calendars.day(resource.id, day).clash(span, holder) is None for day in days):
                return _Placement(resource, windows, location.timezone)
        if a_slot_somewhere:
            raise SlotUnavailableError("that time is no longer available at this location")
        if open_somewhere:
            raise NotASlotError(
                "that time is not one of the exam's slots at this location;"
                " pick one from the slot search (GET /v1/slots)"
            )
        raise OutsideOpeningHoursError("no resource for this exam is open at that time there")

    @staticmethod
    def _reserve(
        placement: _Placement,
        span: Interval,
        holder: str,
        calendars: Calendars,
        actor: Actor,
    ) -> list[ResourceDay]:
        return calendars.reserve(placement.resource.id, span, placement.timezone, holder, actor)

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

        return retry_writes(lambda: self._commit(plan()))

    def _commit(self, plan: "Plan") -> Written:
        """Save everything a plan changed in one atomic write."""
        recordings = self.save(*plan.aggregates) if plan.aggregates else []
        return Written(plan.appointment, self.position_of(recordings))
