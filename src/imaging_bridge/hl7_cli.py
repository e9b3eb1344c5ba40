"""``imaging-bridge hl7 …`` and ``imaging-bridge mllp-listen``: the inbound HL7 side."""

import asyncio
import contextlib
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID

import typer

from imaging_bridge.operator import cli_operator

hl7_app = typer.Typer(help="Inbound HL7 messages: quarantine, replay.", no_args_is_help=True)

DataDirOption = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Data folder [default: ./.imaging-bridge/]", envvar="DATA_DIR"),
]


def _cipher(settings: Any) -> Any:
    """The at-rest cipher under the event key (stored messages are sealed with it)."""
    from adapters.at_rest import AtRestCipher
    from adapters.keys import load_or_create_cipher_key

    configured = settings.event_cipher_key
    return AtRestCipher(
        load_or_create_cipher_key(
            configured.get_secret_value() if configured else None,
            settings.data_dir,
            allow_generate=settings.environment != "production",
        )
    )


def _service(data_dir: Path | None) -> tuple[Any, Any]:
    """The operator service on a small pool (no projections, no applications), and the
    pool to close."""
    from adapters.access_log import PostgresAccessLog
    from adapters.clock import SystemClock
    from adapters.database import ensure_database, reader_pool
    from adapters.hl7.inbound_store import PostgresInboundStore
    from adapters.migrations import apply_migrations
    from application.ris.inbound_desk import Hl7Inbound
    from imaging_bridge.bootstrap import database_url
    from imaging_bridge.cli import settings_for

    settings = settings_for(data_dir)
    url = database_url(settings)
    ensure_database(url)
    apply_migrations(url)
    pool = reader_pool(url, 2)
    store, audit = PostgresInboundStore(pool, _cipher(settings)), PostgresAccessLog(pool)
    return Hl7Inbound(store, SystemClock(), audit), pool


def _fail_on_domain_error(error: Exception) -> None:
    from imaging_bridge.cli import fail

    fail(str(getattr(error, "detail", error)))


@hl7_app.command("list")
def list_messages(
    status: Annotated[
        str, typer.Option(help="received, processed, quarantined or all")
    ] = "quarantined",
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
    data_dir: DataDirOption = None,
) -> None:
    """Inbound messages, newest first (the quarantine by default)."""
    from domain.errors import DomainError

    service, pool = _service(data_dir)
    try:
        found = service.list(None if status == "all" else status, limit)
    except DomainError as error:
        _fail_on_domain_error(error)
        return
    finally:
        pool.close()
    for s in found:
        typer.echo(
            f"{s.id}  {s.received_at:%Y-%m-%d %H:%M:%S}  {s.status:<11}  {s.ack_code}  "
            f"{s.message_type}^{s.trigger}  {s.control_id}  {s.error or s.outcome or ''}"
        )
    typer.echo(f"{len(found)} message(s)", err=True)


@hl7_app.command("show")
def show_message(message_id: UUID, data_dir: DataDirOption = None) -> None:
    """One message: metadata, error, the ACK we sent, replays, and the raw text."""
    from domain.errors import DomainError

    service, pool = _service(data_dir)
    try:
        detail = service.show(message_id, cli_operator("hl7-show"))
    except DomainError as error:
        _fail_on_domain_error(error)
        return
    finally:
        pool.close()
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
    data_dir: DataDirOption = None,
) -> None:
    """Send a quarantined message through processing again; who and why are recorded."""
    from domain.errors import DomainError

    service, pool = _service(data_dir)
    actor = cli_operator("hl7-replay")
    try:
        detail = service.replay(message_id, reason, actor)
    except DomainError as error:
        _fail_on_domain_error(error)
        return
    finally:
        pool.close()
    typer.echo(f"{detail.summary.id} is {detail.summary.status} again")


def mllp_listen(
    port: Annotated[
        int | None, typer.Option("--mllp-port", help="TCP port [default: MLLP_PORT or 2575]")
    ] = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on [default: HOST]")] = None,
    idle_timeout: Annotated[
        float | None,
        typer.Option(help="Seconds without a frame before a connection is closed [default: 300]"),
    ] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Receive HL7 v2 over MLLP (TLS when TLS_CERT_FILE/TLS_KEY_FILE are set): store each
    message durably (sealed with the event key), then ACK. Processing runs in
    ``serve``/``worker``."""
    from adapters.database import ensure_database, reader_pool
    from adapters.hl7.inbound_store import PostgresInboundStore
    from adapters.hl7.listener import ListenerSetupError, listen, listener_config, ssl_context_from
    from adapters.migrations import apply_migrations
    from imaging_bridge.bootstrap import database_url
    from imaging_bridge.cli import fail, settings_for

    settings = settings_for(data_dir, host=host, mllp_port=port, mllp_idle_timeout=idle_timeout)
    try:
        config = listener_config(settings)
    except ListenerSetupError as error:
        fail(str(error))
    url = database_url(settings)
    ensure_database(url)
    apply_migrations(url)
    context = ssl_context_from(settings)
    cipher = _cipher(settings)
    with reader_pool(url, 1) as pool:
        PostgresInboundStore(pool, cipher).seal_rows_in_clear()  # stored before 0016
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(listen(url, config, cipher=cipher, ssl_context=context))
