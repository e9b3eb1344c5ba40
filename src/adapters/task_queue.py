"""The task queue between the pump and the sending threads: dramatiq on PostgreSQL
(``dramatiq-postgres``, psycopg 3) or on RabbitMQ, the ``send_delivery`` actor (HL7, queue
``hl7``) and the ``send_notice`` actor (e-mail, SMS, push, queue ``notices``), and the
pumps' enqueuers.

Message ids are deterministic (``task_id``: one per version of one delivery), and the
PostgreSQL broker upserts on the message id: handing out one version twice while its task
waits, or while a killed worker still holds it, leaves one task in the queue (queued
again). Once a task is acknowledged its row is gone, so a later hand-out of the same
version runs it again; the sender then finds the version no longer current ("stale").

The broker's schema (``dramatiq.queue``, ``dramatiq.worker``, ``dramatiq.result``) is
created by the library's own ``init`` (``create_schema``), called by the migration runner
under its lock; ``init`` is idempotent and serialised on an advisory lock, so processes
starting together create it once. Workers heartbeat into ``dramatiq.worker``; one of them
at a time (advisory lock) requeues the tasks of workers whose heartbeat lapsed and purges
rejected tasks after ``purge_maxage``. Retries, backoff and dead letters are the
deliveries' own (``MessageDelivery``), not the broker's: the actor never retries.
"""

import contextlib
import logging
import os
import select
from collections.abc import Callable
from typing import Any
from uuid import UUID, uuid5

import dramatiq
import psycopg
from dramatiq.middleware import (
    AgeLimit,
    Callbacks,
    Pipelines,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)
from dramatiq_postgres import PostgresBroker
from dramatiq_postgres import init as init_schema
from dramatiq_postgres.broker import QUERIES, Notifier
from psycopg_pool import ConnectionPool

QUEUE = "hl7"
ACTOR_NAME = "send_delivery"
NOTICE_QUEUE = "notices"  # e-mail, SMS and push: never behind a slow RIS
NOTICE_ACTOR_NAME = "send_notice"
TASK_NAMESPACE = UUID("0d8f0a4e-3f4a-4d0c-9b8e-5d7c1f6a2b91")
SCHEMA = "dramatiq"
POOL_SIZE = 8  # a consumer's connection per queue, the LISTEN one, acks and enqueues
POLL_SECONDS = 10.0
"""How often an idle consumer looks at its queue without being woken. An enqueue's NOTIFY
(or an ack) wakes it at once, and no task is enqueued with a delay (retries are the
deliveries' own), so the poll only covers a notification lost while the LISTEN connection
reconnects; it also paces the broker's heartbeat (15 s, TTL 60 s) and upkeep."""
STOPPING_POLL_SECONDS = 0.1  # once the worker shuts down: consumers see their stop at once
LISTEN_RECHECK_SECONDS = 60.0

logger = logging.getLogger(__name__)


def task_id(delivery_id: UUID, version: int) -> UUID:
    """The task-queue message id of handing out one version of one delivery."""
    return uuid5(TASK_NAMESPACE, f"{delivery_id}/{version}")


def create_schema(conn: psycopg.Connection[Any]) -> bool:
    """Create the PostgreSQL broker's tables if missing (dramatiq-postgres's documented
    ``init``, in one transaction); whether it created them."""
    with conn.transaction(), conn.cursor() as curs:
        return bool(init_schema(curs, schema=SCHEMA))


class _Notifier(Notifier):  # type: ignore[misc]
    """dramatiq-postgres's one LISTEN thread per broker, sleeping in ``select`` on its
    socket and on a pipe that (un)subscribing and stopping write to, instead of in
    psycopg's ``notifies(timeout=2)``, which wakes ten times a second to look for Ctrl-C.
    ``ensure_conn``/``drop_conn`` (LISTEN on every subscribed channel) are the library's."""

    def __init__(self, pool: ConnectionPool[Any]) -> None:
        super().__init__(pool)
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)

    def subscribe(self, channel: str, event: Any) -> None:
        super().subscribe(channel, event)
        self._poke()

    def unsubscribe(self, channel: str, event: Any) -> None:
        super().unsubscribe(channel, event)
        self._poke()

    def stop(self) -> None:
        super().stop()
        self._poke()
        if not self.started_once:
            self._close_pipe()

    def _poke(self) -> None:
        with contextlib.suppress(OSError):  # full (it wakes anyway) or closed (stopped)
            os.write(self._wake_w, b"x")

    def _close_pipe(self) -> None:
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                try:
                    self._listen_once()
                except Exception as error:  # noqa: BLE001 - the library's: reconnect
                    logger.debug("Notifier connection error: %s. Retrying.", error)
                    self.drop_conn()
                    self.stopping.wait(1)
            self.drop_conn()
        finally:
            self._close_pipe()

    def _listen_once(self) -> None:
        # (Re)LISTEN only when a subscription changed: the library's ensure_conn otherwise
        # checks the connection by reading the socket itself (libpq's consume_input),
        # which would leave a notification where neither select nor notifies() sees it.
        conn = self.conn
        if conn is None or self.dirty.is_set():
            conn = self.ensure_conn()
        # What has arrived already, then sleep until more arrives (a closed connection
        # is readable, and raises here next time), a subscription changes or it stops.
        for notify in conn.notifies(timeout=0):
            with self.lock:
                events = set(self.subscriptions.get(notify.channel, ()))
            for event in events:
                event.set()
        ready, _, _ = select.select([conn.fileno(), self._wake_r], [], [], LISTEN_RECHECK_SECONDS)
        if self._wake_r in ready:
            os.read(self._wake_r, 4096)


