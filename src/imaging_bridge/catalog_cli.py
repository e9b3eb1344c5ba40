"""``imaging-bridge catalog load``: the catalog from a YAML or JSON description."""

from pathlib import Path
from typing import Annotated

import typer

from domain.context import system_actor
from domain.errors import DomainError
from imaging_bridge.cli_common import DataDir, command_group, fail, runtime_for, settings_for

catalog_app = command_group("Locations, resources and exam types.")

KINDS = {"locations": "locations", "resources": "resources", "appointment_types": "exam types"}


@catalog_app.command("load")
def catalog_load(
    file: Annotated[Path, typer.Argument(help="A catalog description in YAML or JSON")],
    data_dir: DataDir = None,
) -> None:
    """Create or revise every location, resource and exam type FILE lists.

    One atomic save; running it again changes nothing. Entries FILE does not list are
    kept as they are (the catalog has no removal) and named in the output. A resource
    may name a location that is already in the catalog. Changes are not checked against
    booked appointments: to change the hours of a resource with bookings, use the staff
    catalog API, which refuses changes that would strand them.
    """
    from imaging_bridge.catalog_loader import not_listed, read_catalog_file, read_specs

    try:
        document = read_catalog_file(file)
    except DomainError as error:
        fail(f"{file}: {error.detail}")
    with runtime_for(settings_for(data_dir)) as runtime:
        catalog = runtime.services.catalog
        try:
            specs = read_specs(catalog, document)
        except DomainError as error:
            fail(f"{file}: {error.detail}")
        typer.echo(
            f"{file}: {len(specs.locations)} locations, {len(specs.resources)} resources,"
            f" {len(specs.appointment_types)} exam types; saving ...",
            err=True,
        )
        try:
            change = catalog.apply(specs, system_actor(source=f"cli:{file.name}"))
        except DomainError as error:
            fail(f"{file}: {error.detail}")
        kept = not_listed(catalog, specs)
    typer.echo(
        f"catalog: {change.created} created, {change.revised} revised, {change.unchanged} unchanged"
    )
    for kind, codes in kept.items():
        if codes:
            typer.echo(f"kept, not in {file.name}: {KINDS[kind]} {', '.join(codes)}")
