"""Appointment: one patient's booking of one exam on one resource.

booked -> (rescheduled, same identity; modified: notes) -> checked_in -> completed
booked -> cancelled | no_show
booked -> needs_new_time (the RIS took the time, or a forced catalog change closed it)
    -> rescheduled | cancelled
"""

from datetime import datetime, timedelta
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import DomainError, InvalidValueError
from domain.schedule import Interval


class BookingInPastError(DomainError):
    code = "booking_in_past"


class OutsideOpeningHoursError(DomainError):
    code = "outside_opening_hours"


class NotASlotError(DomainError):
    """Open then, but no slot of the exam starts then (slots step from each opening)."""

    code = "not_a_slot"


class InvalidTransitionError(DomainError):
    code = "invalid_transition"


class ReasonRequiredError(DomainError):
    code = "reason_required"


MAX_NOTES = 500


BOOKED = "booked"
CHECKED_IN = "checked_in"
COMPLETED = "completed"
CANCELLED = "cancelled"
NO_SHOW = "no_show"
NEEDS_NEW_TIME = "needs_new_time"  # the time no longer holds; the patient picks another
ACTIVE = frozenset({BOOKED, CHECKED_IN})

# What can take an appointment's time (``Appointment.Displaced.cause``): the RIS booking
# it, or a staff change of the catalog forced over it.
RIS = "ris"
CLOSURE, BLOCK, HOURS, RESOURCE, LOCATION = "closure", "block", "hours", "resource", "location"
CATALOG_CAUSES = frozenset({CLOSURE, BLOCK, HOURS, RESOURCE, LOCATION})
DISPLACEMENT_CAUSES = CATALOG_CAUSES | {RIS}


def check_bookable(span: Interval, windows: list[Interval], now: datetime) -> None:
    """Refuse a time in the past or outside every opening window of the resource."""
    if span.start <= now:
        raise BookingInPastError("an appointment must start in the future")
    if not any(window.contains(span) for window in windows):
        raise OutsideOpeningHoursError("that time is outside the resource's opening hours")


