"""Which appointments and orders one patient record holds, from their read models: what
a merge of that record into another moves over (application.patient_merges)."""

from typing import Any
from uuid import UUID

from psycopg_pool import ConnectionPool

from application.ports import PatientRecords


class PostgresPatientRecords(PatientRecords):
    def __init__(self, pool: ConnectionPool[Any]) -> None:
        self._pool = pool

    def appointment_ids(self, patient_id: UUID) -> list[UUID]:
        return self._ids("SELECT id FROM rm_appointments WHERE patient_id = %s", patient_id)

    def order_ids(self, patient_id: UUID) -> list[UUID]:
        return self._ids("SELECT id FROM rm_orders WHERE patient_id = %s", patient_id)

    def _ids(self, query: str, patient_id: UUID) -> list[UUID]:
        with self._pool.connection() as conn:
            rows = conn.execute(query + " ORDER BY id", (patient_id,)).fetchall()
        return [row[0] for row in rows]
