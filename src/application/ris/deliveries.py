"""Deliveries: the outbound side effects of the log (HL7 to the RIS now; e-mail, SMS,
push and ledger calls later), the policy that creates them, and their commands.

``DeliveryPolicy`` follows an upstream application's log with tracking (exactly once)
and queues one ``MessageDelivery`` per destination for each event that the RIS must
hear about; ``Deliveries`` is the only writer of attempts and redrives afterwards.
Both share the ``deliveries`` event store.
"""

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import singledispatchmethod
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, ProcessingEvent
from eventsourcing.persistence import IntegrityError, JSONTranscoder
from eventsourcing.projection import EventSourcedProjection

from application.base import BaseApplication, DateAsISO, tolerating_concurrent_ddl
from application.catalog import Catalog
from application.errors import ConcurrencyError, NotFoundError
from application.ports import AccessLog
from application.registry import Registry
from application.scheduling import Scheduling
from domain.appointment import Appointment
from domain.context import Actor, system_actor
from domain.errors import InvalidValueError
from domain.message_delivery import MessageDelivery
from domain.patient import Patient

NAME = "deliveries"
DEFAULT_VERSION = "2.5.1"

# Upstream event -> HL7 message type
SIU_TRIGGERS: dict[type[Any], str] = {
    Appointment.Booked: "SIU^S12",
    Appointment.Rescheduled: "SIU^S13",
    Appointment.Modified: "SIU^S14",
    Appointment.Cancelled: "SIU^S15",
    Appointment.MarkedNoShow: "SIU^S26",
}
ADT_TRIGGERS: dict[type[Any], str] = {
    Patient.Registered: "ADT^A04",
    Patient.DemographicsChanged: "ADT^A08",
}
# Changes the RIS itself sent us are not echoed back to it.
NOT_ECHOED_SOURCES = frozenset({"hl7-inbound"})


@dataclass(frozen=True)
class Destination:
    """One HL7 receiver (the RIS or its interface engine)."""

    name: str
    host: str
    port: int
    version: str = DEFAULT_VERSION
    tls: bool = False
    timeout: float = 10.0


def parse_destinations(text: str) -> list[Destination]:
    """``name=host:port[;version=2.5.1][;tls=1][;timeout=10]``, comma-separated."""
    result = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, rest = item.partition("=")
        address, *options = rest.split(";")
        host, colon, port = address.rpartition(":")
        if not sep or not name.strip() or not colon or not port.isdigit():
            raise InvalidValueError(f"bad HL7 destination {item!r}: name=host:port expected")
        opts = dict(o.split("=", 1) for o in options if "=" in o)
        result.append(
            Destination(
                name=name.strip(),
                host=host,
                port=int(port),
                version=opts.get("version", DEFAULT_VERSION),
                tls=opts.get("tls", "0") in ("1", "true", "yes"),
                timeout=float(opts.get("timeout", "10")),
            )
        )
    return result


def _iso(value: datetime | date) -> str:
    return value.isoformat()


