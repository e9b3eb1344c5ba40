"""The base of every domain error: a stable machine-readable code and a message."""


class DomainError(Exception):
    """A command was refused by a domain rule."""

    code = "domain_error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidValueError(DomainError):
    """A value given to the domain is malformed (bad time zone, bad hours...)."""

    code = "invalid_value"
