"""Appointment history read model: each patient's appointments as the portal shows them."""

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Tracking
from eventsourcing.projection import Projection
from psycopg_pool import ConnectionPool

from application.ports import AppointmentReader, AppointmentView
from domain.appointment import (
    ACTIVE,
    BOOKED,
    CANCELLED,
    CHECKED_IN,
    COMPLETED,
    NEEDS_NEW_TIME,
    NO_SHOW,
    Appointment,
)
from projections.changes import Change, Update, Upsert
from projections.view import ReadModelView

TABLE = "rm_appointments"
STATUS_AFTER = {
    Appointment.Cancelled: CANCELLED,
    Appointment.CheckedIn: CHECKED_IN,
    Appointment.Completed: COMPLETED,
    Appointment.MarkedNoShow: NO_SHOW,
    Appointment.Displaced: NEEDS_NEW_TIME,
}
COLUMNS = (
    "id, patient_id, status, appointment_type_id, location_id, resource_id,"
    " starts_at, ends_at, timezone, reason, version, updated_at, notes"
)


def appointment_changes(event: Any) -> list[Change]:
    """Pure: the row changes one appointment event causes."""
    key = {"id": event.originator_id}
    stamp = {"version": event.originator_version, "updated_at": event.timestamp}
    if isinstance(event, Appointment.Booked):
        return [
            Upsert(
                TABLE,
                key,
                {
                    "patient_id": event.patient_id,
                    "status": BOOKED,
                    "appointment_type_id": event.appointment_type_id,
                    "location_id": event.location_id,
                    "resource_id": event.resource_id,
                    "starts_at": event.start,
                    "ends_at": event.end,
                    "timezone": event.timezone,
                    "reason": "",
                    **stamp,
                },
            )
        ]
    if isinstance(event, Appointment.Rescheduled):
        moved = {
            "status": BOOKED,  # also for one that needed a new time
            "location_id": event.location_id,
            "resource_id": event.resource_id,
            "starts_at": event.start,
            "ends_at": event.end,
            "timezone": event.timezone,
            "reason": event.reason,
        }
        return [Update(TABLE, key, {**moved, **stamp})]
    if isinstance(event, Appointment.Modified):
        return [Update(TABLE, key, {"notes": event.notes, **stamp})]
    if isinstance(event, Appointment.PatientMerged):
        return [Update(TABLE, key, {"patient_id": event.patient_id, **stamp})]
    status = STATUS_AFTER.get(type(event))
    if status is not None:
        reason = getattr(event, "reason", "")
        return [Update(TABLE, key, {"status": status, "reason": reason, **stamp})]
    return []


class AppointmentHistoryProjection(Projection[ReadModelView]):
    name = "appointment_history"
    tables = (TABLE,)

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        self.view.apply(appointment_changes(domain_event), tracking)


def _view(row: tuple[Any, ...]) -> AppointmentView:
    return AppointmentView(
        id=row[0],
        patient_id=row[1],
        status=row[2],
        appointment_type_id=row[3],
        location_id=row[4],
        resource_id=row[5],
        start=row[6].astimezone(UTC),
        end=row[7].astimezone(UTC),
        timezone=row[8],
        reason=row[9],
        version=row[10],
        updated_at=row[11].astimezone(UTC),
        notes=row[12],
    )


class PostgresAppointmentReader(AppointmentReader):
    def __init__(self, pool: ConnectionPool[Any]) -> None:
        self._pool = pool

    def for_patient(self, patient_id: UUID) -> list[AppointmentView]:
        with self._pool.connection() as conn:
            rows = conn.execute(
                f"SELECT {COLUMNS} FROM {TABLE} WHERE patient_id = %s ORDER BY starts_at, id",  # noqa: S608
                (patient_id,),
            ).fetchall()
        return [_view(row) for row in rows]

    def at_location(
        self, location_id: UUID, start: datetime, end: datetime
    ) -> list[AppointmentView]:
        with self._pool.connection() as conn:
            rows = conn.execute(
                f"SELECT {COLUMNS} FROM {TABLE} WHERE location_id = %s"  # noqa: S608
                " AND starts_at >= %s AND starts_at < %s ORDER BY starts_at, id",
                (location_id, start, end),
            ).fetchall()
        return [_view(row) for row in rows]

    def locations_of_patient(self, patient_id: UUID) -> set[UUID]:
        with self._pool.connection() as conn:
            rows = conn.execute(
                f"SELECT DISTINCT location_id FROM {TABLE} WHERE patient_id = %s",  # noqa: S608
                (patient_id,),
            ).fetchall()
        return {row[0] for row in rows}

    def get(self, appointment_id: UUID) -> AppointmentView | None:
        with self._pool.connection() as conn:
            row = conn.execute(
                f"SELECT {COLUMNS} FROM {TABLE} WHERE id = %s",  # noqa: S608
                (appointment_id,),
            ).fetchone()
        return _view(row) if row else None

    def active_on_resource(self, resource_id: UUID, after: datetime) -> list[AppointmentView]:
        with self._pool.connection() as conn:
            rows = conn.execute(
                f"SELECT {COLUMNS} FROM {TABLE} WHERE resource_id = %s"  # noqa: S608
                " AND status = ANY(%s) AND ends_at > %s ORDER BY starts_at, id",
                (resource_id, sorted(ACTIVE), after),
            ).fetchall()
        return [_view(row) for row in rows]
