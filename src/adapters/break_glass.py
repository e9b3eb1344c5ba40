"""Break-glass grants and the alerts they raise (migrations/0007_break_glass.sql)."""

from datetime import datetime
from typing import Any
from uuid import UUID

import structlog
from psycopg_pool import ConnectionPool

from application.ports import Alert, AlertReader, BreakGlassGrant, BreakGlassStore

log = structlog.get_logger(__name__)


class PostgresBreakGlassStore(BreakGlassStore):
    def __init__(self, pool: ConnectionPool[Any]) -> None:
        self._pool = pool

    def grant(self, grant: BreakGlassGrant) -> None:
        with self._pool.connection() as conn, conn.transaction():
            conn.execute(
                "INSERT INTO break_glass_grants (id, account_id, patient_id, reason, granted_at,"
                " expires_at) VALUES (%s, %s, %s, %s, %s, %s)",
                (
                    grant.id,
                    grant.account_id,
                    grant.patient_id,
                    grant.reason,
                    grant.granted_at,
                    grant.expires_at,
                ),
            )
            conn.execute(
                "INSERT INTO alerts (at, kind, subject_id, detail) VALUES (%s, %s, %s, %s)",
                (grant.granted_at, "break_glass", str(grant.id), "emergency access granted"),
            )
        # Ids only: the reason may describe the patient.
        log.warning("break_glass_granted", grant_id=str(grant.id), actor_id=str(grant.account_id))

    def active(self, account_id: UUID, patient_id: UUID, now: datetime) -> BreakGlassGrant | None:
        with self._pool.connection() as conn:
            row = conn.execute(
                "SELECT id, account_id, patient_id, reason, granted_at, expires_at"
                " FROM break_glass_grants WHERE account_id = %s AND patient_id = %s"
                " AND granted_at <= %s AND expires_at > %s ORDER BY expires_at DESC LIMIT 1",
                (account_id, patient_id, now, now),
            ).fetchone()
        return BreakGlassGrant(*row) if row else None


class PostgresAlertReader(AlertReader):
    """The ``alerts`` table, for compliance (GET /v1/audit/alerts)."""

    def __init__(self, pool: ConnectionPool[Any]) -> None:
        self._pool = pool

    def search(
        self,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        before_id: int | None = None,
        limit: int = 100,
    ) -> list[Alert]:
        with self._pool.connection() as conn:
            rows = conn.execute(
                "SELECT id, at, kind, subject_id, detail, acknowledged_at FROM alerts"
                " WHERE (%(start)s::timestamptz IS NULL OR at >= %(start)s)"
                " AND (%(end)s::timestamptz IS NULL OR at < %(end)s)"
                " AND (%(before)s::bigint IS NULL OR id < %(before)s)"
                " ORDER BY id DESC LIMIT %(limit)s",
                {"start": start, "end": end, "before": before_id, "limit": limit},
            ).fetchall()
        return [Alert(*row) for row in rows]
