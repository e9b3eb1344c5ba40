"""The port for patient channels (e-mail, SMS, web push) and the values crossing it.

A worker hands one ``OutboundMessage`` (already rendered: templates are not the
channel's business) to the ``ChannelSender`` of its channel and gets one outcome back:

- ``Sent``: the provider took it; ``provider_id`` is its receipt (SMTP Message-ID,
  Twilio message SID, the push service's message URL);
- ``TemporaryFailure``: try again later, with backoff (at the earliest after
  ``retry_after`` when the provider said so);
- ``PermanentFailure``: retrying cannot help (invalid number, unsubscribed, push
  subscription gone); ``code`` says which, for staff and for the caller's own follow-up
  (e.g. remove a gone push subscription, record an SMS opt-out).

A sender never raises for anything the provider or the network does: every such
failure is one of the outcomes above. ``attempt_outcome`` maps them onto the attempt
outcomes of ``MessageDelivery`` so the channels share the HL7 path's retries, dead
letters and redrive.

The delivery id is the idempotency key: every send of one delivery carries it (the
e-mail Message-ID, the push Topic), so a resend after a crash is recognisable.
"""

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal
from uuid import UUID

from domain.ris.message_delivery import (
    ACCEPTED,
    NO_ANSWER,
    NOT_SENT,
    REJECTED_PERMANENT,
    REJECTED_RETRYABLE,
)

EMAIL = "email"
SMS = "sms"
PUSH = "push"
PATIENT_CHANNELS = (EMAIL, SMS, PUSH)

URGENCIES = ("very-low", "low", "normal", "high")  # RFC 8030 section 5.3

# Machine codes of temporary failures that say how far the message got.
NOT_CONNECTED = "not_connected"  # nothing reached the provider
NO_REPLY = "no_reply"  # the request left us, the answer did not come: it may have been taken

# Machine codes of permanent failures (the provider's own code goes in provider_code).
INVALID_RECIPIENT = "invalid_recipient"
UNSUBSCRIBED = "unsubscribed"
SUBSCRIPTION_GONE = "subscription_gone"
TOO_LARGE = "too_large"
REJECTED = "rejected"


class MessageError(ValueError):
    """An ``OutboundMessage`` that cannot be built: a bug in the caller, not a send failure."""


@dataclass(frozen=True)
class PushKeys:
    """The browser's keys of a push subscription (``PushSubscription.toJSON().keys``):
    base64url ``p256dh`` (its P-256 public key) and ``auth`` (its 16-byte secret)."""

    p256dh: str
    auth: str


@dataclass(frozen=True)
class PushNotice:
    """What a push carries besides the endpoint: the JSON ``data`` the service worker
    shows, the subscription's keys, how long the push service keeps it (``ttl`` seconds)
    and how urgent it is."""

    keys: PushKeys
    data: dict[str, str]
    ttl: int = 86_400
    urgency: str = "normal"


@dataclass(frozen=True)
class OutboundMessage:
    """One rendered message for one recipient over one channel.

    ``recipient`` is an e-mail address, an E.164 phone number or a push endpoint URL.
    E-mail needs ``subject`` and ``text`` (``html`` optional); SMS needs ``text``; push
    needs ``push``. ``language`` is the BCP 47 tag the message was rendered in.
    """

    delivery_id: UUID
    channel: str
    recipient: str
    language: str = "en"
    subject: str = ""
    text: str = ""
    html: str = ""
    push: PushNotice | None = None

    def __post_init__(self) -> None:
        if self.channel not in PATIENT_CHANNELS:
            raise MessageError(f"channel must be one of {', '.join(PATIENT_CHANNELS)}")
        if not self.recipient.strip():
            raise MessageError("a message needs a recipient")
        if self.channel == EMAIL and not (self.subject.strip() and self.text.strip()):
            raise MessageError("an e-mail needs a subject and a text part")
        if "\r" in self.subject or "\n" in self.subject:
            raise MessageError("a subject is one line")
        if self.channel == SMS and not self.text.strip():
            raise MessageError("an SMS needs a text")
        if self.channel == PUSH:
            if self.push is None:
                raise MessageError("a push needs its notice (keys and data)")
            if self.push.urgency not in URGENCIES:
                raise MessageError(f"urgency must be one of {', '.join(URGENCIES)}")
            if self.push.ttl < 0:
                raise MessageError("a push TTL is zero or more seconds")


@dataclass(frozen=True)
class Sent:
    """The provider accepted the message; ``provider_id`` is its receipt."""

    provider_id: str
    kind: Literal["sent"] = field(default="sent", init=False)


@dataclass(frozen=True)
class TemporaryFailure:
    """Worth another try later. ``code`` is ours (``not_connected``, ``no_reply``,
    ``rate_limited``, ``provider_unavailable``, ...); ``provider_code`` the provider's
    (an SMTP reply code, a Twilio error code, an HTTP status)."""

    code: str
    reason: str
    provider_code: str = ""
    retry_after: timedelta | None = None
    kind: Literal["temporary_failure"] = field(default="temporary_failure", init=False)


@dataclass(frozen=True)
class PermanentFailure:
    """Retrying cannot help; ``code`` is one of ``invalid_recipient``, ``unsubscribed``,
    ``subscription_gone``, ``too_large``, ``rejected``."""

    code: str
    reason: str
    provider_code: str = ""
    kind: Literal["permanent_failure"] = field(default="permanent_failure", init=False)


SendOutcome = Sent | TemporaryFailure | PermanentFailure


class ChannelSender(ABC):
    """Sends messages of one channel through one provider (or into a development folder)."""

    channel: str

    @abstractmethod
    def send(self, message: OutboundMessage) -> SendOutcome:
        """Hand ``message`` to the provider once and say what came of it. Never raises for
        a provider or network failure; raises ``MessageError`` for a message of another
        channel."""

    def check(self, message: OutboundMessage) -> None:
        """Refuse a message meant for another channel (a wiring bug)."""
        if message.channel != self.channel:
            raise MessageError(f"a {self.channel} sender got a {message.channel} message")


def attempt_outcome(outcome: SendOutcome) -> tuple[str, str, str]:
    """``(outcome, code, detail)`` for ``MessageDelivery.record_attempt``: sent is
    accepted; a permanent failure is rejected (dead-lettered at once); a temporary one
    is not-sent, no-answer (ambiguous, with its own smaller limit) or retryable."""
    match outcome:
        case Sent(provider_id=provider_id):
            return ACCEPTED, "sent", provider_id
        case PermanentFailure(code=code, reason=reason):
            return REJECTED_PERMANENT, code, reason
        case TemporaryFailure(code=code, reason=reason) if code == NOT_CONNECTED:
            return NOT_SENT, code, reason
        case TemporaryFailure(code=code, reason=reason) if code == NO_REPLY:
            return NO_ANSWER, code, reason
        case TemporaryFailure(code=code, reason=reason):
            return REJECTED_RETRYABLE, code, reason
