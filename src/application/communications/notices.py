"""The deliveries one upstream event makes (``Notices``), for ``CommunicationPolicy``:
which notice, to whom, over which channels, when."""

from copy import copy
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast
from uuid import UUID

from eventsourcing.application import ProcessingEvent

from application.communications.audience import Audience, audience, language_for
from application.communications.causes import (
    PATIENT_CHANNELS,
    RIS_SOURCE,
    SOON,
    SOURCE,
    offset_text,
    plan_reminders,
    reminder_cause,
    reminder_ids,
)
from application.communications.visits import for_channel
from application.notices.envelope import NoticeEnvelope
from application.notices.kinds import (
    BookingCancelled,
    BookingConfirmation,
    BookingMoved,
    NeedsNewTime,
    Notice,
    OrderInvitation,
    Reminder,
    ResultAvailable,
    Visit,
)
from domain.appointment import Appointment
from domain.context import system_actor
from domain.patient import Patient
from domain.reminders import hold_until
from domain.ris.message_delivery import MessageDelivery
from domain.ris.order import DONE_STATUSES

if TYPE_CHECKING:
    from application.communications.policy import CommunicationPolicy


class Notices:
    """The deliveries one upstream event makes, collected on its processing event."""

    def __init__(
        self,
        policy: "CommunicationPolicy",
        event: Any,
        processing_event: ProcessingEvent[UUID],
        now: datetime,
    ) -> None:
        self.policy = policy
        self.event = event
        self.processing_event = processing_event
        self.now = now
        self.base = f"{event.originator_id}:{event.originator_version}"
        self.meta = system_actor(source=SOURCE).meta(cause=self.base)

    # Appointments -----------------------------------------------------------------------

    def booked(self) -> None:
        event = self.event
        visit = self.policy.visits.visit(
            event.originator_id,
            event.appointment_type_id,
            event.location_id,
            event.start,
            event.timezone,
        )
        patient = self.policy.patient(event.patient_id)
        # A patient who just booked expects the confirmation now, even at night: the
        # answer to their own action, not a message out of the blue.
        own = self._by_patient()
        self.send(patient, event.patient_id, BookingConfirmation(visit), "confirmation", exempt=own)
        self.remind(patient, event.patient_id, visit, event.appointment_type_id)

    def rescheduled(self) -> None:
        before, after, scheduled, patient_then = self._history()
        self._withdraw(scheduled, patient_then, "the appointment moved")
        visit = self._visit_of(after)
        patient = self.policy.patient(after.patient_id)
        if self._by_patient():
            confirmation = BookingConfirmation(visit)
            self.send(patient, after.patient_id, confirmation, "confirmation", exempt=True)
        else:
            exempt = self._soon(min(before.start, after.start))
            quiet = exempt and self._in_quiet_hours(patient, BookingMoved.kind, visit.zone)
            notice = BookingMoved(visit, previous_start=before.start, outside_quiet_hours=quiet)
            self.send(patient, after.patient_id, notice, "moved", exempt=exempt)
        self.remind(patient, after.patient_id, visit, after.appointment_type_id)

    def cancelled(self) -> None:
        before, _, scheduled, patient_then = self._history()
        self._withdraw(scheduled, patient_then, "the appointment was cancelled")
        if self._by_patient() or before.start <= self.now:
            return
        self._tell_about(before, BookingCancelled)

    def displaced(self) -> None:
        before, _, scheduled, patient_then = self._history()
        self._withdraw(scheduled, patient_then, "the appointment needs a new time")
        if before.start > self.now:
            self._tell_about(before, NeedsNewTime)

    def _tell_about(self, appointment: Any, kind: type[BookingCancelled | NeedsNewTime]) -> None:
        visit = self._visit_of(appointment)
        patient = self.policy.patient(appointment.patient_id)
        exempt = self._soon(appointment.start)
        quiet = exempt and self._in_quiet_hours(patient, kind.kind, visit.zone)
        notice = kind(visit, outside_quiet_hours=quiet)
        self.send(patient, appointment.patient_id, notice, kind.kind, exempt=exempt)

    def _by_patient(self) -> bool:
        meta: dict[str, str] = self.event.meta
        return meta.get("role") == "patient" and meta.get("source") != RIS_SOURCE

    def _soon(self, start: datetime) -> bool:
        return start - self.now <= SOON

    def _in_quiet_hours(self, patient: Patient | None, kind: str, zone: str) -> bool:
        if patient is None:
            return False
        chosen = self._audience(patient, kind)
        quiet = chosen.quiet_hours
        return quiet is not None and quiet.contains(self.now, chosen.zone or zone)

    def _history(self) -> tuple[Any, Any, int, UUID]:
        """The appointment before and after this event, the version of the event that
        last scheduled its reminders, and its patient then."""
        event = self.event
        state: Any = None
        before: Any = None
        scheduled, patient_then = 1, UUID(int=0)
        for change in self.policy.appointment_events(event.originator_id, event.originator_version):
            if change.originator_version == event.originator_version:
                before = copy(state)  # events change the aggregate in place
            state = change.mutate(state)
            if isinstance(change, Appointment.Booked | Appointment.Rescheduled) and (
                change.originator_version < event.originator_version
            ):
                scheduled, patient_then = change.originator_version, state.patient_id
        return before, state, scheduled, patient_then

    def _visit_of(self, appointment: Any) -> Visit:
        return self.policy.visits.visit(
            appointment.id,
            appointment.appointment_type_id,
            appointment.location_id,
            appointment.start,
            appointment.timezone,
        )

    def _withdraw(self, version: int, patient_id: UUID, reason: str) -> None:
        """Withdraw the reminders the appointment's event at ``version`` scheduled and
        that are still waiting (one sent or being sent stays as it is)."""
        candidates = reminder_ids(self.event.originator_id, version, patient_id)
        collected = self.processing_event.aggregates  # queued by an event of this batch
        for delivery_id in [c for c in candidates if c in collected] + self.policy.existing(
            [c for c in candidates if c not in collected]
        ):
            delivery = cast(
                MessageDelivery,
                collected.get(delivery_id) or self.policy.repository.get(delivery_id),
            )
            if delivery.withdraw(reason=reason, meta=self.meta):
                self.processing_event.collect_events(delivery)

    def remind(
        self, patient: Patient | None, patient_id: UUID, visit: Visit, appointment_type_id: UUID
    ) -> None:
        """Queue the reminders of ``visit`` (none whose time has passed)."""
        offsets = self.policy.visits.offsets(appointment_type_id)
        if offsets is None:
            offsets = self.policy.offsets
        chosen = self._audience(patient, Reminder.kind) if patient is not None else None
        planned = plan_reminders(
            visit.start,
            visit.zone,
            offsets,
            self.now,
            chosen.quiet_hours if chosen else self.policy.quiet_hours,
            chosen.zone if chosen else None,
        )
        for reminder in planned:
            cause = reminder_cause(
                self.event.originator_id, self.event.originator_version, reminder.number
            )
            extra = {"offset": offset_text(reminder.offset), "placement": reminder.placement}
            self.send(
                patient,
                patient_id,
                Reminder(visit),
                cause=cause,
                due=reminder.due_at,
                hold=reminder.held_until,
                extra=extra,
                quiet_checked=True,
            )

    # Orders and results -----------------------------------------------------------------

    def order_placed(self) -> None:
        event = self.event
        patient = self.policy.patient(event.patient_id)
        needs_account = patient is not None and not patient.has_account
        reachable = patient is not None and self._audience(patient, OrderInvitation.kind).channels
        token = None
        if patient is not None and needs_account and reachable:
            token = self.policy.activation_code(patient, self.meta)
        notice = OrderInvitation(
            order_id=str(event.originator_id),
            exam_name=event.procedure_text,
            activation_token=token,
            needs_account=needs_account,
        )
        self.send(patient, event.patient_id, notice, "invitation")

    def result_referenced(self) -> None:
        event = self.event
        if event.result_status not in DONE_STATUSES:
            return
        order = self.policy.order(event.originator_id, event.originator_version)
        patient = self.policy.patient(order.patient_id)
        self.send(patient, order.patient_id, ResultAvailable(), "result")

    # Queueing ---------------------------------------------------------------------------

    def _audience(self, patient: Patient, kind: str) -> Audience:
        templates = self.policy.notice_templates
        return audience(patient, kind, templates, self.policy.quiet_hours)

    def send(
        self,
        patient: Patient | None,
        patient_id: UUID,
        notice: Notice,
        what: str = "",
        *,
        cause: str = "",
        exempt: bool = False,
        due: datetime | None = None,
        hold: datetime | None = None,
        extra: dict[str, str] | None = None,
        quiet_checked: bool = False,
    ) -> None:
        """Queue ``notice`` on each of the patient's channels for it (or record it as
        undeliverable). Outside quiet hours unless ``exempt``; a reminder's times come
        placed already (``quiet_checked``: ``due``, and ``hold`` when quiet hours moved
        it later)."""
        cause = cause or f"{self.base}:{what}"
        templates = self.policy.notice_templates
        recipient = str(patient_id)  # the appointment's (or order's) patient, as recorded
        if patient is None:
            chosen = Audience((), "en", None, None, "the patient's record was not found")
        else:
            chosen = self._audience(patient, notice.kind)
        visit = getattr(notice, "visit", None)
        zone = chosen.zone or (visit.zone if visit else self.policy.visits.centre_zone())
        if not exempt and not quiet_checked and chosen.quiet_hours is not None:
            start = due or self.now
            until = hold_until(start, chosen.quiet_hours, zone)
            hold = until if until > start else None
        common = {
            "recipient": recipient,
            "message_type": notice.kind,
            "cause": cause,
            "cause_at": self.event.timestamp,
            "ordering_key": cause,
            "meta": self.meta,
        }
        if not chosen.channels:
            channel = (templates.channels(notice.kind) or PATIENT_CHANNELS)[0]
            payload = self._payload(patient_id, notice, channel, chosen.language, exempt, extra)
            delivery = MessageDelivery.undeliverable(
                channel=channel, payload=payload, reason=chosen.reason, **common
            )
            self.processing_event.collect_events(delivery)
            return
        for channel in chosen.channels:
            payload = self._payload(
                patient_id, for_channel(notice, channel), channel, chosen.language, exempt, extra
            )
            delivery = MessageDelivery.queue(channel=channel, payload=payload, due_at=due, **common)
            if hold is not None:
                quiet = f"quiet hours {chosen.quiet_hours} ({zone})"
                delivery.hold(until=hold, reason=quiet, meta=self.meta)
            self.processing_event.collect_events(delivery)

    def _payload(
        self,
        patient_id: UUID,
        notice: Notice,
        channel: str,
        language: str,
        exempt: bool,
        extra: dict[str, str] | None,
    ) -> dict[str, str]:
        templates = self.policy.notice_templates
        language = language_for(templates, notice.kind, channel, language)
        versions = templates.versions(notice.kind, channel, language)
        envelope = NoticeEnvelope(
            patient_id=patient_id,
            notice=notice,
            language=language,
            version=versions[-1] if versions else 1,
            exempt=exempt,
            extra=dict(extra or {}),
        )
        return envelope.to_payload()
