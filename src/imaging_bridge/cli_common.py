"""What every ``imaging-bridge`` command shares: the ``--data-dir`` option, the settings,
the runtime from the composition root, and how a command ends on an error.

Command modules import this, never ``cli`` (which imports them all).
"""

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn, Protocol, TypeVar

import typer
from pydantic import ValidationError

from adapters.log_setup import configure_logging
from adapters.settings import Settings, settings_problem
from domain.errors import DomainError

if TYPE_CHECKING:
    from imaging_bridge.bootstrap import Parts, Runtime
    from imaging_bridge.outbound_runtime import OutboundRuntime

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help=(
            "Data folder: the embedded PostgreSQL (when DATABASE_URL is unset) and the"
            " development keys (default: DATA_DIR, else ./.imaging-bridge/)"
        ),
        show_default=False,
    ),
]


def command_group(help: str) -> typer.Typer:
    """A group of commands. Help is markdown: one paragraph per blank-line-separated
    block (a docstring's line breaks are not kept), no literal markup characters."""
    return typer.Typer(
        help=help,
        rich_markup_mode="markdown",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
    )


EXIT_REFUSED = 2
EXIT_NO_DATABASE_SERVER = 3


def settings_for(data_dir: Path | None, **overrides: object) -> Settings:
    """The settings from the environment, with the command's options over them."""
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


def fail(message: str, code: int = EXIT_REFUSED) -> NoReturn:
    """End the command with one line on standard error and a non-zero exit."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=code)


def warn(message: str) -> None:
    typer.secho(f"warning: {message}", fg=typer.colors.YELLOW, err=True)


class _Running(Protocol):
    notices: list[str]

    def close(self) -> None: ...


R = TypeVar("R", bound=_Running)


@contextmanager
def runtime_for(
    settings: Settings, parts: "Parts | None" = None, *, create: bool = False
) -> Iterator["Runtime"]:
    """The runtime of one command (nothing running in the background unless ``parts``
    says so), closed when the command ends. Only ``create`` commands may create a
    database; the others stop, saying where they looked. A domain error the command does
    not handle itself ends it with its detail on one line."""
    from imaging_bridge.bootstrap import TOOL, build

    with _running(lambda: build(settings, parts or TOOL, create=create)) as runtime:
        yield runtime


@contextmanager
def outbound_runtime_for(settings: Settings, parts: "Parts") -> Iterator["OutboundRuntime"]:
    """As ``runtime_for``, for a process that runs only the outbound ``parts``
    (``imaging_bridge.outbound_runtime``: no API services, auth or read models)."""
    from imaging_bridge.outbound_runtime import build_outbound

    with _running(lambda: build_outbound(settings, parts)) as runtime:
        yield runtime


@contextmanager
def _running(build: Callable[[], R]) -> Iterator[R]:
    """``build()``'s runtime until the command ends; its start-up errors and notices,
    and a domain error the command does not handle, for the operator."""
    from adapters.database import DatabaseUnavailableError
    from adapters.startup import StartupError

    try:
        runtime = build()
    except DatabaseUnavailableError as error:
        fail(str(error), EXIT_NO_DATABASE_SERVER)
    except StartupError as error:
        fail(str(error))
    for notice in runtime.notices:
        warn(notice)
    try:
        yield runtime
    except DomainError as error:
        fail(error.detail)
    finally:
        runtime.close()


def progress(label: str) -> Callable[[int, int], None]:
    """A progress report for long jobs: ``label: done/total (n%)`` on standard error."""

    def report(done: int, total: int) -> None:
        percent = 100 * done // total if total else 100
        typer.echo(f"{label}: {done}/{total} ({percent}%)", err=True)

    return report


def wait_for_stop_signal() -> None:
    """Block until SIGINT or SIGTERM (long-running commands other than serve)."""
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    stopping.wait()
