"""Notice deliveries by patient, from the deliveries read model (``rm_deliveries``, the
columns migration 0024 added): the patient's notifications and the compliance record."""

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from psycopg_pool import ConnectionPool

from application.communications.records import MAX_ROWS, NoticeRow, NoticeRows
from application.ris.delivery_views import AttemptView
from projections.deliveries_view import TABLE, PostgresDeliveryReader


def _utc(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC) if value is not None else None


class PostgresNoticeRows(NoticeRows):
    def __init__(self, pool: ConnectionPool[Any]) -> None:
        self._pool = pool
        self._deliveries = PostgresDeliveryReader(pool)

    def for_patient(self, patient_id: UUID, limit: int = MAX_ROWS) -> list[NoticeRow]:
        with self._pool.connection() as conn:
            rows = conn.execute(
                "SELECT id, message_type, channel, status, created_at, due_at, held_until,"  # noqa: S608
                f" next_attempt_at, sent_at, attempts, dead_reason FROM {TABLE}"
                " WHERE patient_id = %s ORDER BY created_at DESC, position DESC LIMIT %s",
                (patient_id, limit),
            ).fetchall()
        return [
            NoticeRow(
                id=r[0],
                kind=r[1],
                channel=r[2],
                status=r[3],
                created_at=r[4].astimezone(UTC),
                due_at=_utc(r[5]),
                held_until=_utc(r[6]),
                next_attempt_at=_utc(r[7]),
                sent_at=_utc(r[8]),
                attempts=r[9],
                reason=r[10],
            )
            for r in rows
        ]

    def history(self, delivery_id: UUID) -> list[AttemptView]:
        return self._deliveries.history(delivery_id)
