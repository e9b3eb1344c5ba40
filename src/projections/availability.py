"""Availability read model: the time each resource has reserved, for fast slot search."""

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Tracking
from eventsourcing.projection import Projection
from psycopg import sql
from psycopg_pool import ConnectionPool

from application.catalog import Catalog
from application.ports import BusyReader, SearchVersions
from application.scheduling import SchedulingLog
from domain.resource_day import ResourceDay
from domain.schedule import Interval
from projections.catalog_view import CatalogProjection
from projections.changes import Change, Delete, Upsert
from projections.view import ReadModelView

TABLE = "rm_busy"


def busy_changes(event: DomainEventProtocol[Any]) -> list[Change]:
    """Pure: the row changes one resource-calendar event causes."""
    if isinstance(event, ResourceDay.Reserved):
        key = {"calendar_id": event.originator_id, "holder": event.holder}
        values = {"resource_id": event.resource_id, "starts_at": event.start, "ends_at": event.end}
        return [Upsert(TABLE, key, values)]
    if isinstance(event, ResourceDay.Released):
        return [Delete(TABLE, {"calendar_id": event.originator_id, "holder": event.holder})]
    return []


class AvailabilityProjection(Projection[ReadModelView]):
    name = "availability"
    tables = (TABLE,)

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        self.view.apply(busy_changes(domain_event), tracking)


class PostgresBusyReader(BusyReader):
    def __init__(self, pool: ConnectionPool[Any]) -> None:
        self._pool = pool

    def busy(
        self, resource_ids: Sequence[UUID], start: datetime, end: datetime
    ) -> dict[UUID, list[Interval]]:
        if not resource_ids:
            return {}
        with self._pool.connection() as conn:
            rows = conn.execute(
                f"SELECT resource_id, starts_at, ends_at FROM {TABLE}"  # noqa: S608
                " WHERE resource_id = ANY(%s) AND starts_at < %s AND ends_at > %s",
                (list(resource_ids), end, start),
            ).fetchall()
        found: dict[UUID, list[Interval]] = {}
        for resource_id, starts_at, ends_at in rows:
            found.setdefault(resource_id, []).append(
                Interval(starts_at.astimezone(UTC), ends_at.astimezone(UTC))
            )
        return found


class PostgresSearchVersions(SearchVersions):
    """The positions of the availability and catalog read models, in one query."""

    def __init__(self, pool: ConnectionPool[Any]) -> None:
        self._pool = pool
        self._query = sql.SQL(
            "SELECT (SELECT max(notification_id) FROM {availability} WHERE application_name = %s),"
            " (SELECT max(notification_id) FROM {catalog} WHERE application_name = %s)"
        ).format(
            availability=sql.Identifier(f"{AvailabilityProjection.name}_tracking"),
            catalog=sql.Identifier(f"{CatalogProjection.name}_tracking"),
        )

    def current(self) -> tuple[int, ...]:
        with self._pool.connection() as conn:
            row = conn.execute(self._query, (SchedulingLog.name, Catalog.name)).fetchone()
        return (0, 0) if row is None else (int(row[0] or 0), int(row[1] or 0))
