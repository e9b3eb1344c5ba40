"""``imaging-bridge deliveries …`` and ``imaging-bridge worker``: the outbound side."""

import typer

deliveries_app = typer.Typer(help="Outbound deliveries: list, show, redrive.", no_args_is_help=True)
