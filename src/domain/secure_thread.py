"""SecureThread: a conversation between one patient and the centre's staff.

Messages are plain text; the thread knows who wrote each one (the patient or a member
of staff), which member of staff it is assigned to, whether it is open, and how far each
side has read. Bodies and the subject are patient data: they live in the (encrypted)
events only, never in a read model.
"""

import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import DomainError, InvalidValueError

PATIENT = "patient"
STAFF = "staff"
AuthorRole = Literal["patient", "staff"]
AUTHOR_ROLES: tuple[str, ...] = (PATIENT, STAFF)
OPEN = "open"
CLOSED = "closed"
MAX_BODY = 5000
MAX_SUBJECT = 120
# Line breaks and tabs belong in a message; no other control character does.
ALLOWED_IN_BODY = frozenset("\n\t")


class ThreadClosedError(DomainError):
    """A message posted to a closed thread (staff reopen it; a patient starts another)."""

    code = "thread_closed"


def clean_body(body: str) -> str:
    """The body as stored: line ends as ``\\n``, surrounding blank space removed;
    InvalidValueError if empty, longer than 5000 characters or holding a control
    character other than a line break or a tab."""
    text = body.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not text:
        raise InvalidValueError("the message is empty")
    if len(text) > MAX_BODY:
        raise InvalidValueError(f"a message holds at most {MAX_BODY} characters")
    if any(_control(c) and c not in ALLOWED_IN_BODY for c in text):
        raise InvalidValueError("the message holds a control character")
    return text


def clean_subject(subject: str) -> str:
    """The subject as stored: one line of 1 to 120 characters, no control character."""
    text = subject.strip()
    if not text:
        raise InvalidValueError("the subject is empty")
    if len(text) > MAX_SUBJECT:
        raise InvalidValueError(f"a subject holds at most {MAX_SUBJECT} characters")
    if any(_control(c) for c in text):
        raise InvalidValueError("the subject holds a control character or a line break")
    return text


def _control(character: str) -> bool:
    # Cc: C0/C1 controls and DEL; Cs, Co, Cn: nothing a person types as text.
    # Line and paragraph separators (Zl, Zp) break a line just as \n would.
    return unicodedata.category(character) in {"Cc", "Cs", "Co", "Cn", "Zl", "Zp"}


@dataclass(frozen=True)
class Message:
    id: UUID
    author_role: str
    author_id: str
    body: str
    at: datetime


