"""Bookings the RIS makes on our resources.

A RIS booking that takes a patient's time changes appointments and calendars in one
atomic save, so it lives in the scheduling event store. Each command names the inbound
message (``message_id``) that caused it, and does nothing when that message was
already applied.
"""

from uuid import UUID

from application.calendars import Calendars
from application.scheduling import SchedulingLog, retry_writes
from domain.appointment import Appointment
from domain.context import Actor
from domain.resource_day import SlotUnavailableError
from domain.ris.ris_booking import OCCUPYING, RisBooking
from domain.schedule import Interval, local_days, zone

DISPLACED = "the radiology system booked this time; please choose a new one"


class RisBookings:
    """The RIS's own bookings, holding time on our resources' calendars."""

    def __init__(self, scheduling: SchedulingLog) -> None:
        self._store = scheduling

    def ris_booking(self, filler_id: str) -> RisBooking | None:
        """The RIS's booking with that filler appointment id, if we saw it."""
        return self._store.find(RisBooking.create_id(filler_id), RisBooking)

    def occupy(
        self,
        *,
        filler_id: str,
        resource_id: UUID,
        span: Interval,
        timezone: str,
        message_id: str,
        actor: Actor,
    ) -> list[UUID]:
        """The RIS's booking holds ``span`` on the resource (made, moved or changed). The
        RIS wins a clash: each patient appointment in the way is marked as needing a new
        time and its time freed, all in one atomic save. Returns those appointments."""

        def attempt() -> list[UUID]:
            booking = self.ris_booking(filler_id)
            if booking is not None and booking.has_applied(message_id):
                return []
            calendars = self._store.calendars()
            holder = RisBooking.holder_of(filler_id)
            if booking is not None:
                if booking.status == OCCUPYING:
                    calendars.free(
                        booking.resource_id, booking.span, booking.timezone, holder, actor
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
            displaced = self._displace(calendars, resource_id, span, timezone, holder, actor)
            self._store.save(booking, *displaced, *calendars.touched())
            return [appointment.id for appointment in displaced]

        return retry_writes(attempt)

    def release(self, *, filler_id: str, reason: str, message_id: str, actor: Actor) -> bool:
        """The RIS's booking no longer holds its time (cancelled, or a no-show). False
        when we never saw that booking (or another message had already released it)."""

        def attempt() -> bool:
            booking = self.ris_booking(filler_id)
            if booking is None:
                return False
            if booking.has_applied(message_id):
                return True
            if booking.status != OCCUPYING:
                return False
            calendars = self._store.calendars()
            calendars.free(
                booking.resource_id, booking.span, booking.timezone, booking.holder, actor
            )
            booking.release(reason=reason, message_id=message_id, meta=actor.meta())
            self._store.save(booking, *calendars.touched())
            return True

        return retry_writes(attempt)

    def _displace(
        self,
        calendars: Calendars,
        resource_id: UUID,
        span: Interval,
        timezone: str,
        holder: str,
        actor: Actor,
    ) -> list[Appointment]:
        """Reserve ``span`` for ``holder``, first taking it from every patient
        appointment in the way; those appointments."""
        displaced: dict[UUID, Appointment] = {}
        for day in local_days(span.start, span.end, zone(timezone)):
            calendar = calendars.day(resource_id, day)
            while (other := calendar.clash(span, holder)) is not None:
                appointment = self._holder_appointment(other)
                appointment.displace(by=holder, reason=DISPLACED, meta=actor.meta())
                calendars.free_appointment(appointment, actor)
                displaced[appointment.id] = appointment
            calendar.reserve(holder, span, actor.meta())
        return list(displaced.values())

    def _holder_appointment(self, holder: str) -> Appointment:
        """The patient appointment holding calendar time (another RIS booking is not one)."""
        try:
            appointment = self._store.find(UUID(holder), Appointment)
        except ValueError:
            appointment = None
        if appointment is None:
            raise SlotUnavailableError("another booking of the radiology system holds that time")
        return appointment
