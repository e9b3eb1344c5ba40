"""What the SMS provider posts to us: delivery status callbacks and the messages patients
send to our number (STOP, START, HELP).

Nobody signs in to post these: each request is authenticated by the provider's
signature over the full public URL it posted to (``PUBLIC_BASE_URL`` + path + query) and
its form, checked through ``SmsCallbackReader`` before anything is read. A bad or
missing signature is ``BadSignatureError`` (403 ``bad_signature``).

A status callback names its delivery in the URL (``?delivery=<id>``, set when the
message was sent) and is recorded on it as the provider's receipt. STOP withdraws SMS
consent and START gives it again, through the preferences service (``SmsConsent``);
HELP is answered with the centre's name.
"""

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID
from xml.sax.saxutils import escape

import structlog
from eventsourcing.persistence import IntegrityError

from application.errors import ConcurrencyError
from application.ports import Clock
from application.ris.deliveries import Deliveries
from domain.context import Actor
from domain.errors import DomainError

log = structlog.get_logger(__name__)

STOP, START, HELP = "stop", "start", "help"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


class BadSignatureError(DomainError):
    code = "bad_signature"


@dataclass(frozen=True)
class StatusReport:
    """A delivery status callback: the provider's message id, its status and error code."""

    message_sid: str
    status: str
    error_code: str


@dataclass(frozen=True)
class InboundSms:
    """A message a phone sent to our number; ``keyword`` is ``stop``, ``start``, ``help``
    or None."""

    message_sid: str
    sender: str
    keyword: str | None


class SmsCallbackReader(ABC):
    """The provider's side of callbacks: signatures and the fields of its forms."""

    @abstractmethod
    def signed(self, url: str, params: Mapping[str, str], signature: str) -> bool:
        """Whether ``signature`` is the provider's over ``url`` and ``params``."""

    @abstractmethod
    def status(self, params: Mapping[str, str]) -> StatusReport:
        """The status callback in ``params``; InvalidValueError when it is not one."""

    @abstractmethod
    def inbound(self, params: Mapping[str, str]) -> InboundSms:
        """The inbound message in ``params``; InvalidValueError when it is not one."""


class SmsConsent(Protocol):
    """What the preferences service does for STOP and START (``services.preferences``)."""

    def sms_stop(self, phone: str, at: datetime, actor: Actor) -> object: ...

    def sms_start(self, phone: str, at: datetime, actor: Actor) -> object: ...


class SmsHooks:
    """Checks and applies the provider's callbacks."""

    def __init__(
        self,
        deliveries: Deliveries,
        reader: SmsCallbackReader,
        clock: Clock,
        *,
        public_base_url: str,
        centre_name: str,
        consent: SmsConsent | None = None,
    ) -> None:
        self.deliveries = deliveries
        self.reader = reader
        self.clock = clock
        self.public_base_url = public_base_url.rstrip("/")
        self.centre_name = centre_name
        self.consent = consent

    def check(self, path_and_query: str, params: Mapping[str, str], signature: str) -> None:
        """Refuse (BadSignatureError) a request the provider did not sign."""
        url = self.public_base_url + path_and_query
        if not self.reader.signed(url, params, signature):
            raise BadSignatureError("the request is not signed by the SMS provider")

    def record_status(
        self, delivery_id: UUID, params: Mapping[str, str], actor: Actor
    ) -> UUID | None:
        """Record a status callback on its delivery; the patient it was sent to (for the
        access log), if any. NotFoundError for an unknown delivery."""
        report = self.reader.status(params)
        for _ in range(3):
            delivery = self.deliveries.delivery(delivery_id)
            delivery.record_receipt(
                provider_id=report.message_sid,
                status=report.status,
                code=report.error_code,
                at=self.clock.now(),
                meta=actor.meta(),
            )
            try:
                self.deliveries.save(delivery)
            except IntegrityError:
                continue  # the worker recorded its attempt meanwhile: read it again
            log.info("sms_receipt_recorded", delivery_id=str(delivery_id), status=report.status)
            return _patient(delivery.recipient)
        raise ConcurrencyError("the delivery is being changed elsewhere; try again")

    def inbound(self, params: Mapping[str, str], actor: Actor) -> str:
        """Apply an inbound message; the TwiML to answer it with."""
        message = self.reader.inbound(params)
        now = self.clock.now()
        change = {STOP: "sms_stop", START: "sms_start"}.get(message.keyword or "")
        if change is not None:
            apply = getattr(self.consent, change, None)
            if apply is not None:
                apply(message.sender, now, actor)
            log.info("sms_keyword", keyword=message.keyword, applied=apply is not None)
            return EMPTY_TWIML
        if message.keyword == HELP:
            return twiml(
                f"{self.centre_name}: appointment messages. Reply STOP to stop them,"
                " START to get them again."
            )
        return EMPTY_TWIML


def twiml(text: str) -> str:
    """A TwiML answer that replies with ``text``."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f"<Response><Message>{escape(text)}</Message></Response>"
    )


def _patient(recipient: str) -> UUID | None:
    try:
        return UUID(recipient)
    except ValueError:
        return None
