"""Secure messages between a patient and the centre: requests and answers of both sides."""

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field

from api.schemas.common import FromView, Strict

# Limits the domain checks again (domain.secure_thread), with a readable detail; these
# only keep absurd requests out before that.
BODY_HELP = "plain text, 1 to 5000 characters; line breaks allowed, other control characters not"
SUBJECT_HELP = "one line, 1 to 120 characters"


class NewThread(Strict):
    subject: str = Field(max_length=1000, description=SUBJECT_HELP)
    body: str = Field(max_length=20000, description=BODY_HELP)


class StaffNewThread(NewThread):
    patient_id: UUID = Field(description="the patient to write to")


class NewMessage(Strict):
    body: str = Field(max_length=20000, description=BODY_HELP)


class Assignment(Strict):
    staff_id: UUID | None = Field(
        description="the member of staff who answers this thread (yourself or another"
        " who answers secure messages); null: nobody"
    )


class ThreadSummaryOut(FromView):
    id: UUID
    subject: str
    status: Literal["open", "closed"]
    last_message_at: datetime
    last_author_role: Literal["patient", "staff"]
    unread: bool = Field(description="messages from the other side you have not read yet")


class ThreadsOut(BaseModel):
    items: list[ThreadSummaryOut]


class StaffThreadSummaryOut(ThreadSummaryOut):
    patient_id: UUID
    assigned_to: UUID | None
    started_at: datetime


class StaffThreadsOut(BaseModel):
    items: list[StaffThreadSummaryOut]


class MessageOut(FromView):
    id: UUID
    author_role: Literal["patient", "staff"]
    body: str
    at: datetime


class StaffMessageOut(MessageOut):
    author_id: str = Field(description="the account that wrote it")


class ThreadOut(FromView):
    id: UUID
    subject: str
    status: Literal["open", "closed"]
    started_at: datetime
    messages: list[MessageOut]
    unread: int = Field(
        0, description="how many of the messages you had not read before this request"
    )


class StaffThreadOut(ThreadOut):
    patient_id: UUID
    assigned_to: UUID | None
    messages: list[StaffMessageOut]  # type: ignore[assignment]
    unread_by_patient: int = Field(description="staff messages the patient has not read")


class PostedOut(BaseModel):
    thread_id: UUID