class Appointment(Aggregate):
    """A booked exam. Start and end are UTC instants; ``timezone`` is the location's."""

    class Booked(Aggregate.Created):
        patient_id: UUID
        appointment_type_id: UUID
        location_id: UUID
        resource_id: UUID
        start: datetime
        end: datetime
        timezone: str
        meta: dict[str, str]
        order_id: UUID | None  # the RIS order it was booked for (version 2 on)

        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, object]) -> None:
            """Bookings stored before orders could be booked were for no order."""
            state["order_id"] = None

    class Rescheduled(Aggregate.Event):
        location_id: UUID
        resource_id: UUID
        start: datetime
        end: datetime
        timezone: str
        reason: str
        meta: dict[str, str]

    class Cancelled(Aggregate.Event):
        reason: str
        meta: dict[str, str]

    class Modified(Aggregate.Event):
        notes: str
        meta: dict[str, str]

    class CheckedIn(Aggregate.Event):
        meta: dict[str, str]

    class Completed(Aggregate.Event):
        meta: dict[str, str]

    class MarkedNoShow(Aggregate.Event):
        reason: str
        meta: dict[str, str]

    @classmethod
    def book(
        cls,
        *,
        id: UUID,
        patient_id: UUID,
        appointment_type_id: UUID,
        location_id: UUID,
        resource_id: UUID,
        span: Interval,
        timezone: str,
        windows: list[Interval],
        now: datetime,
        meta: dict[str, str],
        order_id: UUID | None = None,
    ) -> "Appointment":
        """Book ``span`` (for the RIS order ``order_id``, if any); the caller reserves it
        on the resource's days, and schedules the order, in the same save."""
        check_bookable(span, windows, now)
        return cls(
            id=id,
            patient_id=patient_id,
            appointment_type_id=appointment_type_id,
            location_id=location_id,
            resource_id=resource_id,
            start=span.start,
            end=span.end,
            timezone=timezone,
            meta=meta,
            order_id=order_id,
        )

    @event(Booked)
    def __init__(
        self,
        id: UUID,
        patient_id: UUID,
        appointment_type_id: UUID,
        location_id: UUID,
        resource_id: UUID,
        start: datetime,
        end: datetime,
        timezone: str,
        meta: dict[str, str],
        order_id: UUID | None,
    ) -> None:
        self.patient_id = patient_id
        self.appointment_type_id = appointment_type_id
        self.location_id = location_id
        self.resource_id = resource_id
        self.start = start
        self.end = end
        self.timezone = timezone
        self.order_id = order_id
        self.status = BOOKED
        self.reason = ""
        self.notes = ""
        self.reschedules = 0
        self.displaced_by = ""  # the cause of the last displacement, if any

    @property
    def span(self) -> Interval:
        return Interval(self.start, self.end)

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE

    def _require(self, allowed: frozenset[str], action: str) -> None:
        if self.status not in allowed:
            raise InvalidTransitionError(f"cannot {action} an appointment that is {self.status}")

    def reschedule(
        self,
        *,
        location_id: UUID,
        resource_id: UUID,
        span: Interval,
        timezone: str,
        windows: list[Interval],
        now: datetime,
        reason: str,
        meta: dict[str, str],
    ) -> None:
        """Move to a new time (and maybe place); the identity stays the same. An
        appointment the RIS displaced gets its new time this way too."""
        self._require(frozenset({BOOKED, NEEDS_NEW_TIME}), "reschedule")
        if self.status == BOOKED and self.start <= now:
            raise InvalidTransitionError("cannot reschedule an appointment that has started")
        check_bookable(span, windows, now)
        self._rescheduled(
            location_id=location_id,
            resource_id=resource_id,
            start=span.start,
            end=span.end,
            timezone=timezone,
            reason=reason,
            meta=meta,
        )

    @event(Rescheduled)
    def _rescheduled(
        self,
        location_id: UUID,
        resource_id: UUID,
        start: datetime,
        end: datetime,
        timezone: str,
        reason: str,
        meta: dict[str, str],
    ) -> None:
        self.location_id = location_id
        self.resource_id = resource_id
        self.start = start
        self.end = end
        self.timezone = timezone
        self.status = BOOKED
        self.reason = reason
        self.reschedules += 1

    def cancel(self, *, reason: str, meta: dict[str, str]) -> None:
        """Cancel a booked appointment (or one that needs a new time); a reason is
        required and kept."""
        self._require(frozenset({BOOKED, NEEDS_NEW_TIME}), "cancel")
        if not reason.strip():
            raise ReasonRequiredError("a cancellation needs a reason")
        self._cancelled(reason=reason.strip(), meta=meta)

    @event(Cancelled)
    def _cancelled(self, reason: str, meta: dict[str, str]) -> None:
        self.status = CANCELLED
        self.reason = reason

    def modify(self, *, notes: str, meta: dict[str, str]) -> bool:
        """Change what the centre should know for the exam (access needs, an
        interpreter, …) without moving it. False when nothing changed."""
        self._require(ACTIVE, "change")
        notes = " ".join(notes.split())
        if len(notes) > MAX_NOTES:
            raise InvalidValueError(f"notes are limited to {MAX_NOTES} characters")
        if notes == self.notes:
            return False
        self._modified(notes=notes, meta=meta)
        return True

    @event(Modified)
    def _modified(self, notes: str, meta: dict[str, str]) -> None:
        self.notes = notes

    def check_in(self, *, now: datetime, meta: dict[str, str]) -> None:
        """The patient arrived (from a day before the exam at the earliest)."""
        self._require(frozenset({BOOKED}), "check in")
        if now < self.start - timedelta(days=1):
            raise InvalidTransitionError("check-in opens on the day of the appointment")
        self._checked_in(meta=meta)

    @event(CheckedIn)
    def _checked_in(self, meta: dict[str, str]) -> None:
        self.status = CHECKED_IN

    def complete(self, *, meta: dict[str, str]) -> None:
        """The exam was performed."""
        self._require(frozenset({CHECKED_IN}), "complete")
        self._completed(meta=meta)

    @event(Completed)
    def _completed(self, meta: dict[str, str]) -> None:
        self.status = COMPLETED

    def mark_no_show(self, *, now: datetime, reason: str, meta: dict[str, str]) -> None:
        """The patient did not come; only once the appointment's start has passed."""
        self._require(frozenset({BOOKED}), "mark as no-show")
        if now < self.start:
            raise InvalidTransitionError("a no-show can only be recorded after the start time")
        self._marked_no_show(reason=reason, meta=meta)

    @event(MarkedNoShow)
    def _marked_no_show(self, reason: str, meta: dict[str, str]) -> None:
        self.status = NO_SHOW
        self.reason = reason

    # The time no longer holds ---------------------------------------------------------

    class Displaced(Aggregate.Event):
        """The appointment's time no longer holds and the patient must choose another.

        ``cause`` says what took it (``ris``: the RIS booked it; ``closure``, ``block``,
        ``hours``, ``resource``, ``location``: a staff change of the catalog forced over
        it); ``by`` names who holds it now or who made the change; ``start`` and
        ``timezone`` are the time it had (version 2 on)."""

        by: str
        reason: str
        meta: dict[str, str]
        cause: str
        start: datetime | None
        timezone: str

        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, object]) -> None:
            """Only the RIS displaced appointments before version 2; the time they had is
            the appointment's own start as that event left it (not copied here)."""
            state["cause"] = RIS
            state["start"] = None
            state["timezone"] = ""

    def displace(self, *, by: str, reason: str, meta: dict[str, str], cause: str = "ris") -> None:
        """The time no longer holds (the RIS booked it itself, or a forced change of the
        catalog closed it): the appointment needs a new time. It leaves the active
        states, so its calendar time is freed. Nothing happens when it needs one already."""
        if self.status == NEEDS_NEW_TIME:
            return
        self._require(frozenset({BOOKED}), "displace")
        if cause not in DISPLACEMENT_CAUSES:
            raise InvalidValueError(f"unknown cause of a displacement: {cause!r}")
        self._displaced(
            by=by, reason=reason, meta=meta, cause=cause, start=self.start, timezone=self.timezone
        )

    @event(Displaced)
    def _displaced(
        self,
        by: str,
        reason: str,
        meta: dict[str, str],
        cause: str,
        start: datetime | None,
        timezone: str,
    ) -> None:
        self.status = NEEDS_NEW_TIME
        self.reason = reason
        self.displaced_by = cause

    # Merges of patient records ----------------------------------------------------------

    class PatientMerged(Aggregate.Event):
        """The patient's record was merged into ``patient_id``'s (ADT^A40, or an account
        linked to the centre's record): the appointment is theirs now, whatever its state."""

        patient_id: UUID
        meta: dict[str, str]

    def move_to_patient(self, patient_id: UUID, meta: dict[str, str]) -> bool:
        """False (and no event) when it is that patient's already."""
        if patient_id == self.patient_id:
            return False
        self._patient_merged(patient_id=patient_id, meta=meta)
        return True

    @event(PatientMerged)
    def _patient_merged(self, patient_id: UUID, meta: dict[str, str]) -> None:
        self.patient_id = patient_id
