"""The task queue between the pump and the sending threads: dramatiq on PostgreSQL
(dramatiq-pg, with the fixes its consumer needs for throughput) or on RabbitMQ, the
``send_delivery`` actor, and the pump's enqueuer (deterministic message ids: handing out
one version of one delivery twice enqueues one task)."""

import time
from collections.abc import Callable
from typing import Any
from uuid import UUID, uuid5

import dramatiq
from dramatiq.middleware import (
    AgeLimit,
    Callbacks,
    Pipelines,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)

QUEUE = "hl7"
ACTOR_NAME = "send_delivery"
TASK_NAMESPACE = UUID("0d8f0a4e-3f4a-4d0c-9b8e-5d7c1f6a2b91")


def task_id(delivery_id: UUID, version: int) -> UUID:
    """The task-queue message id of handing out one version of one delivery."""
    return uuid5(TASK_NAMESPACE, f"{delivery_id}/{version}")


def make_broker(url: str, *, worker_timeout_ms: int = 30_000, broker_url: str = "") -> Any:
    """dramatiq's PostgreSQL broker on ``url`` (psycopg2 DSN or URL; schema from 0009),
    or RabbitMQ when ``broker_url`` is an ``amqp://`` URL (scale-out beyond what the
    PostgreSQL queue carries)."""
    from dramatiq_pg.broker import PostgresBroker, PostgresConsumer

    class ListenFirstConsumer(PostgresConsumer):  # type: ignore[misc]
        """Two fixes to dramatiq-pg's consumer (0.x), which the throughput needs:

        - it re-reads every pending message on each step until its LISTEN connection
          opens, which happens only once the backlog is drained (quadratic with a
          backlog): listen first, then scan the backlog once;
        - with ``prefetch`` messages in flight it sleeps up to a second, and dramatiq
          hands it the ACKs that free those slots only between steps: yield instead.
        """

        def __next__(self) -> Any:
            if self._listen_conn is None:
                self.get_listen_conn()
                self.notifies = self.fetch_pending_notifies()
            if len(self.in_processing) >= self.prefetch:
                time.sleep(0.002)
                return None
            return super().__next__()

    class Broker(PostgresBroker):  # type: ignore[misc]
        def enqueue_many(self, messages: list[dramatiq.Message[Any]]) -> None:
            """Enqueue several messages in one transaction (one commit, not one each)."""
            from dramatiq_pg.broker import QUERIES
            from dramatiq_pg.utils import tidy4json, transaction
            from psycopg2.extras import Json

            with transaction(self.pool) as curs:
                for message in messages:
                    self.emit_before("enqueue", message, None)
                    curs.execute(
                        QUERIES.ENQUEUE,
                        (
                            message.queue_name,
                            message.message_id,
                            Json(tidy4json(message)),
                            message.message_id,
                        ),
                    )
            for message in messages:
                self.emit_after("enqueue", message, None)

        def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 30000) -> Any:
            # dramatiq-pg waits for notifications ``timeout // 1000`` whole seconds: a
            # sub-second worker timeout would make that 0 and the consumer spin. A
            # notification still wakes it at once; only idle polling is once a second.
            return ListenFirstConsumer(
                pool=self.pool,
                queue_name=queue_name,
                prefetch=prefetch,
                timeout=max(timeout, 1000),
            )

    middleware: list[Any] = [
        AgeLimit(),  # type: ignore[no-untyped-call]
        TimeLimit(time_limit=worker_timeout_ms * 4),  # type: ignore[no-untyped-call]
        ShutdownNotifications(),  # type: ignore[no-untyped-call]
        Callbacks(),
        Pipelines(),
        Retries(max_retries=0),  # type: ignore[no-untyped-call]
    ]
    if broker_url.startswith(("amqp://", "amqps://")):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        rabbit = RabbitmqBroker(url=broker_url, middleware=middleware)  # type: ignore[no-untyped-call]
        # Declare the queue and its delay queue on the server now: a worker's consumer of
        # the delay queue could otherwise start before either exists (NOT_FOUND).
        rabbit.declare_queue(QUEUE, ensure=True)  # type: ignore[no-untyped-call]
        return rabbit
    broker = Broker(url=url, results=False, middleware=middleware)
    return broker


def declare_actor(broker: Any, send: Callable[[UUID, int], object]) -> Any:
    """The ``send_delivery`` actor on ``broker``, sending through ``send`` (a
    ``Sender``'s)."""

    def send_delivery(delivery_id: str, version: int) -> None:
        send(UUID(delivery_id), version)

    return dramatiq.actor(
        send_delivery, broker=broker, actor_name=ACTOR_NAME, queue_name=QUEUE, max_retries=0
    )


def enqueuer(broker: Any) -> Callable[[list[tuple[UUID, int]]], None]:
    """A pump dispatch that enqueues with deterministic message ids (in one transaction
    on the PostgreSQL broker)."""

    def dispatch(handed_out: list[tuple[UUID, int]]) -> None:
        messages: list[dramatiq.Message[Any]] = [
            dramatiq.Message(
                queue_name=QUEUE,
                actor_name=ACTOR_NAME,
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
