"""``imaging-bridge hl7 …`` and ``imaging-bridge mllp-listen``: the inbound HL7 side."""

from typing import Annotated
from uuid import UUID

import typer

from imaging_bridge.cli_common import (
    DataDir,
    command_group,
    fail,
    runtime_for,
    settings_for,
    wait_for_stop_signal,
)
from imaging_bridge.operator import cli_operator

hl7_app = command_group("Inbound HL7 messages: quarantine, replay.")


@hl7_app.command("list")
def list_messages(
    status: Annotated[
        str, typer.Option(help="received, processed, quarantined or all")
    ] = "quarantined",
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
    data_dir: DataDir = None,
) -> None:
    """Inbound messages, newest first (the quarantine by default)."""
    with runtime_for(settings_for(data_dir)) as runtime:
        found = runtime.services.hl7_inbound.list(status, limit)
    for s in found:
        typer.echo(
            f"{s.id}  {s.received_at:%Y-%m-%d %H:%M:%S}  {s.status:<11}  {s.ack_code}  "
            f"{s.message_type}^{s.trigger}  {s.control_id}  {s.error or s.outcome or ''}"
        )
    typer.echo(f"{len(found)} message(s)", err=True)


@hl7_app.command("show")
def show_message(message_id: UUID, data_dir: DataDir = None) -> None:
    """One message: metadata, error, the ACK we sent, replays, and the raw text."""
    with runtime_for(settings_for(data_dir)) as runtime:
        detail = runtime.services.hl7_inbound.show(message_id, cli_operator("hl7-show"))
    s = detail.summary
    for label, value in (
        ("id", s.id),
        ("received", s.received_at),
        ("status", s.status),
        ("type", f"{s.message_type}^{s.trigger} v{s.version}"),
        ("control id", s.control_id),
        ("sender", f"{s.sending_application} / {s.sending_facility} ({detail.peer})"),
        ("ack", s.ack_code),
        ("error", s.error or ""),
        ("outcome", s.outcome or ""),
        ("duplicates", detail.duplicates),
    ):
        typer.echo(f"{label:>11}: {value}")
    for r in detail.replays:
        typer.echo(f"     replay: {r.replayed_at} by {r.actor_id} ({r.actor_role}): {r.reason}")
    typer.echo("\nACK sent:\n" + detail.ack.replace("\r", "\n"))
    typer.echo("Message:\n" + detail.raw.replace("\r\n", "\n").replace("\r", "\n"))


@hl7_app.command("replay")
def replay_message(
    message_id: UUID,
    reason: Annotated[str, typer.Option(help="Why it is replayed (recorded)")],
    force: Annotated[
        bool, typer.Option(help="Replay a message that was processed already")
    ] = False,
    data_dir: DataDir = None,
) -> None:
    """Send a quarantined message through processing again; who and why are recorded.

    A message that was processed already is replayed only with --force. serve applies
    the replayed message within moments.
    """
    from application.ris.inbound_desk import AlreadyProcessedError

    with runtime_for(settings_for(data_dir)) as runtime:
        try:
            detail = runtime.services.hl7_inbound.replay(
                message_id, reason, cli_operator("hl7-replay"), processed_too=force
            )
        except AlreadyProcessedError:
            fail(
                f"{message_id} was processed already; replaying applies it again"
                " (its effects are idempotent): repeat with --force to do so"
            )
    typer.echo(f"{detail.summary.id} is {detail.summary.status} again: serve processes it next")


def mllp_listen(
    port: Annotated[
        int | None,
        typer.Option("--mllp-port", help="TCP port (default: MLLP_PORT, else 2575)"),
    ] = None,
    host: Annotated[
        str | None, typer.Option(help="Address to listen on (default: HOST, else 127.0.0.1)")
    ] = None,
    idle_timeout: Annotated[
        float | None,
        typer.Option(
            help="Seconds without data before a connection is closed"
            " (default: MLLP_IDLE_TIMEOUT, else 300)"
        ),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Receive HL7 v2 over MLLP: store each message durably, then ACK.

    TLS when TLS_CERT_FILE and TLS_KEY_FILE are set. serve applies the stored messages.
    """
    from adapters.hl7.listener import ListenerSetupError, listener_config
    from imaging_bridge.bootstrap import Parts

    settings = settings_for(data_dir, host=host, mllp_port=port, mllp_idle_timeout=idle_timeout)
    try:
        listener_config(settings)  # refused before any connection (e.g. no HL7_SENDERS)
    except ListenerSetupError as error:
        fail(str(error))
    with runtime_for(settings, Parts(projections=False, listener=True)) as runtime:
        bound = runtime.listener.port if runtime.listener else settings.mllp_port
        note = runtime.listener.listener.config.senders_note if runtime.listener else ""
        typer.echo(f"HL7 MLLP listener on {settings.host}:{bound} ({note})")
        wait_for_stop_signal()
