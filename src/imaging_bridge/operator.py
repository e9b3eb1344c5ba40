"""Who runs an operator command from the terminal: the operating-system user, recorded on
the events and audit entries the command causes."""

import getpass

from domain.context import Actor


def cli_operator(command: str) -> Actor:
    """The actor of ``imaging-bridge <command>`` run by this OS user."""
    return Actor(id=f"cli:{getpass.getuser()}", role="admin", source=f"cli:{command}")
