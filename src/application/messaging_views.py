"""What the secure-messaging service reads and answers: the thread list's rows (from the
read model, without subject or text), and threads with their messages (from the log)."""

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from uuid import UUID

from application.base import Position
from domain.secure_thread import SecureThread

Assignment = Literal["any", "unassigned", "mine"]
MAX_LISTED = 100


@dataclass(frozen=True)
class ThreadRow:
    """One thread in the read model: who, state and timing; no subject, no text."""

    id: UUID
    patient_id: UUID
    status: str
    assigned_to: UUID | None
    started_at: datetime
    last_message_at: datetime
    last_author_role: str
    unread_by_patient: bool
    unread_by_staff: bool


@dataclass(frozen=True)
class StaffFilter:
    """Which threads a member of staff lists: assignment (anyone's, nobody's, or
    ``staff_id``'s), only those with messages staff have not read, and a status."""

    staff_id: UUID
    assignment: Assignment = "any"
    unread: bool = False
    status: str | None = None
    limit: int = MAX_LISTED


class ThreadReader(ABC):
    """The secure-thread list (projections.secure_threads)."""

    @abstractmethod
    def for_patient(self, patient_id: UUID, limit: int = MAX_LISTED) -> list[ThreadRow]:
        """The patient's threads, latest message first."""

    @abstractmethod
    def for_staff(self, query: StaffFilter) -> list[ThreadRow]:
        """Threads matching ``query``, latest message first."""


@dataclass(frozen=True)
class ThreadSummary:
    """A listed thread with its subject (read from the thread itself)."""

    id: UUID
    patient_id: UUID
    subject: str
    status: str
    assigned_to: UUID | None
    started_at: datetime
    last_message_at: datetime
    last_author_role: str
    unread: bool
    """Whether the side asking has messages from the other side it has not read."""


@dataclass(frozen=True)
class MessageView:
    id: UUID
    author_role: str
    author_id: str
    body: str
    at: datetime


@dataclass(frozen=True)
class ThreadView:
    id: UUID
    patient_id: UUID
    subject: str
    status: str
    assigned_to: UUID | None
    started_at: datetime
    messages: list[MessageView]
    unread_by_patient: int
    unread_by_staff: int
    reach: str = "own"
    """How the reader reached it: ``own`` (the patient), ``centre`` or ``break_glass``."""
    reach_reason: str = ""

    @classmethod
    def of(
        cls, thread: SecureThread, patient_id: UUID, reach: str = "own", reason: str = ""
    ) -> "ThreadView":
        """The thread as ``patient_id`` (its patient's surviving record) or staff see it."""
        return cls(
            id=thread.id,
            patient_id=patient_id,
            subject=thread.subject,
            status=thread.status,
            assigned_to=thread.assigned_to,
            started_at=thread.started_at,
            messages=[
                MessageView(m.id, m.author_role, m.author_id, m.body, m.at) for m in thread.messages
            ],
            unread_by_patient=thread.unread_by("patient"),
            unread_by_staff=thread.unread_by("staff"),
            reach=reach,
            reach_reason=reason,
        )


@dataclass(frozen=True)
class Posted:
    """Where a secure-messaging write landed: the thread (and its patient), and the log
    position."""

    thread_id: UUID
    patient_id: UUID
    position: Position | None
