"""Secure messaging: threads between a patient and the centre's staff.

``MessagingLog`` is the event store of the threads (followed by the thread list's read
model and by the notice policy, which tells a patient of a staff reply without its
content). ``Messaging`` is what the API calls: patients start threads, post, list and
read their own; staff list (by assignment, unread, status), read, reply, assign, close
and reopen the threads of patients they may reach, and may write to a patient first.
"""

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from uuid import UUID, uuid4

from application.access import Reach, StaffAccess
from application.base import BaseApplication, retrying
from application.errors import NotFoundError
from application.messaging_views import (
    Posted,
    StaffFilter,
    ThreadReader,
    ThreadRow,
    ThreadSummary,
    ThreadView,
)
from application.permissions import Permission, allows
from application.ports import Clock, Principal
from application.registry import Registry
from domain.context import Actor
from domain.errors import InvalidValueError
from domain.secure_thread import PATIENT, STAFF, SecureThread

NO_THREAD = "no such conversation"


class MessagingLog(BaseApplication):
    """The secure threads' event store."""

    name = "messaging"

    def thread(self, thread_id: UUID) -> SecureThread:
        """One thread; NotFoundError if there is none."""
        thread = self.find(thread_id, SecureThread)
        if thread is None:
            raise NotFoundError(NO_THREAD)
        return thread

    def change(self, thread_id: UUID, command: Callable[[SecureThread], None]) -> Posted:
        """Apply ``command`` to the thread and save, again from its latest version when
        someone else wrote to it meanwhile."""

        def attempt() -> Posted:
            thread = self.thread(thread_id)
            command(thread)
            return Posted(thread.id, thread.patient_id, self.position_of(self.save(thread)))

        return retrying(attempt, pause=0.002)


