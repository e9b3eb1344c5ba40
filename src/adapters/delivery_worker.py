"""Outbound delivery workers: the pump that hands due deliveries to the task queue
(``adapters.task_queue``), and the sender behind the actor that sends one delivery.

At least once, idempotent where it counts:
- the pump hands out only the earliest pending delivery of each (recipient, patient),
  so a later message never overtakes an earlier one; each hand-out is keyed by the
  delivery's version and leased, so a task lost with a killed worker is handed out again;
- the actor loads the delivery, checks the version it was handed is still current,
  renders it (MSH-10 = the delivery's control id, the same for every resend), sends it
  and records the attempt; a second sender of the same attempt loses on the version;
- the attempts of a process's sending threads are saved together (``AttemptWriter``):
  the deliveries event store takes one table lock per write, so one write for every
  attempt that finished meanwhile instead of one each. A thread's task ends only once
  its attempt is saved.
"""

import queue
import random
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from uuid import UUID

import structlog
from psycopg_pool import ConnectionPool

from adapters.hl7.render import RenderError, render_fast
from adapters.mllp_client import MllpClient, SendResult, tls_context
from application.deliveries import Deliveries, DeliveryReader, Destination
from application.errors import NotFoundError
from application.ports import Clock
from domain.context import Actor, system_actor
from domain.message_delivery import REJECTED_PERMANENT, MessageDelivery, RetryPolicy

log = structlog.get_logger(__name__)


class AttemptWriter:
    """Saves the attempts that the sending threads of one process record, several in
    one write. ``save`` blocks until the attempt is in the event store (True), or lost
    to another sender of the same attempt, or not saved within ``wait`` seconds (False:
    the delivery is handed out again once its lease ends, and a resend keeps its MSH-10).
    ``wait`` plus a send's timeouts stays inside the pump's 30-second lease, so a second
    sender never starts on a version whose first send is still being saved."""

    def __init__(self, deliveries: Deliveries, *, most: int = 64, wait: float = 10.0) -> None:
        self.deliveries = deliveries
        self.most = most
        self.wait = wait
        self._queue: queue.Queue[tuple[MessageDelivery, list[bool], threading.Event]] = (
            queue.Queue()
        )
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def save(self, delivery: MessageDelivery) -> bool:
        self._start()
        outcome: list[bool] = []
        done = threading.Event()
        self._queue.put((delivery, outcome, done))
        done.wait(self.wait)
        return bool(outcome and outcome[0])

    def _start(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="attempt-writer", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < self.most:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                lost = set(self.deliveries.save_attempts([item[0] for item in batch]))
            except Exception:
                log.exception("delivery_attempts_not_saved", count=len(batch))
                lost = {item[0].id for item in batch}  # handed out again after the lease
            for delivery, outcome, done in batch:
                outcome.append(delivery.id not in lost)
                done.set()


class Sender:
    """Sends one delivery and records the attempt (the body of the actor)."""

    def __init__(
        self,
        deliveries: Deliveries,
        destinations: list[Destination],
        clock: Clock,
        policy: RetryPolicy,
        *,
        actor: Actor | None = None,
        writer: AttemptWriter | None = None,
        tls_cafile: str | None = None,
    ) -> None:
        self.deliveries = deliveries
        self.destinations = {d.name: d for d in destinations}
        self.clock = clock
        self.policy = policy
        self.actor = actor or system_actor(source="delivery-worker")
        self.writer = writer or AttemptWriter(deliveries)
        # One TLS context per destination, made once (it loads the CA bundle).
        self.clients = {
            d.name: MllpClient(
                d.host, d.port, timeout=d.timeout, tls=tls_context(tls_cafile) if d.tls else None
            )
            for d in destinations
        }

    def send(self, delivery_id: UUID, version: int) -> str:
        """Send the delivery if ``version`` is still its current one; what happened."""
        try:
            delivery = self.deliveries.delivery(delivery_id)
        except NotFoundError:
            return "missing"
        now = self.clock.now()
        if delivery.version != version or not delivery.is_due(now):
            return "stale"
        result = self._attempt(delivery)
        delivery.record_attempt(
            outcome=result.outcome,
            code=result.code,
            detail=result.detail,
            at=self.clock.now(),
            policy=self.policy,
            jitter=random.uniform(0.5, 1.0),  # noqa: S311 - jitter, not security
            meta=self.actor.meta(),
        )
        if not self.writer.save(delivery):
            return "lost"
        log.info(
            "delivery_attempted",
            delivery_id=str(delivery_id),
            outcome=result.outcome,
            code=result.code,
            status=delivery.status,
        )
        return result.outcome

    def _attempt(self, delivery: MessageDelivery) -> SendResult:
        """Render and send; a delivery that cannot be (its recipient is no longer
        configured, its payload does not render) is refused for good, so it becomes a
        dead letter an operator sees instead of holding its patient's queue for ever."""
        destination = self.destinations.get(delivery.recipient)
        if destination is None:
            detail = f"no destination {delivery.recipient!r} is configured"
            return SendResult(REJECTED_PERMANENT, "RECIPIENT", detail)
        try:
            message = render_fast(
                delivery.message_type,
                delivery.payload,
                delivery.control_id,
                recipient=destination.name,
                version=destination.version,
            )
        except (RenderError, KeyError) as error:
            return SendResult(REJECTED_PERMANENT, "RENDER", f"cannot render: {error!r}")
        return self.clients[destination.name].send(message, delivery.control_id)


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
    ) -> None:
        self.reader = reader
        self.pool = pool
        self.dispatch = dispatch
        self.clock = clock
        self.lease = lease

    def run_once(self) -> int:
        """Hand out every due head whose current version is not leased; how many."""
        now = self.clock.now()
        rows = self.reader.due(now, unleased_since=now - self.lease)
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
