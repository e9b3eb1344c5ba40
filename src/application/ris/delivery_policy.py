"""The outbound policy: appointment and patient events become queued HL7 deliveries.

It follows an upstream application's log with tracking (exactly once) and queues one
``MessageDelivery`` per recipient for each event that the RIS must hear about, in the
``deliveries`` event store. A backlog is recorded a batch at a time
(``application.batching``): under booking load, not one commit per scheduling event.
"""

import time
from datetime import date, datetime
from functools import singledispatchmethod
from typing import Any, TypeVar, cast
from uuid import UUID

import structlog
from eventsourcing.application import AggregateNotFoundError, ProcessingEvent
from eventsourcing.persistence import ApplicationRecorder, JSONTranscoder
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg.sql import SQL, Identifier

from application.base import BaseApplication, DateAsISO, tolerating_concurrent_ddl
from application.batching import BatchingPolicy
from application.catalog import Catalog
from application.errors import NotFoundError
from application.registry import RegistryLog
from application.ris.deliveries import NAME
from application.scheduling import SchedulingLog
from domain.appointment import CATALOG_CAUSES, NEEDS_NEW_TIME, Appointment
from domain.context import system_actor
from domain.patient import Patient
from domain.ris.message_delivery import MessageDelivery
from domain.ris.order import ImagingOrder

# Upstream event -> HL7 message type
SIU_TRIGGERS: dict[type[Any], str] = {
    Appointment.Booked: "SIU^S12",
    Appointment.Rescheduled: "SIU^S13",
    Appointment.Modified: "SIU^S14",
    Appointment.Cancelled: "SIU^S15",
    Appointment.MarkedNoShow: "SIU^S26",
    # A forced change of the catalog (closure, block, hours) displaced the appointment:
    # the RIS hears that the booking no longer holds and frees its time, as for a
    # cancellation (S15, SCH-25 "Cancelled", the reason in SCH-6). Not S14: a
    # modification says the booking still holds, at a time that is now closed; not S13:
    # there is no new time yet. The identity stays ours, so when the patient chooses a
    # new time the RIS hears it as a new booking (S12 with the same SCH-1), not as a
    # move of one it cancelled, and a cancellation then says nothing more
    # (``DeliveryPolicy._trigger``). A displacement by the RIS itself is never echoed.
    Appointment.Displaced: "SIU^S15",
}
ADT_TRIGGERS: dict[type[Any], str] = {
    Patient.Registered: "ADT^A04",
    Patient.DemographicsChanged: "ADT^A08",
    Patient.SexRecorded: "ADT^A08",
}
log = structlog.get_logger(__name__)
REGISTERED_VERSION = 1  # a patient's first event: the cause of their ADT^A04
# What an ADT message needs of an SIU's payload (the patient's part).
ADT_FIELDS = frozenset(
    {
        "patient_id",
        "given_name",
        "family_name",
        "birth_date",
        "phone",
        "sex",
        "mrn",
        "mrn_authority",
    }
)
# Changes the RIS itself sent us are not echoed back to it.
NOT_ECHOED_SOURCES = frozenset({"hl7-inbound"})
R = TypeVar("R", bound=BaseApplication)
UPSTREAMS = frozenset({SchedulingLog.name, RegistryLog.name})  # the logs it follows
# The names of the HL7 recipients, comma-separated (the composition root sets it from
# the configured destinations).
RECIPIENTS = "DELIVERY_RECIPIENTS"
# How long the bookings' follower waits for the registry's to reach a patient's
# registration before it queues their first SIU (seconds; ``_registration_wait``).
REGISTRATION_WAIT = "DELIVERY_REGISTRATION_WAIT"
REGISTRATION_WAIT_SECONDS = 10.0
REGISTRATION_POLL_SECONDS = 0.02


def recipients_env(names: list[str]) -> dict[str, str]:
    """The policy's environment entry naming these recipients."""
    return {RECIPIENTS: ",".join(names)}


def introduction_cause(patient_id: UUID) -> str:
    """The cause of the ADT^A04 that introduces a patient to a recipient before their
    first SIU (see ``DeliveryPolicy._introduce_patient``)."""
    return f"{patient_id}:introduced"


def introduction_id(patient_id: UUID, recipient: str) -> UUID:
    return MessageDelivery.create_id(introduction_cause(patient_id), recipient, "hl7")


