"""``imaging-bridge staff …``: staff accounts from the terminal (the first admin)."""

import sys
from typing import TYPE_CHECKING, Annotated

import qrcode
import typer

from domain.context import Actor, system_actor
from domain.location import Location
from imaging_bridge.cli_common import DataDir, command_group, runtime_for, settings_for

if TYPE_CHECKING:
    from imaging_bridge.bootstrap import Runtime

staff_app = command_group("Staff accounts (the first admin comes from here).")


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


def _show_qr(uri: str) -> None:
    code = qrcode.QRCode(border=1)
    code.add_data(uri)
    code.print_ascii(out=sys.stdout, invert=True)


@staff_app.command("create")
def create(
    email: Annotated[str, typer.Option(help="Sign-in e-mail of the new account")],
    role: Annotated[
        str, typer.Option(help="scheduler, billing, compliance, admin or integration")
    ] = "admin",
    centre: Annotated[
        list[str] | None,
        typer.Option(help="Location code the account is limited to (repeatable; none = all)"),
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option(help="Read the password (then the code) from standard input")
    ] = False,
    data_dir: DataDir = None,
) -> None:
    """Create a staff account and enrol its authenticator app (TOTP) right here.

    Creates the database too if there is none yet (the first admin).
    """
    actor = system_actor(source="cli:staff-create")
    with runtime_for(settings_for(data_dir), create=True) as runtime:
        _create(runtime, email, role, centre or [], password_stdin, actor)


def _create(
    runtime: "Runtime",
    email: str,
    role: str,
    centre: list[str],
    password_stdin: bool,
    actor: Actor,
) -> None:
    centres = [runtime.services.catalog.location(Location.create_id(c)).id for c in centre]
    password = _read_password(password_stdin)
    account_id = runtime.services.registry.open_staff_account(
        email=email, password=password, role=role, centres=centres, actor=actor
    )
    enrolment = runtime.services.auth.enrol_account(account_id, actor)
    typer.echo(f"Created {role} account {email} ({account_id}).")
    typer.echo("Scan this with an authenticator app, or enter the secret by hand:")
    _show_qr(enrolment.provisioning_uri)
    typer.echo(f"secret: {enrolment.secret}")
    typer.echo(f"uri: {enrolment.provisioning_uri}")
    if password_stdin:
        code = sys.stdin.readline().strip()
    else:
        code = str(typer.prompt("Code from the app"))
    codes = runtime.services.auth.confirm_account(account_id, code, actor)
    typer.echo("Two-factor sign-in is on. Recovery codes (each works once; keep them safe):")
    for recovery in codes:
        typer.echo(f"  {recovery}")
