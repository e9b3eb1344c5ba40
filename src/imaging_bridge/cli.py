"""The ``imaging-bridge`` command."""

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import structlog
import typer
from pydantic import ValidationError

from adapters.log_setup import configure_logging
from adapters.settings import Settings, settings_problem
from domain.errors import DomainError
from imaging_bridge.deliveries_cli import Outbound, deliveries_app, worker
from imaging_bridge.hl7_cli import hl7_app, mllp_listen
from imaging_bridge.staff_cli import staff_app

if TYPE_CHECKING:
    from adapters.hl7.listener import BackgroundListener
    from imaging_bridge.bootstrap import Runtime

app = typer.Typer(
    help="Imaging Bridge: patient self-service in front of an imaging centre's RIS.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
catalog_app = typer.Typer(help="Locations, resources and exam types.", no_args_is_help=True)
projections_app = typer.Typer(help="Read models built from the event log.", no_args_is_help=True)
app.add_typer(catalog_app, name="catalog")
app.add_typer(projections_app, name="projections")
app.add_typer(staff_app, name="staff")
app.add_typer(hl7_app, name="hl7")
app.add_typer(deliveries_app, name="deliveries")
app.command("mllp-listen")(mllp_listen)
app.command("worker")(worker)

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Folder for the embedded PostgreSQL and local keys [default: ./.imaging-bridge/]",
        envvar="DATA_DIR",
    ),
]
log = structlog.get_logger("imaging_bridge")


def settings_for(data_dir: Path | None, **overrides: object) -> Settings:
    try:
        settings = Settings()
    except ValidationError as error:
        fail(f"settings refused: {settings_problem(error)}")
    updates = {k: v for k, v in overrides.items() if v is not None}
    if data_dir is not None:
        updates["data_dir"] = data_dir
    settings = settings.model_copy(update=updates)
    configure_logging(settings.log_level, json=settings.log_json)
    return settings


def fail(message: str) -> NoReturn:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


PLAIN_HTTP_WARNING = (
    "WARNING: TLS is off and ENVIRONMENT={environment}: passwords, tokens and patient data"
    " cross the network in clear text. Set TLS_CERT_FILE and TLS_KEY_FILE, or make sure a"
    " TLS-terminating proxy is the only way in."
)


def _tls_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's TLS arguments; outside development, a loud warning when there are none."""
    if not settings.tls_enabled:
        if not settings.development_like:
            rule = "!" * 78
            message = PLAIN_HTTP_WARNING.format(environment=settings.environment)
            typer.secho(f"{rule}\n{message}\n{rule}", fg=typer.colors.RED, bold=True, err=True)
        return {}
    password = settings.tls_key_password
    return {
        "ssl_certfile": str(settings.tls_cert_file),
        "ssl_keyfile": str(settings.tls_key_file),
        "ssl_keyfile_password": password.get_secret_value() if password else None,
    }


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help="Interface to listen on [default: 127.0.0.1]")
    ] = None,
    port: Annotated[int | None, typer.Option(help="HTTP port [default: 8000]")] = None,
    mllp_port: Annotated[
        int | None, typer.Option(help="MLLP port for the HL7 listener [default: 2575]")
    ] = None,
    data_dir: DataDir = None,
    demo: Annotated[bool, typer.Option(help="Seed the demo catalog (idempotent)")] = False,
    workers: Annotated[
        int, typer.Option(min=1, max=32, help="API worker processes (this one runs the rest)")
    ] = 1,
) -> None:
    """Run the API and the projections (and, as they land, the MLLP listener and workers)."""
    import uvicorn

    from adapters.proxies import uvicorn_proxy_options
    from api.app import create_app
    from imaging_bridge.bootstrap import build
    from imaging_bridge.catalog_loader import decode, demo_catalog_text, load_catalog
    from imaging_bridge.demo_accounts import describe as describe_demo_accounts
    from imaging_bridge.demo_accounts import seed_demo_accounts
    from imaging_bridge.observability import start_metrics_server

    settings = settings_for(data_dir, host=host, port=port, mllp_port=mllp_port)
    tls = _tls_options(settings)
    if demo and settings.environment == "production":
        fail("--demo seeds demo accounts with printed passwords; it is refused in production")
    runtime = build(settings)
    listener = None
    outbound = None
    metrics = None
    try:
        listener = start_mllp_listener(runtime)
        runtime.process_inbound()
        # Outbound: the policy that turns events into deliveries, its read model, the pump
        # and in-process workers (``imaging-bridge worker`` adds more processes).
        outbound = Outbound(runtime.env, runtime.url, runtime.services.clock).start()
        if demo:
            change = load_catalog(runtime.services.catalog, decode(demo_catalog_text()), "demo")
            typer.echo(
                f"demo catalog: {change.created} created, {change.revised} revised, "
                f"{change.unchanged} unchanged"
            )
            credentials = seed_demo_accounts(runtime.services, settings.data_dir)
            typer.echo(describe_demo_accounts(credentials))
        if (metrics := start_metrics_server(settings, runtime)) is not None:
            typer.echo(f"Prometheus metrics on http://{metrics.host}:{metrics.port}/metrics")
        address = f"{'https' if tls else 'http'}://{settings.host}:{settings.port}"
        typer.echo(f"Imaging Bridge API on {address}  (docs: /docs)")
        typer.echo(
            f"HL7 MLLP listener on {settings.host}:{listener.port}"
            f" ({listener.listener.config.senders_note})"
        )
        if workers > 1:
            # Workers build their own services from the environment, on this database.
            os.environ["DATABASE_URL"] = runtime.url
            os.environ["DATA_DIR"] = str(settings.data_dir.resolve())
            uvicorn.run(
                "imaging_bridge.asgi:create",
                factory=True,
                workers=workers,
                host=settings.host,
                port=settings.port,
                log_level="warning",
                access_log=False,
                log_config=None,
                **tls,
                **uvicorn_proxy_options(settings),
            )
        else:
            uvicorn.run(
                create_app(runtime.services, cors_origins=settings.cors_origins),
                host=settings.host,
                port=settings.port,
                log_level="warning",
                access_log=False,
                log_config=None,
                **tls,
                **uvicorn_proxy_options(settings),
            )
    finally:
        if metrics is not None:
            metrics.stop()
        if outbound is not None:
            outbound.stop()
        if listener is not None:
            listener.stop()
        runtime.close()


