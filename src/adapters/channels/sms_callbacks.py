"""What Twilio posts to us: delivery status callbacks and inbound messages.

The API route calls ``valid_signature`` first (through ``TwilioCallbacks``, the
application's ``SmsCallbackReader``) and refuses (403) anything that fails
it: the ``X-Twilio-Signature`` header is an HMAC of the full URL Twilio posted to and the
form's parameters under the account's auth token (``RequestValidator``). Behind a proxy,
the URL must be the public one Twilio used, not the one the process sees.

Inbound keywords are Twilio's standard sets: a message that is only the keyword (any
case, surrounding spaces and a final ``.`` or ``!`` ignored) opts out, opts back in or
asks for help. When the Messaging Service has Advanced Opt-Out, Twilio names the
keyword's type itself (``OptOutType``), and that wins.
"""

from collections.abc import Mapping
from dataclasses import dataclass

from twilio.request_validator import RequestValidator

from application.sms_hooks import InboundSms as InboundMessage
from application.sms_hooks import SmsCallbackReader, StatusReport
from domain.errors import InvalidValueError

STOP, START, HELP = "stop", "start", "help"
OPT_OUT_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
OPT_IN_WORDS = frozenset({"START", "YES", "UNSTOP"})
HELP_WORDS = frozenset({"HELP", "INFO"})
FINAL_STATUSES = frozenset({"delivered", "undelivered", "failed", "read", "canceled"})


class CallbackError(ValueError):
    """A callback without the fields Twilio always sends."""


def valid_signature(auth_token: str, url: str, params: Mapping[str, str], signature: str) -> bool:
    """Whether ``signature`` (the X-Twilio-Signature header) signs ``url`` and ``params``."""
    if not signature:
        return False
    return bool(RequestValidator(auth_token).validate(url, dict(params), signature))


def keyword(body: str, opt_out_type: str = "") -> str | None:
    """``stop``, ``start``, ``help`` or None for an inbound message body."""
    named = opt_out_type.strip().lower()
    if named in (STOP, START, HELP):
        return named
    word = body.strip().rstrip(".!").strip().upper()
    if word in OPT_OUT_WORDS:
        return STOP
    if word in OPT_IN_WORDS:
        return START
    if word in HELP_WORDS:
        return HELP
    return None


@dataclass(frozen=True)
class InboundSms:
    """A message a phone sent to our number; ``keyword`` as ``keyword()`` reads it."""

    message_sid: str
    sender: str
    to: str
    body: str
    keyword: str | None


@dataclass(frozen=True)
class SmsStatus:
    """A delivery status callback: the message SID we got when sending, its status
    (queued, sent, delivered, undelivered, failed, ...) and Twilio's error code."""

    message_sid: str
    status: str
    error_code: str

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def delivered(self) -> bool:
        return self.status in ("delivered", "read")


def _required(params: Mapping[str, str], *names: str) -> list[str]:
    missing = [name for name in names if not params.get(name)]
    if missing:
        raise CallbackError(f"missing {', '.join(missing)}")
    return [params[name] for name in names]


def parse_inbound(params: Mapping[str, str]) -> InboundSms:
    """The inbound message in Twilio's form parameters."""
    sid, sender, to = _required(params, "MessageSid", "From", "To")
    body = params.get("Body", "")
    return InboundSms(sid, sender, to, body, keyword(body, params.get("OptOutType", "")))


def parse_status(params: Mapping[str, str]) -> SmsStatus:
    """The status callback in Twilio's form parameters."""
    sid, status = _required(params, "MessageSid", "MessageStatus")
    return SmsStatus(sid, status.lower(), params.get("ErrorCode", ""))


class TwilioCallbacks(SmsCallbackReader):
    """Twilio's callbacks, checked with the account's auth token (``TWILIO_AUTH_TOKEN``;
    without one nothing is accepted)."""

    def __init__(self, auth_token: str) -> None:
        self._auth_token = auth_token

    def signed(self, url: str, params: Mapping[str, str], signature: str) -> bool:
        return bool(self._auth_token) and valid_signature(self._auth_token, url, params, signature)

    def status(self, params: Mapping[str, str]) -> StatusReport:
        try:
            found = parse_status(params)
        except CallbackError as error:
            raise InvalidValueError(f"not a status callback: {error}") from None
        return StatusReport(found.message_sid, found.status, found.error_code)

    def inbound(self, params: Mapping[str, str]) -> InboundMessage:
        try:
            found = parse_inbound(params)
        except CallbackError as error:
            raise InvalidValueError(f"not an inbound message: {error}") from None
        return InboundMessage(found.message_sid, found.sender, found.keyword)