class Messaging:
    """Patients' and staff's secure messages."""

    def __init__(
        self,
        log: MessagingLog,
        reader: ThreadReader,
        access: StaffAccess,
        registry: Registry,
        clock: Clock,
    ) -> None:
        self.log = log
        self._reader = reader
        self._access = access
        self._registry = registry
        self._clock = clock

    # --- patients ---------------------------------------------------------------------

    def start(self, patient_id: UUID, subject: str, body: str, actor: Actor) -> Posted:
        """A patient's new thread with its first message."""
        return self._start(patient_id, subject, body, PATIENT, actor)

    def post(self, patient_id: UUID, thread_id: UUID, body: str, actor: Actor) -> Posted:
        """A patient's message in one of their threads (NotFoundError for anyone else's;
        ThreadClosedError when it is closed)."""
        self.own(patient_id, thread_id)
        posted = self.log.change(thread_id, self._message(PATIENT, body, actor))
        return replace(posted, patient_id=patient_id)

    def threads_of(self, patient_id: UUID) -> list[ThreadSummary]:
        """The patient's threads, latest message first."""
        return self._summaries(self._reader.for_patient(patient_id), PATIENT)

    def own(self, patient_id: UUID, thread_id: UUID) -> SecureThread:
        """The patient's thread (or one of a record merged into theirs); NotFoundError
        when it is not theirs (or does not exist)."""
        thread = self.log.find(thread_id, SecureThread)
        if thread is None or self._patient_of(thread) != patient_id:
            raise NotFoundError(NO_THREAD)
        return thread

    def read(self, patient_id: UUID, thread_id: UUID, actor: Actor) -> tuple[ThreadView, Posted]:
        """The patient's thread with every message, as they see it before this read;
        their side is then marked read."""
        view = ThreadView.of(self.own(patient_id, thread_id), patient_id)
        now = self._clock.now()
        marked = self.log.change(thread_id, lambda t: t.read_by_patient(now, actor.meta()))
        return view, marked

    # --- staff ------------------------------------------------------------------------

    def staff_threads(self, principal: Principal, query: StaffFilter) -> list[ThreadSummary]:
        """Threads matching ``query`` whose patients ``principal`` may reach."""
        return self._summaries(self._reader.for_staff(query), STAFF, principal)

    def staff_view(self, principal: Principal, thread_id: UUID) -> ThreadView:
        """A thread as staff see it, without marking it read."""
        thread = self.log.find(thread_id, SecureThread)
        patient_id = None if thread is None else self._patient_of(thread)
        reach = None if patient_id is None else self._reach(principal, patient_id)
        if thread is None or patient_id is None or reach is None:
            raise NotFoundError(NO_THREAD)
        return ThreadView.of(thread, patient_id, reach.how, reach.reason)

    def staff_read(
        self, principal: Principal, thread_id: UUID, actor: Actor
    ) -> tuple[ThreadView, Posted]:
        """A thread as staff see it before this read; staff's side is then marked read."""
        view = self.staff_view(principal, thread_id)
        now = self._clock.now()
        staff_id = str(principal.account_id)
        marked = self.log.change(thread_id, lambda t: t.read_by_staff(staff_id, now, actor.meta()))
        return view, marked

    def staff_start(
        self, principal: Principal, patient_id: UUID, subject: str, body: str, actor: Actor
    ) -> Posted:
        """Staff write to a patient first (NotFoundError for a patient they may not
        reach, or none)."""
        patient_id = self._registry.surviving_id(patient_id)
        if self._registry.patient_by_id(patient_id) is None:
            raise NotFoundError("no such patient")
        self._access.reach_patient(principal, patient_id)
        return self._start(patient_id, subject, body, STAFF, actor)

    def reply(self, principal: Principal, thread_id: UUID, body: str, actor: Actor) -> Posted:
        """A message to the patient (ThreadClosedError when the thread is closed)."""
        message = self._message(STAFF, body, actor)
        return self._staff_change(principal, thread_id, message)

    def assign(
        self, principal: Principal, thread_id: UUID, staff_id: UUID | None, actor: Actor
    ) -> Posted:
        """Give the thread to a member of staff who answers secure messages (themselves
        or another), or to nobody (None)."""
        if staff_id is not None:
            self.staff_view(principal, thread_id)  # 404 before anything about the assignee
            self._check_assignee(staff_id)
        now = self._clock.now()
        return self._staff_change(
            principal, thread_id, lambda t: t.assign(staff_id, now, actor.meta())
        )

    def close(self, principal: Principal, thread_id: UUID, actor: Actor) -> Posted:
        now = self._clock.now()
        return self._staff_change(principal, thread_id, lambda t: t.close(now, actor.meta()))

    def reopen(self, principal: Principal, thread_id: UUID, actor: Actor) -> Posted:
        now = self._clock.now()
        return self._staff_change(principal, thread_id, lambda t: t.reopen(now, actor.meta()))

    def _staff_change(
        self, principal: Principal, thread_id: UUID, command: Callable[[SecureThread], None]
    ) -> Posted:
        """``command`` on a thread whose patient ``principal`` may reach (NotFoundError
        otherwise); the write names the patient's surviving record."""
        view = self.staff_view(principal, thread_id)
        return replace(self.log.change(thread_id, command), patient_id=view.patient_id)

    # --- shared -------------------------------------------------------------------------

    def _start(self, patient_id: UUID, subject: str, body: str, role: str, actor: Actor) -> Posted:
        thread = SecureThread.start(
            id=uuid4(),
            patient_id=patient_id,
            subject=subject,
            body=body,
            author_role=role,
            author_id=actor.id,
            message_id=uuid4(),
            at=self._clock.now(),
            meta=actor.meta(),
        )
        return Posted(thread.id, patient_id, self.log.position_of(self.log.save(thread)))

    def _message(self, role: str, body: str, actor: Actor) -> Callable[[SecureThread], None]:
        """The command that posts one message (the same message again on a retry)."""
        message_id = uuid4()
        now: datetime = self._clock.now()

        def post(thread: SecureThread) -> None:
            thread.post(
                message_id=message_id,
                author_role=role,
                author_id=actor.id,
                body=body,
                at=now,
                meta=actor.meta(),
            )

        return post

    def _patient_of(self, thread: SecureThread) -> UUID:
        """The thread's patient as the registry knows them now: the surviving record
        when theirs was merged into another (an account linked to the centre's record)."""
        return self._registry.surviving_id(thread.patient_id)

    def _reach(self, principal: Principal, patient_id: UUID) -> Reach | None:
        try:
            return self._access.reach_patient(principal, patient_id)
        except NotFoundError:
            return None

    def _check_assignee(self, staff_id: UUID) -> None:
        try:
            account = self._registry.account(staff_id)
        except NotFoundError:
            raise InvalidValueError("no member of staff with that id answers messages") from None
        if account.disabled or not allows(account.role, Permission.MESSAGES_STAFF):
            raise InvalidValueError("no member of staff with that id answers messages")

    def _summaries(
        self, rows: list[ThreadRow], side: str, principal: Principal | None = None
    ) -> list[ThreadSummary]:
        """The rows with their subjects (and for staff, only the patients ``principal``
        may reach), each naming the patient's surviving record."""
        found = []
        for row in rows:
            thread = self.log.find(row.id, SecureThread)
            if thread is None:
                continue  # a row without its thread: never written so; left out
            patient_id = self._patient_of(thread)
            if principal is not None and self._reach(principal, patient_id) is None:
                continue
            found.append(
                ThreadSummary(
                    id=row.id,
                    patient_id=patient_id,
                    subject=thread.subject,
                    status=row.status,
                    assigned_to=row.assigned_to,
                    started_at=row.started_at,
                    last_message_at=row.last_message_at,
                    last_author_role=row.last_author_role,
                    unread=row.unread_by_patient if side == PATIENT else row.unread_by_staff,
                )
            )
        return found
