"""``imaging-bridge deliveries …`` and ``imaging-bridge worker``: the outbound side.

``Outbound`` is the outbound part of a process (composed here, at the top layer, as it
needs the projections and the adapters together): the delivery policy runners, the
deliveries read model, the pump and the dramatiq workers.
"""

import os
import signal
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID

import dramatiq
import structlog
import typer
from eventsourcing.projection import EventSourcedProjectionRunner, ProjectionRunner
from psycopg_pool import ConnectionPool

from adapters.access_log import PostgresAccessLog
from adapters.hl7.destinations import parse_destinations
from adapters.hl7.pump import Pump
from adapters.hl7.sender import Sender, retry_policy_from
from adapters.task_queue import declare_actor, enqueuer, make_broker
from application.ports import Clock
from application.registry import RegistryLog
from application.ris.deliveries import Deliveries
from application.ris.delivery_desk import DeliveryDesk
from application.ris.delivery_policy import DeliveryPolicy, recipients_env
from application.scheduling import SchedulingLog
from domain.errors import DomainError
from imaging_bridge.operator import cli_operator
from projections.deliveries_view import DeliveriesViewProjection, PostgresDeliveryReader
from projections.view import ReadModelView

log = structlog.get_logger(__name__)

deliveries_app = typer.Typer(help="Outbound deliveries: list, show, redrive.", no_args_is_help=True)


