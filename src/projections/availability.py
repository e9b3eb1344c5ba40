"""Availability read model: the time each resource has reserved, for fast slot search."""

import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple
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
from projections.progress import PROGRESS, Progress
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
    """The positions of the availability and catalog read models, in one query; and the
    last such reading again (``known``, no query) while ``progress`` shows no new tracking
    from either log and the reading is younger than ``max_age`` seconds.

    ``progress`` moves when a read model of this process commits tracking, or when a
    ``TrackingListener`` of this process hears one elsewhere: in a process that does
    neither (an API worker whose client sent no consistency token yet), a reading may lag
    ``max_age`` behind, as if the read models did."""

    def __init__(
        self, pool: ConnectionPool[Any], progress: Progress = PROGRESS, max_age: float = 0.5
    ) -> None:
        self._pool = pool
        self._progress = progress
        self._max_age = max_age
        self._logs = (SchedulingLog.name, Catalog.name)
        self._query = sql.SQL(
            "SELECT (SELECT max(notification_id) FROM {availability} WHERE application_name = %s),"
            " (SELECT max(notification_id) FROM {catalog} WHERE application_name = %s)"
        ).format(
            availability=sql.Identifier(f"{AvailabilityProjection.name}_tracking"),
            catalog=sql.Identifier(f"{CatalogProjection.name}_tracking"),
        )
        self._last: _Reading | None = None
        self._lock = threading.Lock()

    def current(self) -> tuple[int, ...]:
        # The generations before the query: tracking committed after them moves them on,
        # so an unchanged generation means the reading holds everything committed since.
        asked_at = time.monotonic()
        generations = self._generations()
        with self._pool.connection() as conn:
            row = conn.execute(self._query, self._logs).fetchone()
        versions = (0, 0) if row is None else (int(row[0] or 0), int(row[1] or 0))
        with self._lock:
            if self._last is None or self._last.asked_at <= asked_at:
                self._last = _Reading(asked_at, generations, versions)
        return versions

    def known(self) -> tuple[int, ...] | None:
        last = self._last
        if (
            last is None
            or time.monotonic() - last.asked_at >= self._max_age
            or self._generations() != last.generations
        ):
            return None
        return last.versions

    def _generations(self) -> tuple[int, ...]:
        return tuple(self._progress.generation(name) for name in self._logs)


class _Reading(NamedTuple):
    asked_at: float  # time.monotonic()
    generations: tuple[int, ...]
    versions: tuple[int, ...]
