"""``imaging-bridge projections status|rebuild``: the read models built from the logs."""

from typing import Annotated

import typer

from imaging_bridge.cli_common import (
    DataDir,
    command_group,
    fail,
    progress,
    runtime_for,
    settings_for,
)
from projections.runners import PROJECTIONS

READ_MODELS = ", ".join(PROJECTIONS)

projections_app = command_group(f"Read models built from the event logs: {READ_MODELS}.")


@projections_app.command("status")
def projections_status(data_dir: DataDir = None) -> None:
    """Show every read model, how far behind its log it is, and the events it parked."""
    from projections.parked import status_lines

    with runtime_for(settings_for(data_dir)) as runtime:
        for name, behind in runtime.projections.lag().items():
            typer.echo(f"{name}: {behind} behind")
        for line in status_lines(runtime.projections.parked()):
            typer.echo(line)


@projections_app.command("rebuild")
def projections_rebuild(
    name: Annotated[str, typer.Argument(help=f"The read model: {READ_MODELS}")],
    data_dir: DataDir = None,
) -> None:
    """Empty one read model and rebuild it from its event log, showing progress.

    Stop serve first: one process at a time keeps a read model.
    """
    if name not in PROJECTIONS:
        fail(f"unknown read model {name!r}; choose from {READ_MODELS}")
    with runtime_for(settings_for(data_dir)) as runtime:
        typer.echo(f"rebuilding {name} ...", err=True)
        count = runtime.projections.rebuild(name, progress=progress(name))
    typer.echo(f"{name}: rebuilt from {count} notifications")
