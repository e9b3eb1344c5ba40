"""Orders read model: each imaging order with its latest result reference, each result
(one row per order and accession: later reports for it update its status), and the
results no order claimed, waiting for someone to review them (without the patient's
MRN: it stays in the encrypted events; no table keeps it in clear)."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Tracking
from eventsourcing.projection import Projection
from psycopg.sql import SQL
from psycopg_pool import ConnectionPool

from application.ris.patient_records import OrderView, RecordsReader, ResultView
from domain.identifiers import derived_id
from domain.ris.order import COMPLETED, SCHEDULED, WAITING, ImagingOrder
from domain.ris.unmatched_result import UnmatchedResult
from projections.changes import Change, Lookup, Update, Upsert
from projections.view import ReadModelView

ORDERS = "rm_orders"
RESULTS = "rm_results"
UNMATCHED = "rm_unmatched_results"


def result_id(order_id: UUID, accession_number: str) -> UUID:
    """A result's identity: its order and accession (a corrected report keeps it)."""
    return derived_id("result", str(order_id), accession_number)


def order_changes(event: Any) -> list[Change]:
    """Pure: the row changes one order or unmatched-result event causes."""
    key = {"id": event.originator_id}
    stamp = {"version": event.originator_version, "updated_at": event.timestamp}
    if isinstance(event, ImagingOrder.Placed):
        values = {
            "patient_id": event.patient_id,
            "status": WAITING,
            "placer_number": event.placer_number,
            "filler_number": event.filler_number,
            "accession_number": event.accession_number,
            "procedure_code": event.procedure_code,
            "procedure_text": event.procedure_text,
            **stamp,
        }
        return [Upsert(ORDERS, key, values)]
    if isinstance(event, ImagingOrder.Changed):
        values = {
            "accession_number": event.accession_number,
            "procedure_code": event.procedure_code,
            "procedure_text": event.procedure_text,
            **stamp,
        }
        return [Update(ORDERS, key, values)]
    if isinstance(event, ImagingOrder.Cancelled):
        return [Update(ORDERS, key, {"status": "cancelled", **stamp})]
    if isinstance(event, ImagingOrder.AppointmentLinked):
        values = {"status": SCHEDULED, "appointment_id": event.appointment_id, **stamp}
        return [Update(ORDERS, key, values)]
    if isinstance(event, ImagingOrder.AppointmentReleased):
        return [Update(ORDERS, key, {"status": WAITING, "appointment_id": None, **stamp})]
    if isinstance(event, ImagingOrder.Completed):
        return [Update(ORDERS, key, {"status": COMPLETED, **stamp})]
    if isinstance(event, ImagingOrder.PatientMerged):
        return [Update(ORDERS, key, {"patient_id": event.patient_id, **stamp})]
    if isinstance(event, ImagingOrder.ResultReferenced):
        return result_changes(event, stamp)
    if isinstance(event, UnmatchedResult.Kept):
        values = {
            "message_id": event.message_id,
            "accession_number": event.accession_number,
            "placer_number": event.placer_number,
            "filler_number": event.filler_number,
            "procedure_code": event.procedure_code,
            "result_status": event.result_status,
            "observed_at": event.observed_at,
            "viewer_link": event.viewer_link,
            "kept_at": event.timestamp,
        }
        return [Upsert(UNMATCHED, key, values)]
    if isinstance(event, UnmatchedResult.Resolved):
        return [Update(UNMATCHED, key, {"resolved": True})]
    return []


def result_changes(event: Any, stamp: dict[str, Any]) -> list[Change]:
    """The order's latest result, and the row of the result it refers to (its patient
    read from the order's row: results never move between patients)."""
    order_id = event.originator_id
    latest = {
        "result_status": event.result_status,
        "observed_at": event.observed_at,
        "viewer_link": event.viewer_link,
        **stamp,
    }
    result = {
        "order_id": order_id,
        "patient_id": Lookup(ORDERS, "patient_id", order_id),
        "accession_number": event.accession_number,
        "procedure_code": event.procedure_code,
        "procedure_text": event.procedure_text,
        "status": event.result_status,
        "observed_at": event.observed_at,
        "updated_at": event.timestamp,
    }
    return [
        Update(ORDERS, {"id": order_id}, latest),
        Upsert(RESULTS, {"id": result_id(order_id, event.accession_number)}, result),
    ]


