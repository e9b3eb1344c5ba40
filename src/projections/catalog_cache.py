"""The catalog read model held in memory, keyed by how far its projection has got.

A page asks the catalog several things (the exams, the places, the machines for an exam)
and the slot search asks again; each was a query that returned every spec as JSON. The
catalog changes seldom, so the reader keeps the whole read model in memory and, on each
read, asks PostgreSQL only for the projection's tracking position (one indexed row). When
the position has moved (a staff change, an event parked, a rebuild), the tables are read
again; the answer is never older than reading the tables directly at that moment, in this
process or in any other, so a change shows on the next page. Within a request's
``one_catalog_read()`` (``application.catalog_scope``) only the first read asks for the
position, and every read answers from the same snapshot: one page shows one catalog.

The specs handed out are shared between readers: read them, never change them."""

from collections.abc import Collection
from dataclasses import dataclass
from threading import Lock
from typing import Any
from uuid import UUID

from psycopg import sql
from psycopg_pool import ConnectionPool

from application.catalog import Catalog
from application.catalog_scope import pinned_snapshot
from application.ports import CatalogReader, ResourceEntry
from projections.catalog_view import CatalogProjection, PostgresCatalogReader

Spec = dict[str, Any]


@dataclass(frozen=True)
class _Snapshot:
    """The read model as it stood at ``position`` (None: nothing projected yet)."""

    position: int | None
    locations: list[tuple[UUID, Spec]]
    appointment_types: list[tuple[UUID, Spec]]
    resources: list[ResourceEntry]  # by code, with their location's spec
    modalities: dict[UUID, str]  # resource id -> modality

    def resources_of(self, modality: str, location_id: UUID | None) -> list[ResourceEntry]:
        return [
            entry
            for entry in self.resources
            if self.modalities[entry.id] == modality
            and (location_id is None or entry.location_id == location_id)
        ]


class CachedCatalogReader(CatalogReader):
    """A ``CatalogReader`` that reads the tables only when the projection has moved on."""

    def __init__(self, pool: ConnectionPool[Any]) -> None:
        self._pool = pool
        self._tables = PostgresCatalogReader(pool)
        self._snapshot: _Snapshot | None = None
        self._loading = Lock()
        self._position_query = sql.SQL(
            "SELECT notification_id FROM {} WHERE application_name = %s"
        ).format(sql.Identifier(f"{CatalogProjection.name}_tracking"))

    def locations(self) -> list[tuple[UUID, Spec]]:
        return list(self._current().locations)

    def appointment_types(self) -> list[tuple[UUID, Spec]]:
        return list(self._current().appointment_types)

    def resources(self, modality: str, location_id: UUID | None) -> list[ResourceEntry]:
        return self._current().resources_of(modality, location_id)

    def specs(
        self, appointment_type_ids: Collection[UUID], location_ids: Collection[UUID]
    ) -> tuple[dict[UUID, Spec], dict[UUID, Spec]]:
        snapshot = self._current()
        wanted_types, wanted_places = set(appointment_type_ids), set(location_ids)
        exams = {i: spec for i, spec in snapshot.appointment_types if i in wanted_types}
        places = {i: spec for i, spec in snapshot.locations if i in wanted_places}
        return exams, places

    def _position(self) -> int | None:
        with self._pool.connection() as conn:
            row = conn.execute(self._position_query, (Catalog.name,)).fetchone()
        return None if row is None else int(row[0])

    def _current(self) -> _Snapshot:
        pinned = pinned_snapshot()
        if pinned:
            return pinned[0]  # type: ignore[no-any-return]
        snapshot = self._fresh()
        if pinned is not None:
            pinned.append(snapshot)
        return snapshot

    def _fresh(self) -> _Snapshot:
        position = self._position()
        snapshot = self._snapshot
        if snapshot is not None and snapshot.position == position:
            return snapshot
        with self._loading:
            snapshot = self._snapshot
            if snapshot is None or snapshot.position != position:
                # Read after the position: the tables are at least as new as the key they
                # are kept under (a change in between only makes the next read load again).
                snapshot = self._load(position)
                self._snapshot = snapshot
        return snapshot

    def _load(self, position: int | None) -> _Snapshot:
        with self._pool.connection() as conn:
            rows = conn.execute(
                "SELECT r.id, r.spec, r.location_id, l.spec, r.modality FROM rm_resources r"
                " JOIN rm_locations l ON l.id = r.location_id ORDER BY r.code"
            ).fetchall()
        return _Snapshot(
            position=position,
            locations=self._tables.locations(),
            appointment_types=self._tables.appointment_types(),
            resources=[ResourceEntry(row[0], row[1], row[2], row[3]) for row in rows],
            modalities={row[0]: str(row[4]) for row in rows},
        )