def start_mllp_listener(runtime: "Runtime") -> "BackgroundListener":
    """The inbound HL7 listener on its own thread and event loop, storing into the same
    database (messages are applied by the processing stage, off the ACK path)."""
    from adapters.hl7.listener import (
        BackgroundListener,
        ListenerSetupError,
        listener_config,
        ssl_context_from,
    )

    settings = runtime.settings
    try:
        return BackgroundListener(
            runtime.url,
            listener_config(settings),
            cipher=runtime.cipher,
            ssl_context=ssl_context_from(settings),
        ).start()
    except ListenerSetupError as error:
        fail(str(error))
    except OSError as error:
        fail(f"cannot listen for HL7 on {settings.host}:{settings.mllp_port}: {error.strerror}")


@app.command()
def migrate(data_dir: DataDir = None) -> None:
    """Apply the read-model schema migrations (also done at every start-up)."""
    from adapters.database import ensure_database
    from adapters.migrations import apply_migrations
    from imaging_bridge.bootstrap import database_url

    url = database_url(settings_for(data_dir))
    ensure_database(url)
    applied = apply_migrations(url)
    typer.echo(f"applied {len(applied)} migration(s): {', '.join(applied) or 'none needed'}")


@catalog_app.command("load")
def catalog_load(
    file: Annotated[Path, typer.Argument(help="A catalog description in YAML or JSON")],
    data_dir: DataDir = None,
) -> None:
    """Make the catalog match FILE; running it again changes nothing."""
    from imaging_bridge.bootstrap import build
    from imaging_bridge.catalog_loader import load_catalog, read_catalog_file

    try:
        document = read_catalog_file(file)
    except DomainError as error:
        fail(error.detail)
    runtime = build(settings_for(data_dir), run_projections=False)
    try:
        change = load_catalog(runtime.services.catalog, document, f"cli:{file.name}")
    except DomainError as error:
        fail(error.detail)
    finally:
        runtime.close()
    typer.echo(
        f"catalog: {change.created} created, {change.revised} revised, {change.unchanged} unchanged"
    )


@projections_app.command("status")
def projections_status(data_dir: DataDir = None) -> None:
    """Show each read model and how far behind the log it is."""
    from imaging_bridge.bootstrap import build
    from projections.parked import status_lines

    runtime = build(settings_for(data_dir))
    try:
        for name, behind in sorted(runtime.projections.lag().items()):
            typer.echo(f"{name}: {behind} behind")
        for line in status_lines(runtime.projections.parked()):
            typer.echo(line)
    finally:
        runtime.close()


@projections_app.command("rebuild")
def projections_rebuild(
    name: Annotated[str, typer.Argument(help="catalog_view, appointment_history or availability")],
    data_dir: DataDir = None,
) -> None:
    """Empty one read model and rebuild it from the event log."""
    from imaging_bridge.bootstrap import build
    from projections.runners import PROJECTIONS

    if name not in PROJECTIONS:
        fail(f"unknown read model {name!r}; choose from {', '.join(PROJECTIONS)}")
    runtime = build(settings_for(data_dir), run_projections=False)
    try:
        typer.echo(f"rebuilding {name} ...")
        count = runtime.projections.rebuild(name)
        typer.echo(f"{name}: rebuilt from {count} notifications")
    finally:
        runtime.close()


def main() -> None:
    from adapters.database import DatabaseUnavailableError

    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
    except DatabaseUnavailableError as error:
        typer.secho(f"error: {error}", fg=typer.colors.RED, err=True)
        sys.exit(3)
