"""``imaging-bridge hl7 …`` and ``imaging-bridge mllp-listen``: the inbound HL7 side."""

import typer

hl7_app = typer.Typer(help="Inbound HL7 messages: quarantine, replay.", no_args_is_help=True)
