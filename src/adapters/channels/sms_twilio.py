"""SMS through Twilio's Messages API, with the official ``twilio`` client.

``base_url`` replaces ``https://api.twilio.com`` (tests point it at a local server that
speaks the documented endpoint); the client's own HTTP client does the rest, so the
request is exactly what the library sends to Twilio.

Errors by Twilio error code: 21211 / 21614 (not a valid, or not a mobile, number) ->
permanent ``invalid_recipient``; 21610 (the recipient replied STOP) -> permanent
``unsubscribed``; 429 / 20429 and 5xx -> temporary; 401 / 403 (our credentials) ->
temporary, so fixing them lets the messages go; any other 4xx -> permanent ``rejected``.
Twilio's Messages API has no idempotency key: a resend after ``no_reply`` may send twice,
which the attempt record (ambiguous, with its own small limit) keeps rare and visible.
"""

import logging
import re
from dataclasses import dataclass, field
from typing import Any

import requests
import structlog
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from adapters.channels.http_failures import request_failure
from application.channels import (
    INVALID_RECIPIENT,
    REJECTED,
    SMS,
    UNSUBSCRIBED,
    ChannelSender,
    OutboundMessage,
    PermanentFailure,
    SendOutcome,
    Sent,
    TemporaryFailure,
)

log = structlog.get_logger(__name__)

TWILIO_API = "https://api.twilio.com"
# The client logs every request at INFO; our own line per message says what matters.
_http_log = logging.getLogger("adapters.channels.twilio_http")
_http_log.setLevel(logging.WARNING)
E164 = re.compile(r"\+[1-9][0-9]{6,14}")
INVALID_NUMBER_CODES = {21211, 21614}
UNSUBSCRIBED_CODES = {21610}


class TwilioConfigError(ValueError):
    """Twilio settings that cannot work; the message never holds the auth token."""


@dataclass(frozen=True)
class TwilioConfig:
    """The account, who sends (an E.164 number, or a Messaging Service SID ``MG…``),
    where the API is, and where Twilio should post delivery status (``{delivery_id}`` in
    that URL is replaced by each message's delivery id)."""

    account_sid: str
    auth_token: str = field(repr=False)
    sender: str
    base_url: str = TWILIO_API
    status_callback: str = ""
    timeout: float = 15.0

    def __post_init__(self) -> None:
        if not re.fullmatch(r"AC[0-9a-fA-F]{32}", self.account_sid):
            raise TwilioConfigError("the Twilio account SID is AC followed by 32 hex digits")
        if not self.auth_token:
            raise TwilioConfigError("the Twilio auth token is missing")
        if not (E164.fullmatch(self.sender) or re.fullmatch(r"MG[0-9a-fA-F]{32}", self.sender)):
            raise TwilioConfigError(
                "the SMS sender is an E.164 number (+15550100) or a Messaging Service SID"
            )
        for name, url in (("base URL", self.base_url), ("status callback", self.status_callback)):
            if url and not re.match(r"https?://[^/\s]+", url):
                raise TwilioConfigError(f"the Twilio {name} must be an http(s) URL")
        if self.timeout <= 0:
            raise TwilioConfigError("the Twilio timeout must be positive")


class RebasedHttpClient(TwilioHttpClient):  # type: ignore[misc]  # twilio ships no types
    """Twilio's HTTP client, sending what it would send to api.twilio.com to ``base_url``."""

    def __init__(self, base_url: str, timeout: float) -> None:
        super().__init__(timeout=timeout, logger=_http_log)
        self.base_url = base_url.rstrip("/")

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        if url.startswith(TWILIO_API):
            url = self.base_url + url[len(TWILIO_API) :]
        return super().request(method, url, *args, **kwargs)


def error_outcome(status: int, code: int | None, message: str) -> SendOutcome:
    """What an error answer of the Messages API means for the message."""
    provider_code = str(code or status)
    reason = message[:300]
    if code in INVALID_NUMBER_CODES:
        return PermanentFailure(INVALID_RECIPIENT, reason, provider_code)
    if code in UNSUBSCRIBED_CODES:
        return PermanentFailure(UNSUBSCRIBED, reason, provider_code)
    if status == 429 or code == 20429:
        return TemporaryFailure("rate_limited", reason, provider_code)
    if status >= 500:
        return TemporaryFailure("provider_unavailable", reason, provider_code)
    if status in (401, 403):
        return TemporaryFailure("provider_auth", reason, provider_code)
    return PermanentFailure(REJECTED, reason, provider_code)


class TwilioSmsSender(ChannelSender):
    """Sends each SMS with one Messages API call; the provider id is the message SID."""

    channel = SMS

    def __init__(self, config: TwilioConfig) -> None:
        self.config = config
        self.client = Client(
            config.account_sid,
            config.auth_token,
            http_client=RebasedHttpClient(config.base_url, config.timeout),
        )

    def send(self, message: OutboundMessage) -> SendOutcome:
        self.check(message)
        if not E164.fullmatch(message.recipient):
            return PermanentFailure(INVALID_RECIPIENT, "not an E.164 phone number")
        outcome = self._create(message)
        log.info(
            "sms_handed_over",
            delivery_id=str(message.delivery_id),
            outcome=outcome.kind,
            code=getattr(outcome, "provider_code", ""),
        )
        return outcome

    def _create(self, message: OutboundMessage) -> SendOutcome:
        config = self.config
        sender: dict[str, str] = (
            {"messaging_service_sid": config.sender}
            if config.sender.startswith("MG")
            else {"from_": config.sender}
        )
        if config.status_callback:  # ``{delivery_id}`` in it names the message's delivery
            sender["status_callback"] = config.status_callback.replace(
                "{delivery_id}", str(message.delivery_id)
            )
        try:
            created = self.client.messages.create(to=message.recipient, body=message.text, **sender)
        except (TwilioRestException, TwilioServiceException) as error:
            detail = getattr(error, "msg", "") or getattr(error, "detail", "") or ""
            return error_outcome(error.status, error.code, str(detail))
        except requests.RequestException as error:
            return request_failure(error)
        return Sent(provider_id=str(created.sid))