def _iso(value: datetime | date) -> str:
    return value.isoformat()


class DeliveryPolicy(BatchingPolicy):
    """Appointment and patient events -> queued HL7 deliveries, exactly once.

    Run one ``EventSourcedProjectionRunner`` per upstream application (Scheduling,
    Registry) with this class; tracking keeps their positions apart. The events of a
    batch decide together: a later one finds what an earlier one queued
    (``find_delivery``). The payload is a snapshot of what the message needs, so every
    resend is the same message.
    Recipients come from ``DELIVERY_RECIPIENTS`` in its environment (``recipients_env``).
    """

    name = NAME

    def __init__(self, env: Any = None) -> None:
        tolerating_concurrent_ddl(self, lambda: super(DeliveryPolicy, self).__init__(env))
        names = self.env.get(RECIPIENTS, "") or ""
        self.recipients = [name.strip() for name in names.split(",") if name.strip()]
        self.registration_wait = float(
            self.env.get(REGISTRATION_WAIT, "") or REGISTRATION_WAIT_SECONDS
        )
        self._readers: dict[str, BaseApplication] = {}
        self._logs: dict[str, ApplicationRecorder] = {}
        # After a wait ran out: the registry's position its follower must reach before
        # this follower waits for it again (``_registration_wait``).
        self._gave_up_at = 0

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(DateAsISO())

    def _reader(self, kind: type[R]) -> R:
        """The upstream application's log (read, never written), on the same database."""
        if kind.name not in self._readers:
            self._readers[kind.name] = kind(dict(self.env))
        return cast(R, self._readers[kind.name])

    def followed_log(self, application_name: str) -> ApplicationRecorder:
        """The upstream log (Scheduling or Registry) of that name, read on this policy's
        own connections (the library names an application's events table after it).
        Opening a reader of the registry instead slowed its follower's first A04: the
        scheduling one may then queue the patient's first SIU before it, and the pump
        sends a patient's earliest queued message first."""
        if application_name not in UPSTREAMS:
            raise ValueError(f"the delivery policy does not follow {application_name!r}")
        if application_name not in self._logs:
            factory: Any = self.factory
            self._logs[application_name] = PostgresApplicationRecorder(
                factory.datastore, events_table_name=f"{application_name}_events"
            )
        return self._logs[application_name]

    def close(self) -> None:
        for reader in self._readers.values():
            reader.close()
        self._readers.clear()
        super().close()

    @singledispatchmethod
    def policy(self, domain_event: Any, processing_event: ProcessingEvent[UUID]) -> None:
        message_type = self._trigger(domain_event) or ADT_TRIGGERS.get(type(domain_event))
        if message_type is None or not self.recipients:
            return
        if domain_event.meta.get("source") in NOT_ECHOED_SOURCES:
            return
        if message_type.startswith("SIU"):
            payload, ordering_key = self._siu_payload(domain_event)
        else:
            payload, ordering_key = self._adt_payload(domain_event)
        cause = f"{domain_event.originator_id}:{domain_event.originator_version}"
        meta = system_actor(source="delivery-policy").meta(cause=cause)
        for recipient in self.recipients:
            if message_type.startswith("SIU"):
                self._introduce_patient(recipient, payload, domain_event, processing_event)
            elif isinstance(domain_event, Patient.Registered) and self.find_delivery(
                introduction_id(domain_event.originator_id, recipient), processing_event
            ):
                continue  # their first SIU got here first and introduced them already
            delivery = MessageDelivery.queue(
                channel="hl7",
                recipient=recipient,
                message_type=message_type,
                cause=cause,
                cause_at=domain_event.timestamp,
                ordering_key=ordering_key,
                payload=payload,
                meta=meta,
            )
            processing_event.collect_events(delivery)

    def _trigger(self, event: Any) -> str | None:
        """The SIU an appointment event becomes, if any (see ``SIU_TRIGGERS``)."""
        message_type = SIU_TRIGGERS.get(type(event))
        if message_type is None:
            return None
        if isinstance(event, Appointment.Displaced):
            return message_type if event.cause in CATALOG_CAUSES else None
        if isinstance(event, Appointment.Rescheduled | Appointment.Cancelled):
            before: Any = self._reader(SchedulingLog).repository.get(
                event.originator_id, version=event.originator_version - 1
            )
            if before.status == NEEDS_NEW_TIME and before.displaced_by in CATALOG_CAUSES:
                # The RIS cancelled it when it was displaced (S15).
                return "SIU^S12" if isinstance(event, Appointment.Rescheduled) else None
        return message_type

    def _introduce_patient(
        self,
        recipient: str,
        siu: dict[str, str],
        event: Any,
        processing_event: ProcessingEvent[UUID],
    ) -> None:
        """A patient registered here whose ADT^A04 never went to ``recipient`` (they
        registered before it was a destination) gets one now, ahead of their first SIU
        (it carries their registration's time, so it is sent first), with the
        demographics the SIU carries. Patients the RIS sent us need none. While the
        registry's follower has not reached the registration, nothing is queued here: it
        queues their A04 itself (two followers deciding at once queued two A04s), and
        this follower waits for it first (``_registration_wait``), so that the A04 is
        queued before the SIU and the pump sends it first. Its identity is its own
        (``introduction_id``), so the two followers never write the same delivery and
        neither can stop on the other's write."""
        patient_id = UUID(siu["patient_id"])
        registration = MessageDelivery.create_id(
            f"{patient_id}:{REGISTERED_VERSION}", recipient, "hl7"
        )
        if not self._registration_wait(patient_id):
            return  # the registry's follower has not reached it: it queues their A04 itself
        if self.find_delivery(registration, processing_event) or self.find_delivery(
            introduction_id(patient_id, recipient), processing_event
        ):
            return
        registry = self._reader(RegistryLog)
        registered: Any = next(iter(registry.events.get(patient_id, lte=REGISTERED_VERSION)))
        if registered.meta.get("source") in NOT_ECHOED_SOURCES:
            return
        payload = {k: v for k, v in siu.items() if k in ADT_FIELDS}
        payload["event_at"] = _iso(event.timestamp)
        cause = introduction_cause(patient_id)
        meta = system_actor(source="delivery-policy").meta(cause=cause)
        processing_event.collect_events(
            MessageDelivery.queue(
                channel="hl7",
                recipient=recipient,
                message_type="ADT^A04",
                cause=cause,
                cause_at=registered.timestamp,
                ordering_key=siu["patient_id"],
                payload=payload,
                meta=meta,
            )
        )

    def _registration_wait(self, patient_id: UUID) -> bool:
        """Whether the registry's follower has processed the patient's registration,
        waiting up to ``registration_wait`` seconds for it to get there.

        Until it has, it will queue their ADT^A04 itself, so an introduction now would
        be a second one (the two followers run side by side). Once it has, its tracking
        record and any A04 it queued were committed together, so ``find_delivery``
        answers for it. A patient who registers and books at once may reach this
        follower first; queueing their SIU then, before the registry's follower queues
        their ADT^A04, let the pump send the SIU first (it sends a patient's earliest
        *queued* message), and a RIS refuses an appointment for a patient it has not
        been told of. After the wait (a registry follower far behind, or not running)
        the SIU is queued anyway, as before: late is worse than out of order. Until the
        registry's follower has reached the registration that wait ran out on, nobody
        else's SIU waits for it: it is known to be far behind, and every patient's SIU
        (this follower sends them in order) would wait the full time behind each new one."""
        position = self._registration_position(patient_id)
        if position is None:
            return False  # no such registration: nothing to wait for
        reached = self.recorder.max_tracking_id(RegistryLog.name) or 0
        if reached < self._gave_up_at:
            return reached >= position  # still far behind: no waiting
        deadline = time.monotonic() + self.registration_wait
        while reached < position:
            if time.monotonic() >= deadline:
                self._gave_up_at = position
                log.warning(
                    "registration_wait_ran_out",
                    registry_follower_at=reached,
                    registration_at=position,
                    seconds=self.registration_wait,
                )
                return False
            time.sleep(REGISTRATION_POLL_SECONDS)
            reached = self.recorder.max_tracking_id(RegistryLog.name) or 0
        return True

    def _registration_position(self, patient_id: UUID) -> int | None:
        """The notification id of the patient's registration in the registry's log."""
        recorder: Any = self._reader(RegistryLog).recorder
        statement = SQL(
            "SELECT notification_id FROM {}.{} WHERE originator_id = %s AND originator_version = %s"
        ).format(Identifier(recorder.datastore.schema), Identifier(recorder.events_table_name))
        with recorder.datastore.transaction(commit=False) as curs:
            curs.execute(statement, (patient_id, REGISTERED_VERSION))
            row = curs.fetchone()
        return None if row is None else int(row["notification_id"])

    def find_delivery(self, delivery_id: UUID, processing_event: ProcessingEvent[UUID]) -> bool:
        """Whether the delivery exists (stored, or collected by this processing event)."""
        if delivery_id in processing_event.aggregates:
            return True
        try:
            self.repository.get(delivery_id)
        except AggregateNotFoundError:
            return False
        return True

    def _patient_fields(self, patient: Any) -> dict[str, str]:
        fields = {
            "patient_id": str(patient.id),
            "given_name": patient.given_name,
            "family_name": patient.family_name,
            "birth_date": _iso(patient.birth_date),
            "phone": patient.phone or "",
            "sex": getattr(patient, "administrative_sex", ""),
        }
        identifiers: dict[str, str] = patient.identifiers
        if identifiers:
            authority = sorted(identifiers)[0]
            fields["mrn"], fields["mrn_authority"] = identifiers[authority], authority
        return fields

    def _adt_payload(self, event: Any) -> tuple[dict[str, str], str]:
        if isinstance(event, Patient.Registered):
            payload = {
                "patient_id": str(event.originator_id),
                "given_name": event.given_name,
                "family_name": event.family_name,
                "birth_date": _iso(event.birth_date),
                "phone": event.phone or "",
            }
        else:
            # A later change: the patient as it left them, identifiers and sex included.
            registry = self._reader(RegistryLog)
            patient: Any = registry.repository.get(
                event.originator_id, version=event.originator_version
            )
            payload = self._patient_fields(patient)
        payload["event_at"] = _iso(event.timestamp)
        return payload, str(event.originator_id)

    def _siu_payload(self, event: Any) -> tuple[dict[str, str], str]:
        scheduling = self._reader(SchedulingLog)
        # The appointment exactly as this event left it.
        appointment: Any = scheduling.repository.get(
            event.originator_id, version=event.originator_version
        )
        catalog = self._reader(Catalog)
        exam = catalog.appointment_type(appointment.appointment_type_id)
        location = catalog.location(appointment.location_id)
        resource = catalog.resource(appointment.resource_id)
        minutes = int((appointment.end - appointment.start).total_seconds() // 60)
        payload = {
            "event_at": _iso(event.timestamp),
            "appointment_id": str(appointment.id),
            "start": _iso(appointment.start),
            "end": _iso(appointment.end),
            "timezone": appointment.timezone,
            "duration_minutes": str(minutes),
            "reason": str(getattr(event, "reason", "") or ""),
            "notes": appointment.notes,
            "type_code": exam.code,
            "type_name": str(exam.spec.get("name", exam.code)),
            "type_cpt": str(exam.spec.get("cpt", "")),
            "modality": str(exam.spec.get("modality", "")),
            "location_code": location.code,
            "location_name": location.name,
            "resource_code": resource.code,
            "resource_name": str(resource.spec.get("name", resource.code)),
            **self._patient_fields(self._patient_as_of(appointment.patient_id, event.timestamp)),
            **self._order_fields(scheduling, appointment.order_id),
        }
        return payload, str(appointment.patient_id)

    @staticmethod
    def _order_fields(scheduling: SchedulingLog, order_id: UUID | None) -> dict[str, str]:
        """The RIS order the appointment was booked for: its placer and filler numbers
        (``namespace:id``), which the RIS matches the booking to (SCH-26, SCH-27)."""
        order = None if order_id is None else scheduling.find(order_id, ImagingOrder)
        if order is None:
            return {}
        return {"placer_number": order.placer_number, "filler_number": order.filler_number}

    def _patient_as_of(self, patient_id: UUID, moment: datetime) -> Any:
        """The patient as they were at ``moment``: a later change of theirs reaches the
        RIS as its own ADT^A08, after this message, not inside it."""
        registry = self._reader(RegistryLog)
        patient: Any = None
        changes: Any = registry.events.get(patient_id)
        for change in changes:  # one read of the patient's events, folded up to ``moment``
            if change.timestamp > moment and patient is not None:
                break
            patient = change.mutate(patient)
        if patient is None:
            raise NotFoundError("no such patient")
        return patient
