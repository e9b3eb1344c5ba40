"""Inbound effects: what an HL7 message from the RIS does to our applications.

The processing stage hands each stored message to ``InboundEffects.handle``. A
``MessageReader`` (the HL7 adapter) says what the message asks of us and turns its
text into plain values (``application.ris.parsed``); the handler dispatches on that to
Registry (patients), Orders (orders, results) and RisBookings (the RIS's bookings).
Every effect is idempotent: identities derive from natural keys (MRN + authority,
order numbers, the RIS's appointment id, the message id), and aggregates remember the
messages they applied.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from uuid import UUID

from application.catalog import Catalog
from application.errors import NotFoundError
from application.patient_merges import PatientMerges
from application.registry import Registry, RisPatient
from application.ris.inbound_ports import InboundHandler, InboundMessage, MessageKind, MessageReader
from application.ris.orders import APPLIED, IGNORED, KEPT_FOR_REVIEW, Orders
from application.ris.parsed import (
    BookedResource,
    Identifier,
    ParsedMessage,
    ResultData,
    ScheduleData,
)
from application.ris.ris_bookings import RisBookings
from application.scheduling import Scheduling
from domain.context import Actor, system_actor
from domain.errors import DomainError, InvalidValueError
from domain.resource import Resource
from domain.ris.order import ResultReference
from domain.schedule import Interval, local_to_utc, zone

Handler = Callable[[InboundMessage, ParsedMessage, Actor], str]


class MissingFieldError(DomainError):
    code = "missing_field"


class UnknownPatientError(DomainError):
    code = "unknown_patient"


def _uuid(text: str) -> UUID | None:
    try:
        return UUID(text)
    except ValueError:
        return None


@dataclass(frozen=True)
class InboundSettings:
    """How the RIS's codes map to ours.

    ``resource_codes`` maps a RIS resource/location code (AIG-3, AIL-3, AIS-3) to our
    resource code; a code not in the map is tried as our own code, and a booking on no
    known resource is ignored. ``viewer_url_template`` (``{accession}`` and
    ``{filler}`` placeholders) builds a viewer link when the ORU carries none.
    ``default_authority`` stands for an MRN without assigning authority (the sending
    facility when empty). An identifier of ``own_authority`` is our own patient id,
    echoed by the RIS (outbound ADT/SIU send it as ``<id>^^^IMGBRIDGE^PI``).
    """

    resource_codes: Mapping[str, str] = field(default_factory=dict)
    viewer_url_template: str = ""
    default_authority: str = ""
    default_timezone: str = "UTC"
    own_authority: str = "IMGBRIDGE"


class InboundEffects(InboundHandler):
    """Applies ORM/OMI, ORU, ADT and SIU messages from the RIS, exactly once."""

    def __init__(
        self,
        *,
        registry: Registry,
        scheduling: Scheduling,
        catalog: Catalog,
        reader: MessageReader,
        settings: InboundSettings | None = None,
        merges: PatientMerges | None = None,
    ) -> None:
        """``merges`` moves a merged record's appointments and orders to the survivor."""
        self._registry = registry
        self._merges = merges
        self._orders = Orders(scheduling)
        self._ris_bookings = RisBookings(scheduling)
        self._catalog = catalog
        self._reader = reader
        self._settings = settings or InboundSettings()
        self._handlers: dict[MessageKind, Handler] = {
            MessageKind.PATIENT: self._patient,
            MessageKind.MERGE: self._merge,
            MessageKind.ORDERS: self._order_messages,
            MessageKind.RESULTS: self._results,
            MessageKind.BOOKING_MADE: self._booking,
            MessageKind.BOOKING_FREED: self._booking_freed,
        }

    def handle(self, message: InboundMessage) -> str:
        """Apply the message; applying it again changes nothing."""
        kind = self._reader.kind(message)
        if kind is None:
            return IGNORED
        handler = self._handlers[kind]
        return handler(message, self._reader.read(message), _actor(message))

    def handle_batch(self, messages: Sequence[InboundMessage]) -> dict[UUID, str | DomainError]:
        """The patients' demographics (ADT^A01/A04/A08...) of several messages in one
        registry save; every other message is left to ``handle``."""
        sent: list[tuple[UUID, RisPatient]] = []
        outcomes: dict[UUID, str | DomainError] = {}
        for message in messages:
            if self._reader.kind(message) is not MessageKind.PATIENT:
                continue
            try:
                parsed = self._reader.read(message)
                sent.append((message.id, self._ris_patient(message, parsed, update=True)))
            except DomainError as error:
                outcomes[message.id] = error
        recorded = self._registry.record_patients_from_ris([patient for _, patient in sent])
        for (message_id, _), result in zip(sent, recorded, strict=True):
            if result is not None:  # None: it goes alone
                outcomes[message_id] = result if isinstance(result, DomainError) else APPLIED
        return outcomes

    def ordering_key(self, message: InboundMessage) -> str | None:
        """One patient's messages are applied in order: the key is the patient's first
        identifier, as ``_key`` reads it. The RIS's bookings share calendars, so they keep
        their order among themselves; a merge (it changes two patients) and anything
        unreadable or naming no patient keep the order of the whole feed (None); a
        message we ignore has nothing to be ordered with."""
        kind = self._reader.kind(message)
        if kind is None:
            return f"message {message.id}"
        if kind in (MessageKind.BOOKING_MADE, MessageKind.BOOKING_FREED):
            return "ris bookings"
        if kind is MessageKind.MERGE:
            return None
        try:
            patient = self._reader.read(message).patient
        except DomainError:
            return None
        if patient is None or not patient.identifiers:
            return None
        authority, value = self._key(message, patient.identifiers[0])
        return f"patient {authority.strip().upper()}\x1f{value.strip().upper()}"

    # ADT ----------------------------------------------------------------------------

    def _patient(self, message: InboundMessage, parsed: ParsedMessage, actor: Actor) -> str:
        self._patient_id(message, parsed, actor, update=True)
        return APPLIED

    def _merge(self, message: InboundMessage, parsed: ParsedMessage, actor: Actor) -> str:
        if not parsed.merged:
            raise MissingFieldError("ADT^A40 without MRG-1: nothing says which record to merge")
        survivor = self._patient_id(message, parsed, actor, update=True)
        merged = [self._key(message, i) for i in parsed.merged]
        merged_ids = self._registry.merge_patients(survivor_id=survivor, merged=merged, actor=actor)
        if self._merges is not None:
            for merged_id in merged_ids:
                self._merges.move(merged_id, survivor, actor)
        return APPLIED

    def _patient_id(
        self, message: InboundMessage, parsed: ParsedMessage, actor: Actor, *, update: bool
    ) -> UUID:
        sent = self._ris_patient(message, parsed, update=update, actor=actor)
        return self._registry.record_ris_patient(sent)

    def _ris_patient(
        self,
        message: InboundMessage,
        parsed: ParsedMessage,
        *,
        update: bool,
        actor: Actor | None = None,
    ) -> RisPatient:
        """The patient the message sends, as the registry records them."""
        patient = parsed.patient
        if patient is None or not patient.identifiers:
            raise MissingFieldError("the message has no PID-3 patient identifier")
        ours = [i for i in patient.identifiers if i.authority == self._settings.own_authority]
        own_id = _uuid(ours[0].value) if ours else None
        if own_id is not None and self._registry.patient_by_id(own_id) is None:
            raise UnknownPatientError("the RIS names a patient id of ours that we do not know")
        return RisPatient(
            identifiers=[self._key(message, i) for i in patient.identifiers if i not in ours],
            patient_id=own_id,
            given_name=patient.given_name,
            family_name=patient.family_name,
            birth_date=patient.birth_date,
            phone=patient.phone,
            administrative_sex=patient.administrative_sex,
            email=patient.email,
            update_demographics=update,
            actor=actor or _actor(message),
        )

    def _key(self, message: InboundMessage, identifier: Identifier) -> tuple[str, str]:
        authority = (
            identifier.authority
            or self._settings.default_authority
            or message.sending_facility
            or message.sending_application
        )
        return authority, identifier.value

    # ORM / OMI ----------------------------------------------------------------------

    def _order_messages(self, message: InboundMessage, parsed: ParsedMessage, actor: Actor) -> str:
        if not parsed.orders:
            raise MissingFieldError("an order message without ORC/OBR")
        if all(o.intent is None for o in parsed.orders):
            return IGNORED
        patient_id = self._patient_id(message, parsed, actor, update=False)
        outcomes = [
            self._orders.receive_order(
                intent=order.intent,
                patient_id=patient_id,
                placer=order.placer,
                filler=order.filler,
                accession_number=order.accession_number,
                procedure_code=order.procedure_code,
                procedure_text=order.procedure_text,
                reason=f"cancelled by the RIS ({order.control})",
                message_id=f"{message.id}/{index}",
                actor=actor,
            )
            for index, order in enumerate(parsed.orders)
        ]
        return APPLIED if APPLIED in outcomes else IGNORED

    # ORU ----------------------------------------------------------------------------

    def _results(self, message: InboundMessage, parsed: ParsedMessage, actor: Actor) -> str:
        if not parsed.results:
            raise MissingFieldError("a result message without OBR")
        mrn = ""
        if parsed.patient is not None and parsed.patient.identifiers:
            authority, value = self._key(message, parsed.patient.identifiers[0])
            mrn = f"{authority}:{value}"
        # Every OBR is checked first: all of the message is applied, or none of it.
        references = [self._reference(result) for result in parsed.results]
        outcomes = [
            self._orders.reference_result(
                reference,
                placer=result.placer,
                filler=result.filler,
                patient_identifier=mrn,
                message_id=f"{message.id}/{index}",
                actor=actor,
            )
            for index, (result, reference) in enumerate(
                zip(parsed.results, references, strict=True)
            )
        ]
        return KEPT_FOR_REVIEW if KEPT_FOR_REVIEW in outcomes else APPLIED

    def _reference(self, result: ResultData) -> ResultReference:
        if result.result_status is None:
            raise InvalidValueError(f"OBR-25 result status {result.status_code!r} is not P, F or C")
        observed_at = result.observed_at
        return ResultReference(
            accession_number=result.accession_number,
            procedure_code=result.procedure_code,
            procedure_text=result.procedure_text,
            result_status=result.result_status,
            observed_at=(
                None
                if observed_at is None
                else _aware(observed_at, self._settings.default_timezone)
            ),
            viewer_link=result.viewer_link or self._viewer_link(result),
        )

    def _viewer_link(self, result: ResultData) -> str:
        template = self._settings.viewer_url_template
        if not template or not (result.accession_number or result.filler):
            return ""
        return template.format(accession=result.accession_number, filler=result.filler)

    # SIU ----------------------------------------------------------------------------

    def _booking_freed(self, message: InboundMessage, parsed: ParsedMessage, actor: Actor) -> str:
        return self._booking(message, parsed, actor, freed=True)

    def _booking(
        self, message: InboundMessage, parsed: ParsedMessage, actor: Actor, freed: bool = False
    ) -> str:
        schedule = parsed.schedule
        if schedule is None or not (schedule.filler_id or schedule.placer_id):
            raise MissingFieldError("an SIU without SCH-2 (or SCH-1) appointment id")
        filler_id = schedule.filler_id or f"placer:{schedule.placer_id}"
        mapped = [(self._resource(r.code), r) for r in schedule.resources]
        active = [
            (resource, line)
            for resource, line in mapped
            if resource is not None and not line.removed
        ]
        message_id = str(message.id)
        if freed or not active:
            # Cancelled, a no-show, or moved off every resource of ours: its time is free
            # (nothing happens for a booking we never held).
            released = self._ris_bookings.release(
                filler_id=filler_id,
                reason=f"SIU^{message.trigger.upper()} from the RIS",
                message_id=message_id,
                actor=actor,
            )
            return APPLIED if released else IGNORED
        resource, line = active[0]
        timezone = self._catalog.location(resource.location_id).timezone
        span = self._span(schedule, line, timezone)
        self._ris_bookings.occupy(
            filler_id=filler_id,
            resource_id=resource.id,
            span=span,
            timezone=timezone,
            message_id=message_id,
            actor=actor,
        )
        return APPLIED

    def _resource(self, code: str) -> Resource | None:
        if not code:
            return None
        ours = self._settings.resource_codes.get(code, code)
        try:
            return self._catalog.resource(Resource.create_id(ours))
        except NotFoundError:
            return None

    def _span(self, schedule: ScheduleData, line: BookedResource, timezone: str) -> Interval:
        """The resource line's own start and duration, else the SCH-11 timing.

        Times without an offset are wall-clock times at the resource's location. One that
        a DST change skips is read as the first instant after the gap; one it repeats, as
        its earlier instant (an end as its later one when the earlier is not after the
        start). A duration is elapsed time from the start.
        """
        sch_start = None if schedule.start is None else _aware(schedule.start, timezone)
        sch_end = _end(schedule.end, sch_start, timezone)
        start, end = sch_start, sch_end
        if line.start is not None:
            start = _aware(line.start, timezone)
            if line.duration_minutes:
                end = start + timedelta(minutes=line.duration_minutes)
            elif sch_start is not None and sch_end is not None:
                end = start + (sch_end - sch_start)
            else:
                end = None
        if start is None:
            raise MissingFieldError("an SIU booking without a start time")
        if end is None:
            raise MissingFieldError("an SIU booking without a duration or end time")
        if end <= start:
            raise InvalidValueError("an SIU booking that ends before it starts")
        return Interval(start, end)


def _actor(message: InboundMessage) -> Actor:
    """Who applies the message: the system, on the message's behalf."""
    return system_actor(request_id=str(message.id), source="hl7-inbound")


def _end(end: datetime | None, start: datetime | None, timezone: str) -> datetime | None:
    if end is None:
        return None
    earlier = _aware(end, timezone)
    if start is None or earlier > start:
        return earlier
    return _aware(end, timezone, later=True)


def _aware(moment: datetime, timezone: str, *, later: bool = False) -> datetime:
    """``moment`` in UTC; without an offset, a wall-clock time in ``timezone`` (a skipped
    one as the first instant after the gap; a repeated one as its earlier instant, or with
    ``later`` its later one)."""
    if moment.utcoffset() is not None:
        return moment.astimezone(UTC)
    minutes = moment.hour * 60 + moment.minute
    instant = local_to_utc(moment.date(), minutes, zone(timezone), earliest=not later)
    return instant + timedelta(seconds=moment.second, microseconds=moment.microsecond)
