"""Why a process cannot start, said in one line (the CLI prints it and exits non-zero)."""


class StartupError(Exception):
    """The process cannot start as configured; the message says why and what to do."""
