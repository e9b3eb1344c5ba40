"""``imaging-bridge deliveries …`` and ``imaging-bridge worker``: the outbound side."""

from typing import Annotated
from uuid import UUID

import structlog
import typer

from domain.ris.message_delivery import ACKNOWLEDGED, AMBIGUOUS, CHANNELS, DEAD, QUEUED, RETRYING
from imaging_bridge.cli_common import (
    DataDir,
    command_group,
    fail,
    outbound_runtime_for,
    runtime_for,
    settings_for,
    wait_for_stop_signal,
)
from imaging_bridge.operator import cli_operator

log = structlog.get_logger(__name__)

STATUSES = (QUEUED, RETRYING, AMBIGUOUS, ACKNOWLEDGED, DEAD)

deliveries_app = command_group("Outbound deliveries: list, show, redrive.")


@deliveries_app.command("list")
def list_deliveries(
    status: Annotated[str | None, typer.Option(help=", ".join(STATUSES))] = None,
    channel: Annotated[str | None, typer.Option(help=", ".join(CHANNELS))] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    data_dir: DataDir = None,
) -> None:
    """Outbound deliveries, newest first."""
    if status is not None and status not in STATUSES:
        fail(f"unknown status {status!r}; choose from {', '.join(STATUSES)}")
    if channel is not None and channel not in CHANNELS:
        fail(f"unknown channel {channel!r}; choose from {', '.join(CHANNELS)}")
    with runtime_for(settings_for(data_dir)) as runtime:
        found = runtime.services.deliveries.search(status=status, channel=channel, limit=limit)
    for d in found:
        typer.echo(
            f"{d.id}  {d.channel:5} {d.recipient:8} {d.message_type:8} {d.status:14}"
            f" attempts={d.attempts} msh10={d.control_id} code={d.last_code}"
        )
    if not found:
        filters = [f"{k} {v}" for k, v in (("status", status), ("channel", channel)) if v]
        typer.echo(f"no deliveries{' with ' + ' and '.join(filters) if filters else ''}")


@deliveries_app.command("show")
def show(delivery_id: UUID, data_dir: DataDir = None) -> None:
    """One delivery and its attempts (timestamps and ACK codes)."""
    with runtime_for(settings_for(data_dir)) as runtime:
        d, history = runtime.services.deliveries.show(delivery_id, cli_operator("deliveries-show"))
    typer.echo(f"{d.id} {d.message_type} to {d.recipient} over {d.channel}: {d.status}")
    typer.echo(f"  cause {d.cause} at {d.cause_at.isoformat()}  MSH-10 {d.control_id}")
    if d.dead_reason:
        typer.echo(f"  dead: {d.dead_reason}")
    for h in history:
        typer.echo(
            f"  v{h.version} {h.at.isoformat()} {h.kind} #{h.number} {h.outcome}"
            f" {h.code} {h.detail} by {h.actor_id}"
        )


@deliveries_app.command("redrive")
def redrive(
    delivery_id: UUID,
    reason: Annotated[str, typer.Option(help="Why it is sent again (kept on the event)")],
    data_dir: DataDir = None,
) -> None:
    """Send a dead-lettered delivery again."""
    with runtime_for(settings_for(data_dir)) as runtime:
        version = runtime.services.deliveries.redrive(
            delivery_id, reason=reason, actor=cli_operator("deliveries-redrive")
        )
    typer.echo(f"Redriven {delivery_id} (version {version}).")


def worker(
    threads: Annotated[int, typer.Option(min=1, max=64, help="Sending threads")] = 4,
    pump: Annotated[bool, typer.Option(help="Also hand due deliveries to the queue")] = True,
    data_dir: DataDir = None,
) -> None:
    """Run more outbound delivery workers, until stopped.

    dramatiq on the PostgreSQL broker, or on RabbitMQ with BROKER_URL; serve keeps the
    deliveries read model they read.
    """
    from imaging_bridge.bootstrap import Parts

    parts = Parts(projections=False, pump=pump, workers=threads)
    with outbound_runtime_for(settings_for(data_dir), parts):
        log.info("delivery_worker_started", threads=threads, pump=pump)
        wait_for_stop_signal()
