"""The ``imaging-bridge`` command: ``serve`` and ``migrate`` here, the other commands in
their own modules (which share ``cli_common``, never this module)."""

import signal
import socket
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from adapters.settings import Settings
from imaging_bridge.catalog_cli import catalog_app
from imaging_bridge.cli_common import (
    EXIT_NO_DATABASE_SERVER,
    EXIT_REFUSED,
    DataDir,
    command_group,
    fail,
    runtime_for,
    settings_for,
)
from imaging_bridge.deliveries_cli import deliveries_app, worker
from imaging_bridge.hl7_cli import hl7_app, mllp_listen
from imaging_bridge.projections_cli import projections_app
from imaging_bridge.staff_cli import staff_app

if TYPE_CHECKING:
    from imaging_bridge.bootstrap import Runtime

app = command_group("Imaging Bridge: patient self-service in front of an imaging centre's RIS.")
app.add_typer(catalog_app, name="catalog")
app.add_typer(projections_app, name="projections")
app.add_typer(staff_app, name="staff")
app.add_typer(hl7_app, name="hl7")
app.add_typer(deliveries_app, name="deliveries")
app.command("mllp-listen")(mllp_listen)
app.command("worker")(worker)

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


def check_port_free(what: str, host: str, port: int) -> None:
    """Bind ``host:port`` as the server will (then let go), so that a port in use is
    one line before anything starts, not a traceback after "API on ..."."""
    if port == 0:
        return
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            fail(f"cannot listen for {what} on {host}:{port}: {error.strerror or error}")


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help="Interface to listen on (default: HOST, else 127.0.0.1)")
    ] = None,
    port: Annotated[int | None, typer.Option(help="HTTP port (default: PORT, else 8000)")] = None,
    mllp_port: Annotated[
        int | None,
        typer.Option(help="MLLP port of the HL7 listener (default: MLLP_PORT, else 2575)"),
    ] = None,
    data_dir: DataDir = None,
    demo: Annotated[
        bool,
        typer.Option(
            help="Seed the demo catalog into an empty catalog, and the demo accounts that are"
            " missing"
        ),
    ] = False,
    workers: Annotated[
        int, typer.Option(min=1, max=32, help="API worker processes (this one runs the rest)")
    ] = 1,
    outbound: Annotated[
        str,
        typer.Option(
            help="process (default): the outbound policies, pumps and sending threads run"
            " in a child process, started and stopped with this one; inline: in this one"
        ),
    ] = "process",
) -> None:
    """Run the API and everything behind it.

    The read models, the HL7 listener and its processing stage, the outbound delivery
    policy, pump and workers.
    """
    from imaging_bridge.bootstrap import SERVE
    from imaging_bridge.observability import start_metrics_server
    from imaging_bridge.outbound_process import WITHOUT_OUTBOUND, start_child, stop_child

    if outbound not in ("inline", "process"):
        fail(f"--outbound must be inline or process, not {outbound!r}")

    settings = settings_for(data_dir, host=host, port=port, mllp_port=mllp_port)
    tls = _tls_options(settings)
    if demo and settings.environment == "production":
        fail("--demo seeds demo accounts with printed passwords; it is refused in production")
    check_port_free("HTTP", settings.host, settings.port)
    check_port_free("HL7", settings.host, settings.mllp_port)
    # uvicorn shuts down on SIGTERM, then raises it again under the handler it found: the
    # default one ends the process on the spot, before the runtime closes (access log
    # flush, embedded PostgreSQL stop). Handled as Ctrl-C is, the same orderly unwind runs.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    parts = SERVE if outbound == "inline" else WITHOUT_OUTBOUND
    with runtime_for(settings, parts, create=True) as runtime:
        if demo:
            _seed_demo(runtime)
        _describe_hl7(runtime)
        child = start_child(runtime) if outbound == "process" else None
        # Further listeners of this process start here, before the API line: once it is
        # printed, everything else is up.
        metrics = start_metrics_server(settings, runtime)
        try:
            if metrics is not None:
                typer.echo(f"Prometheus metrics on http://{metrics.host}:{metrics.port}/metrics")
            address = f"{'https' if tls else 'http'}://{settings.host}:{settings.port}"
            typer.echo(
                f"Imaging Bridge API on {address}  (docs: /docs;"
                f" patient portal: {settings.base_url}/)"
            )
            _run_api(runtime, workers, tls)
        finally:
            if child is not None:
                stop_child(child)
            if metrics is not None:
                metrics.stop()


def _seed_demo(runtime: "Runtime") -> None:
    """The demo catalog into an empty catalog only (edits survive restarts), and the demo
    accounts that are missing; their credentials printed."""
    from imaging_bridge.catalog_loader import decode, demo_catalog_text, load_catalog
    from imaging_bridge.demo_accounts import describe, seed_demo_accounts

    catalog = runtime.services.catalog
    if catalog.is_empty():
        change = load_catalog(catalog, decode(demo_catalog_text()), "demo")
        typer.echo(f"demo catalog: {change.created} created")
    else:
        typer.echo("demo catalog: not loaded, the catalog has entries already (kept as they are)")
    credentials = seed_demo_accounts(runtime.services, runtime.settings.data_dir)
    typer.echo(describe(credentials))


def _describe_hl7(runtime: "Runtime") -> None:
    settings = runtime.settings
    if runtime.destinations:
        for d in runtime.destinations:
            tls = ", TLS" if d.tls else ""
            typer.echo(
                f"HL7 out to {d.name} at {d.host}:{d.port} (v{d.version}{tls},"
                f" ACK timeout {d.timeout:g} s)"
            )
    else:
        typer.echo("HL7 out: no destinations (HL7_DESTINATIONS is unset): nothing is sent")
    if runtime.listener is not None:
        typer.echo(
            f"HL7 MLLP listener on {settings.host}:{runtime.listener.port}"
            f" ({runtime.listener.listener.config.senders_note})"
        )


def _run_api(runtime: "Runtime", workers: int, tls: dict[str, Any]) -> None:
    import uvicorn

    from adapters.proxies import uvicorn_proxy_options
    from adapters.settings import hand_to_child_processes
    from api.app import create_app

    settings = runtime.settings
    common: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": "warning",
        "access_log": False,
        "log_config": None,
        **tls,
        **uvicorn_proxy_options(settings),
    }
    if workers > 1:
        # Worker processes build their own runtime (``asgi.create``) on this database.
        hand_to_child_processes(settings.model_copy(update={"database_url": runtime.url}))
        uvicorn.run("imaging_bridge.asgi:create", factory=True, workers=workers, **common)
    else:
        uvicorn.run(create_app(runtime.services, cors_origins=settings.cors_origins), **common)


@app.command()
def migrate(data_dir: DataDir = None) -> None:
    """Create the database if needed and apply the schema migrations.

    serve also does this at every start.
    """
    from imaging_bridge.bootstrap import TOOL

    with runtime_for(settings_for(data_dir), TOOL, create=True) as runtime:
        applied = runtime.migrations
    typer.echo(f"applied {len(applied)} migration(s): {', '.join(applied) or 'none needed'}")


def main() -> None:
    from adapters.database import DatabaseUnavailableError
    from adapters.startup import StartupError

    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
    except DatabaseUnavailableError as error:
        typer.secho(f"error: {error}", fg=typer.colors.RED, err=True)
        sys.exit(EXIT_NO_DATABASE_SERVER)
    except StartupError as error:
        typer.secho(f"error: {error}", fg=typer.colors.RED, err=True)
        sys.exit(EXIT_REFUSED)