class _PostgresBroker(PostgresBroker):  # type: ignore[misc]
    """dramatiq-postgres's broker on a pool of its own, with a quiet notifier and idle
    consumers that poll every ``POLL_SECONDS``, plus a batch enqueue."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(poll_interval=POLL_SECONDS, **kwargs)
        self.notifier = _Notifier(self.pool)
        self._consumers: list[Any] = []

    def close(self) -> None:
        super().close()
        self.pool.close()  # ours: the library closes only a pool it made itself

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 30_000) -> Any:
        # An idle consumer waits min(timeout, poll_interval) for a NOTIFY or an ack; the
        # worker's short timeout (100 ms) would make that ten polls a second per queue.
        consumer = super().consume(
            queue_name, prefetch=prefetch, timeout=max(timeout, int(POLL_SECONDS * 1000))
        )
        self._consumers.append(consumer)
        return consumer

    def emit_before(self, signal: str, *args: Any, **kwargs: Any) -> None:
        if signal == "worker_shutdown":
            # The worker stops its consumers next: they must see it within a short poll,
            # not after POLL_SECONDS.
            self.poll_interval = STOPPING_POLL_SECONDS
            for consumer in self._consumers:
                consumer.wakeup.set()
        super().emit_before(signal, *args, **kwargs)

    def enqueue_many(self, messages: list[dramatiq.Message[Any]]) -> None:
        """Enqueue several messages in one transaction (one commit, not one each) and
        wake the consumers once per queue. The statement is the broker's own upsert
        (``QUERIES.ENQUEUE_QUIET``, what ``enqueue`` runs with ``notify=False``): a
        module attribute of dramatiq-postgres, not documented API, hence the <2 pin and
        the tests of one task per handed-out version."""
        if not messages:
            return
        for message in messages:
            self.emit_before("enqueue", message, None)
        with self.pool.connection() as conn, conn.cursor() as curs:
            curs.executemany(
                QUERIES.ENQUEUE_QUIET,
                [(m.queue_name, m.message_id, m.encode().decode(), 0) for m in messages],
            )
            for queue_name in sorted({m.queue_name for m in messages}):
                curs.execute("SELECT pg_notify(%s, '')", (f"dramatiq.{queue_name}.enqueue",))
        for message in messages:
            self.emit_after("enqueue", message, None)


def make_broker(url: str, *, worker_timeout_ms: int = 30_000, broker_url: str = "") -> Any:
    """dramatiq's PostgreSQL broker on ``url`` (a libpq URL or conninfo; its schema comes
    from ``create_schema``), or RabbitMQ when ``broker_url`` is an ``amqp://`` URL
    (scale-out beyond what the PostgreSQL queue carries)."""
    middleware: list[Any] = [
        AgeLimit(),
        TimeLimit(time_limit=worker_timeout_ms * 4),
        ShutdownNotifications(),
        Callbacks(),
        Pipelines(),
        Retries(max_retries=0),
    ]
    if broker_url.startswith(("amqp://", "amqps://")):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        rabbit = RabbitmqBroker(url=broker_url, middleware=middleware)
        # Declare the queue and its delay queue on the server now: a worker's consumer of
        # the delay queue could otherwise start before either exists (NOT_FOUND).
        for queue_name in (QUEUE, NOTICE_QUEUE):
            rabbit.declare_queue(queue_name, ensure=True)
        return rabbit
    pool: ConnectionPool[Any] = ConnectionPool(
        url,
        min_size=1,
        max_size=POOL_SIZE,
        kwargs={"application_name": "imaging-bridge-task-queue"},
        check=ConnectionPool.check_connection,
        open=False,
        num_workers=1,  # threads that open connections in the background: one is plenty
    )
    pool.open(wait=True, timeout=30)
    return _PostgresBroker(pool=pool, results=False, middleware=middleware)


def declare_actor(
    broker: Any,
    send: Callable[[UUID, int], object],
    *,
    actor_name: str = ACTOR_NAME,
    queue_name: str = QUEUE,
) -> Any:
    """The ``send_delivery`` actor on ``broker``, sending through ``send`` (a
    ``Sender``'s); ``send_notice`` on the ``notices`` queue for the patient channels."""

    def send_delivery(delivery_id: str, version: int) -> None:
        send(UUID(delivery_id), version)

    declare = dramatiq.actor(
        broker=broker, actor_name=actor_name, queue_name=queue_name, max_retries=0
    )
    return declare(send_delivery)


def enqueuer(
    broker: Any, *, actor_name: str = ACTOR_NAME, queue_name: str = QUEUE
) -> Callable[[list[tuple[UUID, int]]], None]:
    """A pump dispatch that enqueues with deterministic message ids (in one statement
    on the PostgreSQL broker)."""

    def dispatch(handed_out: list[tuple[UUID, int]]) -> None:
        messages: list[dramatiq.Message[Any]] = [
            dramatiq.Message(
                queue_name=queue_name,
                actor_name=actor_name,
                args=(str(delivery_id), version),
                kwargs={},
                options={},
                message_id=str(task_id(delivery_id, version)),
            )
            for delivery_id, version in handed_out
        ]
        if hasattr(broker, "enqueue_many"):
            broker.enqueue_many(messages)
        else:
            for message in messages:
                broker.enqueue(message)

    return dispatch