class SecureThread(Aggregate):
    """One patient's conversation with the centre."""

    class Started(Aggregate.Created):
        patient_id: UUID
        subject: str
        started_by_role: str
        started_by: str
        at: datetime
        meta: dict[str, str]

    class MessagePosted(Aggregate.Event):
        message_id: UUID
        author_role: str
        author_id: str
        body: str
        at: datetime
        meta: dict[str, str]

    class Assigned(Aggregate.Event):
        staff_id: UUID | None
        at: datetime
        meta: dict[str, str]

    class ReadByPatient(Aggregate.Event):
        message_id: UUID
        at: datetime
        meta: dict[str, str]

    class ReadByStaff(Aggregate.Event):
        message_id: UUID
        staff_id: str
        at: datetime
        meta: dict[str, str]

    class Closed(Aggregate.Event):
        at: datetime
        meta: dict[str, str]

    class Reopened(Aggregate.Event):
        at: datetime
        meta: dict[str, str]

    @classmethod
    def start(
        cls,
        *,
        id: UUID,
        patient_id: UUID,
        subject: str,
        body: str,
        author_role: str,
        author_id: str,
        message_id: UUID,
        at: datetime,
        meta: dict[str, str],
    ) -> "SecureThread":
        """A new thread with its first message (by the patient, or by staff writing to
        them)."""
        _check_role(author_role)
        subject = clean_subject(subject)
        body = clean_body(body)
        thread = cls(
            id=id,
            patient_id=patient_id,
            subject=subject,
            started_by_role=author_role,
            started_by=author_id,
            at=at,
            meta=meta,
        )
        thread._post(
            message_id=message_id,
            author_role=author_role,
            author_id=author_id,
            body=body,
            at=at,
            meta=meta,
        )
        return thread

    @event(Started)
    def __init__(
        self,
        id: UUID,
        patient_id: UUID,
        subject: str,
        started_by_role: str,
        started_by: str,
        at: datetime,
        meta: dict[str, str],
    ) -> None:
        self.patient_id = patient_id
        self.subject = subject
        self.started_by_role = started_by_role
        self.started_by = started_by
        self.started_at = at
        self.status = OPEN
        self.assigned_to: UUID | None = None
        self.messages: list[Message] = []
        self.patient_read: UUID | None = None
        self.staff_read: UUID | None = None

    # --- commands ---------------------------------------------------------------------

    def post(
        self,
        *,
        message_id: UUID,
        author_role: str,
        author_id: str,
        body: str,
        at: datetime,
        meta: dict[str, str],
    ) -> None:
        """A message in an open thread; ThreadClosedError when it is closed."""
        _check_role(author_role)
        body = clean_body(body)
        if self.status == CLOSED:
            raise ThreadClosedError("this conversation is closed")
        if any(m.id == message_id for m in self.messages):
            return  # the same message again (a retried request): already here
        self._post(
            message_id=message_id,
            author_role=author_role,
            author_id=author_id,
            body=body,
            at=at,
            meta=meta,
        )

    def assign(self, staff_id: UUID | None, at: datetime, meta: dict[str, str]) -> None:
        """Give the thread to a member of staff (None: to nobody)."""
        if staff_id != self.assigned_to:
            self._assigned(staff_id=staff_id, at=at, meta=meta)

    def read_by_patient(self, at: datetime, meta: dict[str, str]) -> None:
        """The patient has seen every message so far (nothing recorded if they had)."""
        last = self.last_message
        if last is not None and self.patient_read != last.id:
            self._read_by_patient(message_id=last.id, at=at, meta=meta)

    def read_by_staff(self, staff_id: str, at: datetime, meta: dict[str, str]) -> None:
        """Staff (``staff_id``) have seen every message so far."""
        last = self.last_message
        if last is not None and self.staff_read != last.id:
            self._read_by_staff(message_id=last.id, staff_id=staff_id, at=at, meta=meta)

    def close(self, at: datetime, meta: dict[str, str]) -> None:
        if self.status == OPEN:
            self._closed(at=at, meta=meta)

    def reopen(self, at: datetime, meta: dict[str, str]) -> None:
        if self.status == CLOSED:
            self._reopened(at=at, meta=meta)

    # --- queries ----------------------------------------------------------------------

    @property
    def last_message(self) -> Message | None:
        return self.messages[-1] if self.messages else None

    def unread_by(self, side: str) -> int:
        """How many messages from the other side ``side`` has not read yet."""
        marker = self.patient_read if side == PATIENT else self.staff_read
        unread = 0
        for message in reversed(self.messages):
            if message.id == marker:
                break
            if message.author_role != side:
                unread += 1
        return unread

    # --- events: state changes only (they run again on every replay) -------------------

    @event(MessagePosted)
    def _post(
        self,
        message_id: UUID,
        author_role: str,
        author_id: str,
        body: str,
        at: datetime,
        meta: dict[str, str],
    ) -> None:
        self.messages.append(Message(message_id, author_role, author_id, body, at))
        # Writing a message means having read the thread up to it.
        if author_role == PATIENT:
            self.patient_read = message_id
        else:
            self.staff_read = message_id

    @event(Assigned)
    def _assigned(self, staff_id: UUID | None, at: datetime, meta: dict[str, str]) -> None:
        self.assigned_to = staff_id

    @event(ReadByPatient)
    def _read_by_patient(self, message_id: UUID, at: datetime, meta: dict[str, str]) -> None:
        self.patient_read = message_id

    @event(ReadByStaff)
    def _read_by_staff(
        self, message_id: UUID, staff_id: str, at: datetime, meta: dict[str, str]
    ) -> None:
        self.staff_read = message_id

    @event(Closed)
    def _closed(self, at: datetime, meta: dict[str, str]) -> None:
        self.status = CLOSED

    @event(Reopened)
    def _reopened(self, at: datetime, meta: dict[str, str]) -> None:
        self.status = OPEN


def _check_role(author_role: str) -> None:
    if author_role not in AUTHOR_ROLES:
        raise InvalidValueError("a message's author is the patient or staff")