@dataclass
class Outbound:
    """Everything outbound one process runs.

    ``serve`` runs it whole; ``imaging-bridge worker`` runs the pump and the workers
    only (several processes may pump: hand-outs are leased per delivery version).
    """

    env: dict[str, str]
    url: str
    clock: Clock
    policy_runners: bool = True
    view_runner: bool = True
    pump: bool = True
    workers: int = 2
    pump_interval: float = 0.2
    runners: list[Any] = field(default_factory=list)
    worker: Any = None
    deliveries: Deliveries | None = None
    pool: ConnectionPool[Any] | None = None
    broker: Any = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> "Outbound":
        env = {**os.environ, **self.env}
        destinations = parse_destinations(env.get("HL7_DESTINATIONS", ""))
        if self.policy_runners:
            policy_env = {**self.env, **recipients_env([d.name for d in destinations])}
            for upstream in (SchedulingLog, RegistryLog):
                runner: Any = EventSourcedProjectionRunner(
                    application_class=upstream, projection_class=DeliveryPolicy, env=policy_env
                )
                self.runners.append(runner.__enter__())
        if self.view_runner:
            view: Any = ProjectionRunner(
                application_class=Deliveries,
                projection_class=DeliveriesViewProjection,
                view_class=ReadModelView,
                env=self.env,
            )
            self.runners.append(view.__enter__())
        self.pool = ConnectionPool(
            self.url, min_size=1, max_size=4, kwargs={"autocommit": True}, open=False
        )
        self.pool.open(wait=True, timeout=30)
        self.deliveries = Deliveries(self.env)
        if self.workers or self.pump:
            self.broker = make_broker(self.url, broker_url=env.get("BROKER_URL", ""))
        if self.workers:
            sender = Sender(
                self.deliveries,
                destinations,
                self.clock,
                retry_policy_from(env),
                tls_cafile=env.get("HL7_TLS_CAFILE") or None,
            )
            declare_actor(self.broker, sender.send)
            self.worker = dramatiq.Worker(
                self.broker, worker_threads=self.workers, worker_timeout=100
            )
            self.worker.start()
        if self.pump:
            lease = timedelta(seconds=float(env.get("DELIVERY_LEASE_SECONDS", "30")))
            pump = Pump(self.reader(), self.pool, enqueuer(self.broker), self.clock, lease=lease)
            thread = threading.Thread(target=self._pump_loop, args=(pump,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def reader(self) -> PostgresDeliveryReader:
        assert self.pool is not None
        return PostgresDeliveryReader(self.pool)

    def desk(self) -> DeliveryDesk:
        assert self.deliveries is not None
        assert self.pool is not None
        return DeliveryDesk(
            self.deliveries, self.reader(), self.clock, PostgresAccessLog(self.pool)
        )

    def _pump_loop(self, pump: Pump) -> None:
        while not self._stop.is_set():
            try:
                pump.run_once()
            except Exception:
                log.exception("delivery_pump_failed")
            self._stop.wait(self.pump_interval)

    def wait_caught_up(self, timeout: float = 10.0) -> None:
        """Until the policy runners and the read model have processed their logs."""
        deadline = time.monotonic() + timeout
        for runner in self.runners:
            head = runner.app.recorder.max_notification_id() or 0
            if head:
                runner.wait(head, timeout=max(0.01, deadline - time.monotonic()))

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        if self.worker is not None:
            self.worker.stop(timeout=10_000)
        if self.broker is not None:
            self.broker.close()
        for runner in reversed(self.runners):
            runner.__exit__(None, None, None)
            view = getattr(runner, "view", None)
            if view is not None:
                view.datastore.close()
        self.runners.clear()
        if self.deliveries is not None:
            self.deliveries.close()
        if self.pool is not None:
            self.pool.close()


DataDir = Annotated[
    str | None, typer.Option("--data-dir", help="Data folder [default: ./.imaging-bridge/]")
]


def _runtime(data_dir: str | None) -> Any:
    from imaging_bridge.bootstrap import build
    from imaging_bridge.cli import settings_for

    return build(settings_for(Path(data_dir) if data_dir else None), run_projections=False)


def _outbound(runtime: Any, *, workers: int = 0, pump: bool = False) -> Outbound:
    return Outbound(
        runtime.env,
        runtime.url,
        runtime.services.clock,
        policy_runners=False,
        # The read model is kept by the process that runs it (``serve``); a second runner
        # here would race it for the same tracking record.
        view_runner=False,
        pump=pump,
        workers=workers,
    ).start()


@deliveries_app.command("list")
def list_deliveries(
    status: Annotated[str | None, typer.Option(help="queued, retrying, ambiguous, ...")] = None,
    channel: Annotated[str | None, typer.Option(help="hl7, email, sms, push, ledger")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    data_dir: DataDir = None,
) -> None:
    """Outbound deliveries, newest first."""
    runtime = _runtime(data_dir)
    outbound = _outbound(runtime)
    try:
        for d in outbound.desk().search(status=status, channel=channel, limit=limit):
            typer.echo(
                f"{d.id}  {d.channel:5} {d.recipient:8} {d.message_type:8} {d.status:14}"
                f" attempts={d.attempts} msh10={d.control_id} code={d.last_code}"
            )
    finally:
        outbound.stop()
        runtime.close()


@deliveries_app.command("show")
def show(delivery_id: UUID, data_dir: DataDir = None) -> None:
    """One delivery and its attempts (timestamps and ACK codes)."""
    from imaging_bridge.cli import fail

    runtime = _runtime(data_dir)
    outbound = _outbound(runtime)
    try:
        try:
            d, history = outbound.desk().show(delivery_id, cli_operator("deliveries-show"))
        except DomainError as error:
            fail(str(error))
        typer.echo(f"{d.id} {d.message_type} to {d.recipient} over {d.channel}: {d.status}")
        typer.echo(f"  cause {d.cause} at {d.cause_at.isoformat()}  MSH-10 {d.control_id}")
        if d.dead_reason:
            typer.echo(f"  dead: {d.dead_reason}")
        for h in history:
            typer.echo(
                f"  v{h.version} {h.at.isoformat()} {h.kind} #{h.number} {h.outcome}"
                f" {h.code} {h.detail} by {h.actor_id}"
            )
    finally:
        outbound.stop()
        runtime.close()


@deliveries_app.command("redrive")
def redrive(
    delivery_id: UUID,
    reason: Annotated[str, typer.Option(help="Why it is sent again (kept on the event)")],
    data_dir: DataDir = None,
) -> None:
    """Send a dead-lettered delivery again."""
    from imaging_bridge.cli import fail

    runtime = _runtime(data_dir)
    outbound = _outbound(runtime)
    try:
        actor = cli_operator("deliveries-redrive")
        try:
            version = outbound.desk().redrive(delivery_id, reason=reason, actor=actor)
        except DomainError as error:
            fail(str(error))
        typer.echo(f"Redriven {delivery_id} (version {version}).")
    finally:
        outbound.stop()
        runtime.close()


def worker(
    threads: Annotated[int, typer.Option(min=1, max=64, help="Sending threads")] = 4,
    pump: Annotated[bool, typer.Option(help="Also hand due deliveries to the queue")] = True,
    data_dir: DataDir = None,
) -> None:
    """Run outbound delivery workers (dramatiq on the PostgreSQL broker) until stopped."""
    runtime = _runtime(data_dir)
    outbound = _outbound(runtime, workers=threads, pump=pump)
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    log.info("delivery_worker_started", threads=threads, pump=pump)
    try:
        stopping.wait()
    finally:
        outbound.stop()
        runtime.close()