class OrdersProjection(Projection[ReadModelView]):
    name = "orders"
    tables = (ORDERS, RESULTS, UNMATCHED)

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        self.view.apply(order_changes(domain_event), tracking)


@dataclass(frozen=True)
class OrderRow:
    id: UUID
    patient_id: UUID
    status: str
    accession_number: str
    procedure_code: str
    procedure_text: str
    result_status: str | None
    observed_at: datetime | None
    viewer_link: str


@dataclass(frozen=True)
class UnmatchedRow:
    id: UUID
    message_id: str
    accession_number: str
    filler_number: str
    result_status: str
    kept_at: datetime


# The patient's record and every record merged with it (ADT^A40), either way round: the
# records of one person (rm_patient_merges, kept by the patient_merges read model).
FAMILY = SQL("""
WITH RECURSIVE family(id) AS (
    SELECT %(patient)s::uuid
    UNION
    SELECT CASE WHEN m.merged_id = f.id THEN m.survivor_id ELSE m.merged_id END
    FROM rm_patient_merges m JOIN family f ON f.id IN (m.merged_id, m.survivor_id)
)
""")
ORDERS_OF = FAMILY + SQL(
    """
SELECT o.id, o.patient_id, o.status, o.procedure_code, o.procedure_text,
       o.accession_number, o.appointment_id,
       ARRAY(SELECT t.id FROM rm_appointment_types t
             WHERE o.procedure_code <> '' AND t.spec -> 'procedure_codes' ? o.procedure_code
             ORDER BY t.name)
FROM rm_orders o WHERE o.patient_id IN (SELECT id FROM family)
ORDER BY o.updated_at DESC, o.id
"""
)
RESULTS_OF = FAMILY + SQL(
    """
SELECT r.id, r.order_id, r.patient_id, r.accession_number, r.procedure_text, r.status,
       r.observed_at
FROM rm_results r WHERE r.patient_id IN (SELECT id FROM family)
  AND (%(result)s::uuid IS NULL OR r.id = %(result)s::uuid)
ORDER BY r.observed_at DESC NULLS LAST, r.updated_at DESC, r.id
"""
)


class PostgresOrderReader(RecordsReader):
    """Queries of the orders read model."""

    def __init__(self, pool: ConnectionPool[Any]) -> None:
        self._pool = pool

    def for_patient(self, patient_id: UUID) -> list[OrderRow]:
        """The patient's orders, most recently changed first."""
        with self._pool.connection() as conn:
            rows = conn.execute(
                "SELECT id, patient_id, status, accession_number, procedure_code,"
                " procedure_text, result_status, observed_at, viewer_link"
                " FROM rm_orders WHERE patient_id = %s ORDER BY updated_at DESC",
                (patient_id,),
            ).fetchall()
        return [OrderRow(*row) for row in rows]

    def unmatched(self) -> list[UnmatchedRow]:
        """Results waiting for review, oldest first."""
        with self._pool.connection() as conn:
            rows = conn.execute(
                "SELECT id, message_id, accession_number, filler_number, result_status,"
                " kept_at FROM rm_unmatched_results"
                " WHERE NOT resolved ORDER BY kept_at",
            ).fetchall()
        return [UnmatchedRow(*row) for row in rows]

    def orders_of(self, patient_id: UUID) -> list[OrderView]:
        with self._pool.connection() as conn:
            rows = conn.execute(ORDERS_OF, {"patient": patient_id}).fetchall()
        return [
            OrderView(
                id=row[0],
                patient_id=row[1],
                status=row[2],
                procedure_code=row[3],
                procedure_text=row[4],
                accession_number=row[5],
                appointment_id=row[6],
                appointment_type_ids=list(row[7]),
            )
            for row in rows
        ]

    def results_of(self, patient_id: UUID) -> list[ResultView]:
        return self._results(patient_id, None)

    def result_of(self, patient_id: UUID, result_id: UUID) -> ResultView | None:
        found = self._results(patient_id, result_id)
        return found[0] if found else None

    def _results(self, patient_id: UUID, result_id: UUID | None) -> list[ResultView]:
        with self._pool.connection() as conn:
            rows = conn.execute(RESULTS_OF, {"patient": patient_id, "result": result_id}).fetchall()
        return [ResultView(*row) for row in rows]