class DeliveryPolicy(EventSourcedProjection[UUID]):
    """Appointment and patient events -> queued HL7 deliveries, exactly once.

    Run one ``EventSourcedProjectionRunner`` per upstream application (Scheduling,
    Registry) with this class; tracking keeps their positions apart. The payload is a
    snapshot of what the message needs, so every resend is the same message.
    Destinations come from ``HL7_DESTINATIONS`` in the environment.
    """

    name = NAME

    def __init__(self, env: Any = None) -> None:
        tolerating_concurrent_ddl(self, lambda: super(DeliveryPolicy, self).__init__(env))
        self.destinations = parse_destinations(self.env.get("HL7_DESTINATIONS", "") or "")
        self._readers: dict[str, Any] = {}

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(DateAsISO())

    def _reader(self, kind: type[Any]) -> Any:
        # Read-only instances of the upstream applications, on the same database.
        if kind.name not in self._readers:
            self._readers[kind.name] = kind(dict(self.env))
        return self._readers[kind.name]

    def close(self) -> None:
        for reader in self._readers.values():
            reader.close()
        self._readers.clear()
        super().close()

    @singledispatchmethod
    def policy(self, domain_event: Any, processing_event: ProcessingEvent[UUID]) -> None:
        message_type = SIU_TRIGGERS.get(type(domain_event)) or ADT_TRIGGERS.get(type(domain_event))
        if message_type is None or not self.destinations:
            return
        if domain_event.meta.get("source") in NOT_ECHOED_SOURCES:
            return
        if message_type.startswith("SIU"):
            payload, ordering_key = self._siu_payload(domain_event)
        else:
            payload, ordering_key = self._adt_payload(domain_event)
        cause = f"{domain_event.originator_id}:{domain_event.originator_version}"
        meta = system_actor(source="delivery-policy").meta(cause=cause)
        for destination in self.destinations:
            delivery = MessageDelivery.queue(
                channel="hl7",
                recipient=destination.name,
                message_type=message_type,
                cause=cause,
                cause_at=domain_event.timestamp,
                ordering_key=ordering_key,
                payload=payload,
                meta=meta,
            )
            processing_event.collect_events(delivery)

    def _patient_fields(self, patient: Any) -> dict[str, str]:
        fields = {
            "patient_id": str(patient.id),
            "given_name": patient.given_name,
            "family_name": patient.family_name,
            "birth_date": _iso(patient.birth_date),
            "phone": patient.phone or "",
        }
        identifiers: dict[str, str] = patient.identifiers
        if identifiers:
            authority = sorted(identifiers)[0]
            fields["mrn"], fields["mrn_authority"] = identifiers[authority], authority
        return fields

    def _adt_payload(self, event: Any) -> tuple[dict[str, str], str]:
        payload = {
            "event_at": _iso(event.timestamp),
            "patient_id": str(event.originator_id),
            "given_name": event.given_name,
            "family_name": event.family_name,
            "birth_date": _iso(event.birth_date),
            "phone": event.phone or "",
        }
        if not isinstance(event, Patient.Registered):
            # A later change: the identifiers the patient has by then go along.
            registry: Registry = self._reader(Registry)
            patient: Any = registry.repository.get(
                event.originator_id, version=event.originator_version
            )
            payload.update(
                {k: v for k, v in self._patient_fields(patient).items() if k.startswith("mrn")}
            )
        return payload, str(event.originator_id)

    def _siu_payload(self, event: Any) -> tuple[dict[str, str], str]:
        scheduling: Scheduling = self._reader(Scheduling)
        # The appointment exactly as this event left it.
        appointment: Any = scheduling.repository.get(
            event.originator_id, version=event.originator_version
        )
        catalog: Catalog = self._reader(Catalog)
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
        }
        return payload, str(appointment.patient_id)

    def _patient_as_of(self, patient_id: UUID, moment: datetime) -> Any:
        """The patient as they were at ``moment``: a later change of theirs reaches the
        RIS as its own ADT^A08, after this message, not inside it."""
        registry: Registry = self._reader(Registry)
        patient: Any = None
        changes: Any = registry.events.get(patient_id)
        for change in changes:  # one read of the patient's events, folded up to ``moment``
            if change.timestamp > moment and patient is not None:
                break
            patient = change.mutate(patient)
        if patient is None:
            raise NotFoundError("no such patient")
        return patient


class Deliveries(BaseApplication):
    """Outbound deliveries after they are queued: attempts, dead letters, redrives."""

    name = NAME

    def delivery(self, delivery_id: UUID) -> MessageDelivery:
        try:
            delivery: Any = self.repository.get(delivery_id)
        except AggregateNotFoundError:
            raise NotFoundError("no such delivery") from None
        if not isinstance(delivery, MessageDelivery):
            raise NotFoundError("no such delivery")
        return delivery

    def save_attempts(self, recorded: Sequence[MessageDelivery]) -> list[UUID]:
        """Save the attempts recorded on several deliveries (each as loaded before its
        send) in one write: one table lock and one commit for all of them. Returns the
        ids of those another sender had recorded first; they are not saved."""
        pending = [(delivery.id, delivery.collect_events()) for delivery in recorded]
        try:
            self.save(*(event for _, events in pending for event in events))
            return []
        except IntegrityError:
            pass
        lost = []
        for delivery_id, events in pending:  # find the loser(s); save the rest
            try:
                self.save(*events)
            except IntegrityError:
                lost.append(delivery_id)
        return lost

    def redrive(
        self, delivery_id: UUID, *, reason: str, at: datetime, actor: Actor
    ) -> MessageDelivery:
        """Send a dead letter again; the delivery as redriven."""
        delivery = self.delivery(delivery_id)
        delivery.redrive(reason=reason, at=at, meta=actor.meta())
        try:
            self.save(delivery)
        except IntegrityError:
            raise ConcurrencyError("the delivery is being changed elsewhere; try again") from None
        return delivery


