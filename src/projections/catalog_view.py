"""Catalog read model: locations, resources and appointment types as the portal lists them."""

from collections.abc import Collection
from typing import Any
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Tracking
from eventsourcing.projection import Projection
from psycopg_pool import ConnectionPool

from application.ports import CatalogReader, ResourceEntry
from domain.appointment_type import AppointmentType
from domain.location import Location
from domain.resource import Resource
from projections.changes import Change, Upsert
from projections.view import ReadModelView

TABLES = ("rm_locations", "rm_resources", "rm_appointment_types")


def catalog_changes(event: DomainEventProtocol[Any]) -> list[Change]:
    """Pure: the row changes one catalog event causes."""
    spec: dict[str, Any] | None = getattr(event, "spec", None)
    if spec is None:
        return []
    key = {"id": event.originator_id}
    if isinstance(event, Location.Defined | Location.Revised):
        return [
            Upsert("rm_locations", key, {"code": spec["code"], "name": spec["name"], "spec": spec})
        ]
    if isinstance(event, Resource.Defined | Resource.Revised):
        values = {
            "code": spec["code"],
            "location_id": UUID(spec["location_id"]),
            "modality": spec["modality"],
            "spec": spec,
        }
        return [Upsert("rm_resources", key, values)]
    if isinstance(event, AppointmentType.Defined | AppointmentType.Revised):
        values = {
            "code": spec["code"],
            "name": spec["name"],
            "modality": spec["modality"],
            "spec": spec,
        }
        return [Upsert("rm_appointment_types", key, values)]
    return []


class CatalogProjection(Projection[ReadModelView]):
    name = "catalog_view"
    tables = TABLES

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        self.view.apply(catalog_changes(domain_event), tracking)


class PostgresCatalogReader(CatalogReader):
    def __init__(self, pool: ConnectionPool[Any]) -> None:
        self._pool = pool

    def locations(self) -> list[tuple[UUID, dict[str, Any]]]:
        with self._pool.connection() as conn:
            rows = conn.execute("SELECT id, spec FROM rm_locations ORDER BY name").fetchall()
        return [(row[0], row[1]) for row in rows]

    def appointment_types(self) -> list[tuple[UUID, dict[str, Any]]]:
        with self._pool.connection() as conn:
            rows = conn.execute(
                "SELECT id, spec FROM rm_appointment_types ORDER BY name"
            ).fetchall()
        return [(row[0], row[1]) for row in rows]

    def resources(self, modality: str, location_id: UUID | None) -> list[ResourceEntry]:
        with self._pool.connection() as conn:
            rows = conn.execute(
                "SELECT r.id, r.spec, r.location_id, l.spec FROM rm_resources r"
                " JOIN rm_locations l ON l.id = r.location_id"
                " WHERE r.modality = %s AND (%s::uuid IS NULL OR r.location_id = %s::uuid)"
                " ORDER BY r.code",
                (modality, location_id, location_id),
            ).fetchall()
        return [ResourceEntry(row[0], row[1], row[2], row[3]) for row in rows]

    def specs(
        self, appointment_type_ids: Collection[UUID], location_ids: Collection[UUID]
    ) -> tuple[dict[UUID, dict[str, Any]], dict[UUID, dict[str, Any]]]:
        with self._pool.connection() as conn:
            rows = conn.execute(
                "SELECT false, id, spec FROM rm_appointment_types WHERE id = ANY(%s)"
                " UNION ALL SELECT true, id, spec FROM rm_locations WHERE id = ANY(%s)",
                (list(appointment_type_ids), list(location_ids)),
            ).fetchall()
        exams = {row[1]: row[2] for row in rows if not row[0]}
        locations = {row[1]: row[2] for row in rows if row[0]}
        return exams, locations
