"""The communication policy: what happened to a patient's bookings and orders becomes
notice deliveries (e-mail, SMS, push) in the ``deliveries`` store, exactly once.

It follows the Scheduling log with tracking of its own (``communications_tracking``),
beside the HL7 policy that writes to the same store:

- ``Appointment.Booked``: a booking confirmation now, and reminders due at the offsets
  before the exam (the exam type's, else the centre's), placed around quiet hours
  (``domain.reminders``); a reminder whose time has passed is not created.
- ``Appointment.Rescheduled``: the pending reminders of the old time withdrawn and new
  ones queued, in the same write as the tracking record; the patient who moved it gets a
  confirmation, anyone else's move (staff, the RIS) a "booking moved" notice.
- ``Appointment.Cancelled``: the reminders withdrawn; when the centre or the RIS
  cancelled, a "booking cancelled" notice. ``Appointment.Displaced``: the reminders
  withdrawn and a "choose a new time" notice. Both go during quiet hours when the exam
  was less than 48 hours away (and say so).
- ``ImagingOrder.Placed``: an invitation to book; ``ImagingOrder.ResultReferenced``
  (final or corrected): "a result is available", nothing else.

Each notice goes over every channel the patient consented to that has a template for
its kind (``audience``); with none, it is recorded as undeliverable. Identities derive
from the cause (``{appointment}:{version}:reminder:{n}``, n counting from the exam
backwards, at most ``MAX_REMINDERS``), so the reminders a later change withdraws are
found from the version that scheduled them, without a read model.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.application import ProcessingEvent
from eventsourcing.persistence import ApplicationRecorder, JSONTranscoder
from eventsourcing.postgres import PostgresProcessRecorder
from psycopg.sql import SQL, Identifier

from application.activation import PURPOSE, issue_code
from application.base import DateAsISO, tolerating_concurrent_ddl
from application.batching import BatchingPolicy
from application.catalog import Catalog
from application.communications.notices import Notices
from application.communications.patients import Patients
from application.communications.visits import VisitWriter
from application.digests import KeyedDigest
from application.notices.renderer import NoticeTemplates
from application.ports import Clock
from application.registry import RegistryLog
from application.ris.deliveries import NAME
from application.scheduling import SchedulingLog
from domain.appointment import Appointment
from domain.patient import Patient
from domain.reminders import QuietHours
from domain.ris.order import ImagingOrder

TRACKING_TABLE = "communications_tracking"


class _UtcClock(Clock):
    def now(self) -> datetime:
        return datetime.now(UTC)


class CommunicationPolicy(BatchingPolicy):
    """Scheduling events -> notice deliveries to patients, exactly once (see the module).

    Run one ``EventSourcedProjectionRunner`` on ``SchedulingLog`` with the class that
    ``configured`` returns (it carries the clock, the centre's offsets and quiet hours).
    A backlog is recorded a batch at a time (``application.batching``): a day's bulk
    import is not one commit per booking.
    """

    name = NAME
    clock: ClassVar[Clock] = _UtcClock()
    offsets: ClassVar[tuple[timedelta, ...]] = (timedelta(hours=72), timedelta(hours=24))
    quiet_hours: ClassVar[QuietHours | None] = QuietHours.parse("21:00-08:00")
    templates: ClassVar[NoticeTemplates | None] = None

    @classmethod
    def configured(
        cls,
        *,
        clock: Clock,
        offsets: tuple[timedelta, ...],
        quiet_hours: QuietHours | None,
    ) -> type["CommunicationPolicy"]:
        """This policy with a clock, the centre's reminder offsets and default quiet hours."""
        attributes = {
            "name": NAME,
            "clock": clock,
            "offsets": offsets,
            "quiet_hours": quiet_hours,
        }
        return type(cls.__name__, (cls,), attributes)

    def __init__(self, env: Any = None) -> None:
        tolerating_concurrent_ddl(self, lambda: super(CommunicationPolicy, self).__init__(env))
        if CommunicationPolicy.templates is None:
            CommunicationPolicy.templates = NoticeTemplates()
        self.notice_templates: NoticeTemplates = CommunicationPolicy.templates
        self._scheduling = SchedulingLog(dict(self.env))
        self._registry = RegistryLog(dict(self.env))
        self._patients = Patients(self._registry)
        self._activation_digest = KeyedDigest.from_cipher_key(self.env["CIPHER_KEY"], PURPOSE)
        self._visits = VisitWriter(Catalog(dict(self.env)))

    def construct_recorder(self) -> Any:
        """The deliveries store's events, with tracking of this policy's own (the HL7
        policy tracks the same upstream logs in the store's tracking table)."""
        factory: Any = self.factory
        recorder = type(factory).process_recorder_class(
            datastore=factory.datastore,
            events_table_name=f"{NAME}_events",
            tracking_table_name=TRACKING_TABLE,
        )
        if not isinstance(recorder, PostgresProcessRecorder):
            raise TypeError("the communication policy needs the PostgreSQL event store")
        if factory.env_create_table():
            recorder.create_table()
        return recorder

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(DateAsISO())

    def close(self) -> None:
        for reader in (self._scheduling, self._registry, self._visits.catalog):
            reader.close()
        super().close()

    def followed_log(self, application_name: str) -> ApplicationRecorder:
        """The scheduling log's recorder (the one log this policy follows)."""
        if application_name != SchedulingLog.name:
            raise ValueError(f"the communication policy does not follow {application_name!r}")
        return self._scheduling.recorder

    @contextmanager
    def deciding(self, events: list[Any]) -> Iterator[None]:
        """The patients of a batch's bookings, read in one query for its decisions."""
        self._patients.prefetch(e.patient_id for e in events if isinstance(e, Appointment.Booked))
        try:
            yield
        finally:
            self._patients.clear()

    def policy(self, domain_event: Any, processing_event: ProcessingEvent[UUID]) -> None:
        now = self.clock.now()
        notices = Notices(self, domain_event, processing_event, now)
        match domain_event:
            case Appointment.Booked():
                notices.booked()
            case Appointment.Rescheduled():
                notices.rescheduled()
            case Appointment.Cancelled():
                notices.cancelled()
            case Appointment.Displaced():
                notices.displaced()
            case ImagingOrder.Placed():
                notices.order_placed()
            case ImagingOrder.ResultReferenced():
                notices.result_referenced()

    # What the notices read --------------------------------------------------------------

    def patient(self, patient_id: UUID) -> Patient | None:
        """The patient's record (the surviving one, when it was merged into another)."""
        return self._patients.get(patient_id)

    def appointment_events(self, appointment_id: UUID, version: int) -> list[Any]:
        return list(self._scheduling.events.get(appointment_id, lte=version))

    def activation_code(self, patient: Patient, meta: dict[str, str]) -> str:
        """A new activation code for ``patient``, saved in the registry at once (the
        invitation carries it). A batch decided again issues another: the latest code is
        the one that works, and the latest decision is the one recorded."""
        issued, code = issue_code(patient, self._activation_digest, self.clock.now(), meta)
        self._registry.save(patient, code)
        return issued.code

    def order(self, order_id: UUID, version: int) -> Any:
        return self._scheduling.repository.get(order_id, version=version)

    def existing(self, delivery_ids: list[UUID]) -> list[UUID]:
        """Those of ``delivery_ids`` the store holds (one query)."""
        recorder: Any = self.recorder
        statement = SQL("SELECT DISTINCT originator_id FROM {}.{} WHERE originator_id = ANY(%s)")
        query = statement.format(
            Identifier(recorder.datastore.schema), Identifier(recorder.events_table_name)
        )
        with recorder.datastore.transaction(commit=False) as curs:
            curs.execute(query, (delivery_ids,))
            return [row["originator_id"] for row in curs.fetchall()]

    @property
    def visits(self) -> VisitWriter:
        return self._visits
