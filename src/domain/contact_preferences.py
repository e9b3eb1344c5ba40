"""How a patient wants to hear from the centre: per-channel consent, language, quiet hours
and the browsers subscribed to web push. A value the ``Patient`` aggregate keeps
(``Patient.preferences``) and the communication policy and channel workers read.

Consent is per channel, each with when and from where it was last given or withdrawn
(``portal``, ``sms_stop``, ``staff``, ``registration``, ``ris``). The defaults a patient
starts with: e-mail on when an address is known (given at registration, the account's
own), SMS and push off until the patient turns them on (SMS needs express consent; push
needs a subscription anyway).
"""

from dataclasses import dataclass, field, replace
from datetime import datetime

from domain.errors import InvalidValueError
from domain.reminders import QuietHours

EMAIL = "email"
SMS = "sms"
PUSH = "push"
CHANNELS = (EMAIL, SMS, PUSH)
LANGUAGES = ("en", "es")
SOURCES = ("portal", "sms_stop", "sms_start", "staff", "registration", "ris", "provider")
MAX_PUSH_SUBSCRIPTIONS = 10


@dataclass(frozen=True)
class Consent:
    """One channel's consent as last given or withdrawn."""

    channel: str
    granted: bool
    at: datetime
    source: str

    def __post_init__(self) -> None:
        if self.channel not in CHANNELS:
            raise InvalidValueError(f"channel must be one of {', '.join(CHANNELS)}")
        if self.source not in SOURCES:
            raise InvalidValueError(f"consent source must be one of {', '.join(SOURCES)}")


@dataclass(frozen=True)
class PushSubscription:
    """One browser's push subscription (``PushSubscription.toJSON()``): its endpoint URL
    and keys (base64url ``p256dh`` and ``auth``)."""

    endpoint: str
    p256dh: str
    auth: str
    added_at: datetime


@dataclass(frozen=True)
class ContactPreferences:
    """The whole of a patient's preferences at one moment."""

    consents: tuple[Consent, ...] = ()
    language: str = "en"
    quiet_hours: QuietHours | None = None
    push_subscriptions: tuple[PushSubscription, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.language not in LANGUAGES:
            raise InvalidValueError(f"language must be one of {', '.join(LANGUAGES)}")

    def consent(self, channel: str) -> Consent | None:
        """The channel's consent as last given or withdrawn; None when never asked."""
        return next((c for c in self.consents if c.channel == channel), None)

    def allows(self, channel: str) -> bool:
        """Whether the patient consented to ``channel`` (push also needs a subscription)."""
        consent = self.consent(channel)
        if consent is None or not consent.granted:
            return False
        return channel != PUSH or bool(self.push_subscriptions)

    def with_consent(self, consent: Consent) -> "ContactPreferences":
        others = tuple(c for c in self.consents if c.channel != consent.channel)
        return replace(self, consents=(*others, consent))

    def with_subscription(self, subscription: PushSubscription) -> "ContactPreferences":
        """The subscription added (replacing one of the same endpoint); the oldest dropped
        beyond ``MAX_PUSH_SUBSCRIPTIONS``."""
        kept = tuple(s for s in self.push_subscriptions if s.endpoint != subscription.endpoint)
        subscriptions = (*kept, subscription)[-MAX_PUSH_SUBSCRIPTIONS:]
        return replace(self, push_subscriptions=subscriptions)

    def without_subscription(self, endpoint: str) -> "ContactPreferences":
        kept = tuple(s for s in self.push_subscriptions if s.endpoint != endpoint)
        return replace(self, push_subscriptions=kept)
