"""Secure threads read model: each thread's patient, status, assignment, last message
time and whether each side has unread messages, for the patients' and staff's lists.
The subject and the messages stay in the (encrypted) events: no table holds them."""

from typing import Any
from uuid import UUID

from eventsourcing.persistence import Tracking
from eventsourcing.projection import Projection
from psycopg.sql import SQL
from psycopg_pool import ConnectionPool

from application.messaging_views import StaffFilter, ThreadReader, ThreadRow
from domain.secure_thread import CLOSED, OPEN, PATIENT, SecureThread
from projections.changes import Change, Update, Upsert
from projections.orders_view import FAMILY
from projections.view import ReadModelView

TABLE = "rm_secure_threads"


def thread_changes(event: Any) -> list[Change]:
    """Pure: the row changes one secure-thread event causes."""
    key = {"id": event.originator_id}
    stamp = {"version": event.originator_version, "updated_at": event.timestamp}
    match event:
        case SecureThread.Started():
            values = {
                "patient_id": event.patient_id,
                "status": OPEN,
                "assigned_to": None,
                "started_at": event.at,
                "last_message_at": event.at,
                "last_author_role": event.started_by_role,
                "unread_by_patient": False,
                "unread_by_staff": False,
                **stamp,
            }
            return [Upsert(TABLE, key, values)]
        case SecureThread.MessagePosted():
            by_patient = event.author_role == PATIENT
            values = {
                "last_message_at": event.at,
                "last_author_role": event.author_role,
                # The author has read the thread up to their own message.
                "unread_by_patient": not by_patient,
                "unread_by_staff": by_patient,
                **stamp,
            }
            return [Update(TABLE, key, values)]
        case SecureThread.Assigned():
            return [Update(TABLE, key, {"assigned_to": event.staff_id, **stamp})]
        case SecureThread.ReadByPatient():
            return [Update(TABLE, key, {"unread_by_patient": False, **stamp})]
        case SecureThread.ReadByStaff():
            return [Update(TABLE, key, {"unread_by_staff": False, **stamp})]
        case SecureThread.Closed():
            return [Update(TABLE, key, {"status": CLOSED, **stamp})]
        case SecureThread.Reopened():
            return [Update(TABLE, key, {"status": OPEN, **stamp})]
    return []


class SecureThreadsProjection(Projection[ReadModelView]):
    name = "secure_threads"
    tables = (TABLE,)

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        self.view.apply(thread_changes(domain_event), tracking)


COLUMNS = (
    "id, patient_id, status, assigned_to, started_at, last_message_at, last_author_role,"
    " unread_by_patient, unread_by_staff"
)


THREADS_OF = FAMILY + SQL(
    f"SELECT {COLUMNS} FROM {TABLE} WHERE patient_id IN (SELECT id FROM family)"  # noqa: S608
    " ORDER BY last_message_at DESC, id LIMIT %(limit)s"
)


class PostgresThreadReader(ThreadReader):
    def __init__(self, pool: ConnectionPool[Any]) -> None:
        self._pool = pool

    def for_patient(self, patient_id: UUID, limit: int = 100) -> list[ThreadRow]:
        """The threads of the patient's record and of every record merged with it (an
        account linked to the centre's record keeps its threads)."""
        with self._pool.connection() as conn:
            rows = conn.execute(THREADS_OF, {"patient": patient_id, "limit": limit}).fetchall()
        return [ThreadRow(*row) for row in rows]

    def for_staff(self, query: StaffFilter) -> list[ThreadRow]:
        with self._pool.connection() as conn:
            rows = conn.execute(
                f"SELECT {COLUMNS} FROM {TABLE}"  # noqa: S608
                " WHERE (%(status)s::text IS NULL OR status = %(status)s)"
                " AND (NOT %(unread)s OR unread_by_staff)"
                " AND (%(assignment)s <> 'unassigned' OR assigned_to IS NULL)"
                " AND (%(assignment)s <> 'mine' OR assigned_to = %(staff)s)"
                " ORDER BY last_message_at DESC, id LIMIT %(limit)s",
                {
                    "status": query.status,
                    "unread": query.unread,
                    "assignment": query.assignment,
                    "staff": query.staff_id,
                    "limit": query.limit,
                },
            ).fetchall()
        return [ThreadRow(*row) for row in rows]
