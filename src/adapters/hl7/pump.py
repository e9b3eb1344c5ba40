"""The pump: hands due deliveries to the task queue (``adapters.task_queue``).

It hands out only the earliest pending delivery of each (recipient, patient), so a
later message never overtakes an earlier one; each hand-out is keyed by the delivery's
version and leased, so a task lost with a killed worker is handed out again. One pump
serves one queue: HL7 (``channels=("hl7",)``) or the patient channels (e-mail, SMS, push).
With ``room`` (a ``LocalHandoff``'s), it leases no more than the sending threads take now.
"""

from collections.abc import Callable
from datetime import timedelta
from typing import Any
from uuid import UUID

from psycopg_pool import ConnectionPool

from application.ports import Clock
from application.ris.delivery_views import DeliveryReader

MOST = 500  # hand-outs per round, at most


class Pump:
    """Hands due deliveries to the task queue, in order per (recipient, patient)."""

    def __init__(
        self,
        reader: DeliveryReader,
        pool: ConnectionPool[Any],
        dispatch: Callable[[list[tuple[UUID, int]]], None],
        clock: Clock,
        *,
        lease: timedelta = timedelta(seconds=30),
        channels: tuple[str, ...] = ("hl7",),
        room: Callable[[], int] | None = None,
    ) -> None:
        self.reader = reader
        self.channels = channels
        self.pool = pool
        self.dispatch = dispatch
        self.clock = clock
        self.lease = lease
        self.room = room
        self.found = 0  # due heads the last round saw (leased by it or by another pump)

    def run_once(self) -> int:
        """Hand out every due head whose current version is not leased; how many."""
        most = MOST if self.room is None else min(MOST, self.room())
        self.found = 0
        if most <= 0:
            return 0
        now = self.clock.now()
        since = now - self.lease
        rows = [
            row
            for channel in self.channels
            for row in self.reader.due(now, channel=channel, limit=most, unleased_since=since)
        ]
        self.found = len(rows)
        if not rows:
            return 0
        with self.pool.connection() as conn:
            leased = conn.execute(
                "INSERT INTO delivery_dispatch (delivery_id, attempts, dispatched_at)"
                " SELECT id, version, %s FROM unnest(%s::uuid[], %s::int[]) AS t(id, version)"
                " ON CONFLICT (delivery_id, attempts) DO UPDATE"
                " SET dispatched_at = EXCLUDED.dispatched_at"
                " WHERE delivery_dispatch.dispatched_at < %s"
                " RETURNING delivery_id, attempts",
                (now, [r.id for r in rows], [r.version for r in rows], now - self.lease),
            ).fetchall()
        if leased:
            self.dispatch([(delivery_id, version) for delivery_id, version in leased])
        return len(leased)
