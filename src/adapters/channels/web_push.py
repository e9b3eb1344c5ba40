"""Web push (RFC 8030, payload encrypted per RFC 8291, signed with VAPID per RFC 8292)
through ``pywebpush``.

The push service's answer decides: 201 (or 200/202) -> sent, the provider id is its
``Location`` (the message resource); 404 / 410 -> permanent ``subscription_gone`` (the
browser dropped the subscription: the caller removes it); 413 -> permanent
``too_large``; 429 and 5xx -> temporary, with the ``Retry-After`` the service gave; any
other 4xx -> permanent ``rejected``. ``Topic`` is the delivery id, so a resend replaces
a copy still waiting at the push service instead of showing twice.
"""

import base64
import binascii
import json
from collections.abc import Callable
from datetime import UTC, datetime

import requests
import structlog
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid
from pywebpush import WebPushException, webpush

from adapters.channels.http_failures import request_failure, retry_after
from application.channels import (
    INVALID_RECIPIENT,
    PUSH,
    REJECTED,
    SUBSCRIPTION_GONE,
    TOO_LARGE,
    ChannelSender,
    MessageError,
    OutboundMessage,
    PermanentFailure,
    PushKeys,
    PushNotice,
    SendOutcome,
    Sent,
    TemporaryFailure,
)

log = structlog.get_logger(__name__)

# 4096-byte record, less the aes128gcm header (86), the AEAD tag (16) and the delimiter (1).
MAX_PAYLOAD = 3993


def valid_keys(keys: PushKeys) -> bool:
    """Whether the subscription's keys are a P-256 point and a 16-byte secret."""
    try:
        point = base64.urlsafe_b64decode(keys.p256dh + "=" * (-len(keys.p256dh) % 4))
        auth = base64.urlsafe_b64decode(keys.auth + "=" * (-len(keys.auth) % 4))
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except (ValueError, binascii.Error):
        return False
    return len(auth) == 16


def status_outcome(status: int, retry_after_header: str | None, now: datetime) -> SendOutcome:
    """What a push service's error status means for the message."""
    code = str(status)
    if status in (404, 410):
        return PermanentFailure(SUBSCRIPTION_GONE, "the push subscription is gone", code)
    if status == 413:
        return PermanentFailure(TOO_LARGE, "the push payload is too large", code)
    if status == 429 or status >= 500:
        kind = "rate_limited" if status == 429 else "provider_unavailable"
        delay = retry_after(retry_after_header, now)
        return TemporaryFailure(kind, f"push service answered {status}", code, delay)
    return PermanentFailure(REJECTED, f"push service answered {status}", code)


class WebPushSender(ChannelSender):
    """Sends each push with VAPID key ``vapid``; ``subject`` (``mailto:`` or ``https:``)
    tells push services whom to contact about our traffic."""

    channel = PUSH

    def __init__(
        self,
        vapid: Vapid,
        subject: str,
        *,
        timeout: float = 10.0,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if not subject.startswith(("mailto:", "https://")):
            raise ValueError("the VAPID subject is a mailto: or https:// URL")
        self.vapid = vapid
        self.subject = subject
        self.timeout = timeout
        self.now = now
        self.session = requests.Session()

    def send(self, message: OutboundMessage) -> SendOutcome:
        self.check(message)
        notice = message.push
        if notice is None:  # OutboundMessage refuses a push without one; mypy cannot know
            raise MessageError("a push needs its notice")
        if not message.recipient.startswith(("https://", "http://")) or not valid_keys(notice.keys):
            return PermanentFailure(INVALID_RECIPIENT, "not a push subscription")
        payload = json.dumps(notice.data, ensure_ascii=False, separators=(",", ":"))
        if len(payload.encode()) > MAX_PAYLOAD:
            return PermanentFailure(TOO_LARGE, f"payload over {MAX_PAYLOAD} bytes")
        outcome = self._post(message, notice, payload)
        log.info(
            "push_handed_over",
            delivery_id=str(message.delivery_id),
            outcome=outcome.kind,
            code=getattr(outcome, "provider_code", ""),
        )
        return outcome

    def _post(self, message: OutboundMessage, notice: PushNotice, payload: str) -> SendOutcome:
        subscription = {
            "endpoint": message.recipient,
            "keys": {"p256dh": notice.keys.p256dh, "auth": notice.keys.auth},
        }
        try:
            response = webpush(
                subscription,
                data=payload,
                vapid_private_key=self.vapid,
                vapid_claims={"sub": self.subject},  # a fresh dict: webpush adds aud and exp
                ttl=notice.ttl,
                headers={"Urgency": notice.urgency, "Topic": message.delivery_id.hex},
                timeout=self.timeout,
                requests_session=self.session,
            )
        except WebPushException as error:
            if error.response is None:  # pywebpush refused the subscription itself
                return PermanentFailure(INVALID_RECIPIENT, error.message[:300])
            return status_outcome(error.status_code or 0, error.retry_after, self.now())
        except requests.RequestException as error:
            return request_failure(error)
        location = response.headers.get("Location", "") if not isinstance(response, str) else ""
        return Sent(provider_id=location)