def patient_of(payload: dict[str, str]) -> UUID | None:
    """The patient a delivery's message is about, if it names one."""
    try:
        return UUID(payload.get("patient_id", ""))
    except ValueError:
        return None


@dataclass(frozen=True)
class DeliveryView:
    """A delivery as the operator and the pump see it (from the read model)."""

    id: UUID
    channel: str
    recipient: str
    message_type: str
    cause: str
    cause_at: datetime
    ordering_key: str
    control_id: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_code: str
    last_detail: str
    dead_reason: str
    version: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class AttemptView:
    """One entry of a delivery's history: an attempt, a dead letter or a redrive."""

    version: int
    kind: str
    number: int
    outcome: str
    code: str
    detail: str
    at: datetime
    next_attempt_at: datetime | None
    actor_id: str


class DeliveryReader(ABC):
    """The deliveries read model."""

    @abstractmethod
    def search(
        self, *, status: str | None = None, channel: str | None = None, limit: int = 100
    ) -> list[DeliveryView]:
        """Deliveries, newest first, optionally of one status and channel."""

    @abstractmethod
    def get(self, delivery_id: UUID) -> DeliveryView | None:
        """One delivery, or None."""

    @abstractmethod
    def history(self, delivery_id: UUID) -> list[AttemptView]:
        """A delivery's attempts, dead letters and redrives, oldest first."""

    @abstractmethod
    def due(
        self,
        now: datetime,
        *,
        channel: str = "hl7",
        limit: int = 500,
        unleased_since: datetime | None = None,
    ) -> list[DeliveryView]:
        """The earliest pending delivery of each (recipient, ordering key), if it is due
        (and, with ``unleased_since``, not handed out in its current version since then)."""


class DeliveryDesk:
    """What an operator does with deliveries: list, inspect, redrive."""

    def __init__(
        self, deliveries: Deliveries, reader: DeliveryReader, clock: Any, audit: AccessLog
    ) -> None:
        self.deliveries = deliveries
        self.reader = reader
        self.clock = clock
        self.audit = audit

    def search(
        self, *, status: str | None = None, channel: str | None = None, limit: int = 100
    ) -> list[DeliveryView]:
        return self.reader.search(status=status, channel=channel, limit=limit)

    def show(self, delivery_id: UUID, actor: Actor) -> tuple[DeliveryView, list[AttemptView]]:
        """The delivery and its history (an audited read); NotFoundError if the read
        model lacks it."""
        view = self.reader.get(delivery_id)
        if view is None:
            raise NotFoundError("no such delivery")
        self.audit.operator_action(
            at=self.clock.now(),
            actor=actor,
            resource="delivery",
            resource_id=str(delivery_id),
            action="read",
            reason="",
            patient_id=patient_of({"patient_id": view.ordering_key}),
        )
        return view, self.reader.history(delivery_id)

    def redrive(self, delivery_id: UUID, *, reason: str, actor: Actor) -> int:
        """Send a dead letter again: an event with the operator's meta, and an entry in
        the audit log naming the patient the message is about. Its new version."""
        at = self.clock.now()
        delivery = self.deliveries.redrive(delivery_id, reason=reason, at=at, actor=actor)
        self.audit.operator_action(
            at=at,
            actor=actor,
            resource="delivery",
            resource_id=str(delivery_id),
            action="redrive",
            reason=reason.strip(),
            patient_id=patient_of(delivery.payload),
        )
        return int(delivery.version)
