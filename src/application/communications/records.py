"""What was sent to a patient, or is due: the patient's own list (``mine``) and the
compliance officer's record (``record``): every notice with its template id and version,
channel, times, every attempt and provider receipt, and on request the content rendered
again from the template version and the data the delivery stored."""

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from application.notices.envelope import NoticeEnvelope
from application.notices.kinds import NoticeError, without_secrets
from application.notices.renderer import NoticeTemplates, RenderedNotice
from application.ports import Clock
from application.ris.deliveries import Deliveries
from application.ris.delivery_views import AttemptView
from domain.ris.message_delivery import MessageDelivery

MAX_ROWS = 500
# The read model's states as a patient reads them.
PUBLIC_STATUS = {
    "queued": "queued",
    "retrying": "sending",
    "ambiguous": "sending",
    "acknowledged": "sent",
    "dead_lettered": "failed",
    "withdrawn": "withdrawn",
    "undeliverable": "undeliverable",
}


@dataclass(frozen=True)
class NoticeRow:
    """One notice delivery of a patient as the deliveries read model holds it."""

    id: UUID
    kind: str
    channel: str
    status: str
    created_at: datetime
    due_at: datetime | None
    held_until: datetime | None
    next_attempt_at: datetime | None
    sent_at: datetime | None
    attempts: int
    reason: str


class NoticeRows(ABC):
    """The deliveries read model, by patient."""

    @abstractmethod
    def for_patient(self, patient_id: UUID, limit: int = MAX_ROWS) -> list[NoticeRow]:
        """The patient's notice deliveries, newest first."""

    @abstractmethod
    def history(self, delivery_id: UUID) -> list[AttemptView]:
        """A delivery's attempts, holds, receipts and ends, oldest first."""


@dataclass(frozen=True)
class Notification:
    """A notice as its patient sees it. ``status``: queued, held (quiet hours), sending,
    sent, failed, withdrawn, undeliverable; ``due_at``: when it goes (after any hold)."""

    id: UUID
    kind: str
    channel: str
    status: str
    queued_at: datetime
    due_at: datetime | None
    sent_at: datetime | None
    attempts: int


@dataclass(frozen=True)
class Communication:
    """A notice as the compliance officer sees it."""

    notification: Notification
    template_id: str
    template_version: int
    language: str
    planned_at: datetime | None
    held_until: datetime | None
    reason: str
    history: list[AttemptView]
    content: RenderedNotice | None
    content_problem: str = ""


def notification(row: NoticeRow, now: datetime) -> Notification:
    status = PUBLIC_STATUS.get(row.status, row.status)
    if status == "queued" and row.held_until is not None and row.held_until > now:
        status = "held"
    return Notification(
        id=row.id,
        kind=row.kind,
        channel=row.channel,
        status=status,
        queued_at=row.created_at,
        due_at=row.held_until or row.due_at,
        sent_at=row.sent_at,
        attempts=row.attempts,
    )


class Communications:
    """The record of what was sent to patients."""

    def __init__(
        self,
        rows: NoticeRows,
        deliveries: Deliveries,
        clock: Clock,
        *,
        base_url: str,
        centre_name: str,
        templates: NoticeTemplates | None = None,
    ) -> None:
        self._rows = rows
        self._deliveries = deliveries
        self._clock = clock
        self._base_url = base_url
        self._centre_name = centre_name
        self._templates = templates or NoticeTemplates()

    def mine(self, patient_id: UUID) -> list[Notification]:
        """What was sent to the patient or is due, newest first."""
        now = self._clock.now()
        return [notification(row, now) for row in self._rows.for_patient(patient_id)]

    def record(self, patient_id: UUID, *, content: bool = False) -> list[Communication]:
        """Every notice ever queued for the patient, newest first, with its history (and
        its content rendered again with ``content``)."""
        now = self._clock.now()
        return [
            self._communication(row, now, content) for row in self._rows.for_patient(patient_id)
        ]

    def _communication(self, row: NoticeRow, now: datetime, content: bool) -> Communication:
        delivery = self._deliveries.find(row.id, MessageDelivery)
        payload = delivery.payload if delivery is not None else {}
        rendered, problem = None, ""
        try:
            envelope = NoticeEnvelope.from_payload(payload)
        except NoticeError as error:
            envelope, problem = None, error.detail
        if envelope is not None and content:
            try:
                rendered = self._templates.render(
                    without_secrets(envelope.notice),
                    row.channel,
                    envelope.language,
                    base_url=self._base_url,
                    centre_name=self._centre_name,
                    version=envelope.version,
                )
            except NoticeError as error:
                problem = error.detail
        language = envelope.language if envelope else ""
        version = envelope.version if envelope else 0
        return Communication(
            notification=notification(row, now),
            template_id=f"{row.kind}/{row.channel}.{language}.v{version}" if envelope else "",
            template_version=version,
            language=language,
            planned_at=row.due_at,
            held_until=row.held_until,
            reason=row.reason,
            history=self._rows.history(row.id),
            content=rendered,
            content_problem=problem,
        )
