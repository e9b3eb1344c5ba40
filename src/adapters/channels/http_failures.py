"""What a failed HTTP request (``requests``, under both the Twilio client and pywebpush)
means for the message: nothing left us, or it left and no answer came back."""

from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import requests
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

from application.channels import NO_REPLY, NOT_CONNECTED, TemporaryFailure

_NOT_CONNECTED = (NewConnectionError, ConnectTimeoutError, NameResolutionError)


def request_failure(error: requests.RequestException) -> TemporaryFailure:
    """``not_connected`` when the request never reached the provider (refused, no route,
    name not found, TLS handshake failed, connect timeout); ``no_reply`` otherwise (a read
    timeout or a dropped connection after the request went out: it may have been taken)."""
    reason = getattr(error.args[0], "reason", None) if error.args else None
    if isinstance(error, requests.ConnectTimeout | requests.exceptions.SSLError) or isinstance(
        reason, _NOT_CONNECTED
    ):
        return TemporaryFailure(code=NOT_CONNECTED, reason=type(error).__name__)
    return TemporaryFailure(code=NO_REPLY, reason=type(error).__name__)


def retry_after(value: str | None, now: datetime | None = None) -> timedelta | None:
    """A ``Retry-After`` header (seconds, or an HTTP date) as a delay; None when absent or
    unreadable."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return timedelta(seconds=int(text))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(timedelta(0), when - (now or datetime.now(UTC)))
