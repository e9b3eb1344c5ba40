"""The PHI access log: one append-only row per read of patient data."""

from typing import Any

from psycopg_pool import ConnectionPool

from application.ports import AccessLog, AccessRecord


class PostgresAccessLog(AccessLog):
    def __init__(self, pool: ConnectionPool[Any]) -> None:
        self._pool = pool

    def record(self, entry: AccessRecord) -> None:
        with self._pool.connection() as conn:
            conn.execute(
                "INSERT INTO phi_access_log (at, actor_id, role, patient_id, resource, resource_id,"
                " action, outcome, request_id, client_address, reason)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    entry.at,
                    entry.actor_id,
                    entry.role,
                    entry.patient_id,
                    entry.resource,
                    entry.resource_id,
                    entry.action,
                    entry.outcome,
                    entry.request_id,
                    entry.client_address,
                    entry.reason,
                ),
            )
