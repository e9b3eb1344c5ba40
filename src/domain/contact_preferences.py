"""How a patient wants to hear from the centre: per-channel consent, language, quiet hours
and the browsers subscribed to web push. A value the ``Patient`` aggregate keeps
(``Patient.preferences``) and the communication policy and channel workers read.

Consent is per channel, each with when and from where it was last given or withdrawn
(``portal``, ``sms_stop``, ``staff``, ``registration``, ``ris``, ``number_changed``). The
defaults a patient starts with: e-mail on when an address is known (given at
registration, the account's own), SMS and push off until the patient turns them on (SMS
needs express consent; push needs a subscription anyway).

SMS consent is express consent for one number: a change of the record's number withdraws
it (``number_changed``), so a granted SMS consent is always for the number on the record.
Consents recorded before this rule (2026-12) whose number changed since have no
withdrawal in the log: they stand for the number the record had when the rule came in
(inventing a withdrawal at replay would rewrite history without a record of it), and the
next change of number withdraws them like any other.

Quiet hours are read in the patient's own ``zone`` when they chose one, else in the zone
of the location the message is about (the centre's).

Phone numbers are compared and texted in E.164 (``e164``): numbers typed with spaces,
dots, dashes or brackets, with ``00`` for ``+``, or as a ten-digit North American number
(the default calling code) all name the same phone.
"""

import re
from dataclasses import dataclass, field, replace
from datetime import datetime

from domain.errors import InvalidValueError
from domain.reminders import QuietHours

EMAIL = "email"
SMS = "sms"
PUSH = "push"
CHANNELS = (EMAIL, SMS, PUSH)
LANGUAGES = ("en", "es")
SOURCES = (
    "portal",
    "sms_stop",
    "sms_start",
    "staff",
    "registration",
    "ris",
    "provider",
    "number_changed",
    "merge",
)
MAX_PUSH_SUBSCRIPTIONS = 10
DEFAULT_CALLING_CODE = "1"  # North America: a bare ten-digit number is +1 and those digits
E164 = re.compile(r"\+[1-9][0-9]{6,14}")
NANP = re.compile(r"1?([2-9][0-9]{2}[2-9][0-9]{6})")
PHONE_PUNCTUATION = re.compile(r"[\s().\-/]")


def e164(phone: str, default_calling_code: str = DEFAULT_CALLING_CODE) -> str | None:
    """``phone`` in E.164 (``+`` and up to 15 digits), or None when it cannot be read as
    one: ``+44 20 7946 0958``, ``0044 20 7946 0958``, ``(215) 555-0111`` and
    ``1-215-555-0111`` (with the default calling code 1) are all understood; letters, a
    national number of another plan, or too few or many digits are not."""
    text = PHONE_PUNCTUATION.sub("", phone)
    if text.startswith("00"):
        text = "+" + text[2:]
    if text.startswith("+"):
        return text if E164.fullmatch(text) else None
    if default_calling_code == "1":
        national = NANP.fullmatch(text)
        return f"+1{national.group(1)}" if national else None
    return None


LOOPBACK_HTTP = re.compile(r"http://(127\.[0-9.]+|localhost|\[::1\])(:[0-9]{1,5})?/")


def push_endpoint_allowed(endpoint: str) -> bool:
    """An https push endpoint, or plain http on a loopback host (a local push service)."""
    if any(c.isspace() for c in endpoint) or len(endpoint) > 2000:
        return False
    return endpoint.startswith("https://") or LOOPBACK_HTTP.match(endpoint) is not None


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
    zone: str | None = None
    """The IANA zone the patient reads quiet hours in; None: the location's."""

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

    def reachable(self, channel: str, *, email: str, phone: str | None) -> bool:
        """Whether a message on ``channel`` can go now: consented, and the record has the
        address (an e-mail address, a phone ``e164`` reads, a subscribed browser)."""
        if not self.allows(channel):
            return False
        if channel == EMAIL:
            return bool(email)
        if channel == SMS:
            return phone is not None and e164(phone) is not None
        return True

    def with_consent(self, consent: Consent) -> "ContactPreferences":
        others = tuple(c for c in self.consents if c.channel != consent.channel)
        return replace(self, consents=(*others, consent))

    def with_language(self, language: str) -> "ContactPreferences":
        return replace(self, language=language)

    def with_quiet_hours(self, quiet_hours: QuietHours | None) -> "ContactPreferences":
        return replace(self, quiet_hours=quiet_hours)

    def with_zone(self, zone: str | None) -> "ContactPreferences":
        return replace(self, zone=zone)

    def with_subscription(self, subscription: PushSubscription) -> "ContactPreferences":
        """The subscription added (replacing one of the same endpoint); the oldest dropped
        beyond ``MAX_PUSH_SUBSCRIPTIONS``."""
        kept = tuple(s for s in self.push_subscriptions if s.endpoint != subscription.endpoint)
        subscriptions = (*kept, subscription)[-MAX_PUSH_SUBSCRIPTIONS:]
        return replace(self, push_subscriptions=subscriptions)

    def without_subscription(self, endpoint: str) -> "ContactPreferences":
        kept = tuple(s for s in self.push_subscriptions if s.endpoint != endpoint)
        return replace(self, push_subscriptions=kept)
