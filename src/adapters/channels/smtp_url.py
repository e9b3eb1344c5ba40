"""``SMTP_URL``: where and how to hand e-mail over, in one string.

    smtp://host[:25]                      plain (a relay on the local network)
    smtp+starttls://user:pass@host[:587]  submission, upgraded with STARTTLS
    smtps://user:pass@host[:465]          submission over implicit TLS

User and password are percent-encoded in the URL (``p%40ss`` for ``p@ss``). Errors
name the part that is wrong and never repeat the URL: it may hold the password.
"""

from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

PLAIN = "smtp"
STARTTLS = "smtp+starttls"
IMPLICIT_TLS = "smtps"
DEFAULT_PORTS = {PLAIN: 25, STARTTLS: 587, IMPLICIT_TLS: 465}


class SmtpUrlError(ValueError):
    """An ``SMTP_URL`` that cannot be used; the message never holds the password."""


@dataclass(frozen=True)
class SmtpTarget:
    """A parsed ``SMTP_URL``. ``repr`` hides the password."""

    security: str
    host: str
    port: int
    username: str = ""
    password: str = field(default="", repr=False)

    @property
    def tls(self) -> bool:
        return self.security != PLAIN

    def describe(self) -> str:
        """Where mail goes, fit for a log line: no credentials."""
        return f"{self.security}://{self.host}:{self.port}"


def parse_smtp_url(url: str) -> SmtpTarget:
    """The target ``url`` names, or ``SmtpUrlError`` saying what is wrong with it."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise SmtpUrlError("SMTP_URL has an invalid port or address") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise SmtpUrlError("SMTP_URL must start with smtp://, smtp+starttls:// or smtps://")
    if not parts.hostname:
        raise SmtpUrlError("SMTP_URL names no host")
    if port == 0:
        raise SmtpUrlError("SMTP_URL has port 0")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise SmtpUrlError("SMTP_URL takes no path, query or fragment")
    username = unquote(parts.username or "")
    password = unquote(parts.password or "")
    if password and not username:
        raise SmtpUrlError("SMTP_URL has a password without a user")
    if username and scheme == PLAIN:
        raise SmtpUrlError(
            "SMTP_URL would send the password in clear: use smtp+starttls:// or smtps://"
        )
    return SmtpTarget(
        security=scheme,
        host=parts.hostname,
        port=port or DEFAULT_PORTS[scheme],
        username=username,
        password=password,
    )
