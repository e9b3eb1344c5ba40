"""Orders read model: each imaging order with its latest result reference, and the
results no order claimed, waiting for someone to review them (without the patient's
MRN: it stays in the encrypted events; no table keeps it in clear)."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Tracking
from eventsourcing.projection import Projection
from psycopg_pool import ConnectionPool

from domain.ris.order import WAITING, ImagingOrder
from domain.ris.unmatched_result import UnmatchedResult
from projections.changes import Change, Update, Upsert
from projections.view import ReadModelView

ORDERS = "rm_orders"
UNMATCHED = "rm_unmatched_results"


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
        values = {"status": "scheduled", "appointment_id": event.appointment_id, **stamp}
        return [Update(ORDERS, key, values)]
    if isinstance(event, ImagingOrder.PatientMerged):
        return [Update(ORDERS, key, {"patient_id": event.patient_id, **stamp})]
    if isinstance(event, ImagingOrder.ResultReferenced):
        values = {
            "result_status": event.result_status,
            "observed_at": event.observed_at,
            "viewer_link": event.viewer_link,
            **stamp,
        }
        return [Update(ORDERS, key, values)]
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


class OrdersProjection(Projection[ReadModelView]):
    name = "orders"
    tables = (ORDERS, UNMATCHED)

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


class PostgresOrderReader:
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
