"""Notices to a patient: the patient's own list and the compliance officer's record."""

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, Field

from api.schemas.common import FromView

STATUS_HELP = (
    "queued; held (quiet hours: due_at is when they end); sending (retrying after a"
    " temporary failure); sent; failed (the provider refused it for good); withdrawn"
    " (the appointment moved or was cancelled); undeliverable (no channel consented)"
)


class NotificationOut(FromView):
    id: UUID
    kind: str = Field(description="booking_confirmation, reminder, order_invitation, …")
    channel: str = Field(description="email, sms or push")
    status: str = Field(description=STATUS_HELP)
    queued_at: datetime
    due_at: datetime | None = Field(description="when it goes; null: at once")
    sent_at: datetime | None
    attempts: int


class NotificationsOut(BaseModel):
    items: list[NotificationOut]


class AttemptOut(FromView):
    kind: str = Field(description="attempt, held, receipt, withdrawn, undeliverable, …")
    number: int
    outcome: str
    code: str
    detail: str
    at: datetime
    next_attempt_at: datetime | None


class ContentOut(FromView):
    subject: str
    text: str
    html: str
    title: str
    body: str
    url: str


class CommunicationOut(BaseModel):
    notification: NotificationOut
    template_id: str = Field(description="kind/channel.language.vN: the exact template")
    template_version: int
    language: str
    planned_at: datetime | None = Field(description="a reminder's time before any hold")
    held_until: datetime | None
    reason: str = Field(description="why it was withdrawn, undeliverable or failed")
    history: list[AttemptOut]
    content: ContentOut | None = Field(
        description="with content=1: the message rendered again from its template version"
        " and the data stored with it"
    )
    content_problem: str


class CommunicationsOut(BaseModel):
    patient_id: UUID
    items: list[CommunicationOut]
