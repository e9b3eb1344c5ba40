"""Notification preferences: one document, read with GET and written back whole with PUT.

``channels`` holds e-mail, SMS and push, each with ``enabled`` (the patient's consent),
``since`` and ``source`` (when and how it was last given or withdrawn: ``registration``,
``portal``, ``sms_stop``, ``sms_start``, ``staff``, ``ris``, ``provider``,
``number_changed``, ``merge``) and ``ready``
(whether a message can go now: consented and an address on the record — an e-mail
address, a mobile number for SMS, a subscribed browser for push). A client may PUT back
the document it read: the read-only fields (``since``, ``source``, ``ready``,
``push_subscriptions``) are accepted and ignored.
"""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from api.schemas.common import Strict

QUIET_HOURS_HELP = (
    "HH:MM-HH:MM in the patient's time zone, e.g. 21:00-08:00 (across midnight);"
    " null: none. Reminders falling inside wait until they end; safety notices do not."
)
TIMEZONE_HELP = (
    "an IANA time zone, e.g. America/Chicago, for reading quiet hours; null: the zone of"
    " the centre's location the message is about"
)


class ChannelIn(Strict):
    enabled: bool = Field(description="consent to hear on this channel")
    since: datetime | None = Field(default=None, description="read-only; ignored")
    source: str | None = Field(default=None, max_length=32, description="read-only; ignored")
    ready: bool | None = Field(default=None, description="read-only; ignored")


class ChannelsIn(Strict):
    email: ChannelIn
    sms: ChannelIn
    push: ChannelIn


class PreferencesIn(Strict):
    """The whole document; every preference is set as given."""

    channels: ChannelsIn
    language: Literal["en", "es"]
    quiet_hours: str | None = Field(
        max_length=11,
        pattern=r"^[0-9]{2}:[0-9]{2}-[0-9]{2}:[0-9]{2}$",
        description=QUIET_HOURS_HELP,
    )
    timezone: str | None = Field(max_length=64, description=TIMEZONE_HELP)
    push_subscriptions: int | None = Field(default=None, description="read-only; ignored")


class ChannelOut(BaseModel):
    enabled: bool = Field(description="the patient's consent")
    since: datetime | None = Field(description="when consent was last given or withdrawn")
    source: str | None = Field(description="how: registration, portal, sms_stop, staff, …")
    ready: bool = Field(description="a message can go now (consent and an address)")


class ChannelsOut(BaseModel):
    email: ChannelOut
    sms: ChannelOut
    push: ChannelOut


class PreferencesOut(BaseModel):
    channels: ChannelsOut
    language: Literal["en", "es"]
    quiet_hours: str | None = Field(description=QUIET_HOURS_HELP)
    timezone: str | None = Field(description=TIMEZONE_HELP)
    push_subscriptions: int = Field(description="browsers subscribed to push")


class PushKeysIn(Strict):
    p256dh: str = Field(min_length=1, max_length=200, description="base64url P-256 point")
    auth: str = Field(min_length=1, max_length=100, description="base64url 16-byte secret")


class PushSubscriptionIn(Strict):
    """The browser's ``PushSubscription.toJSON()``."""

    endpoint: str = Field(max_length=2000, pattern=r"^https://[^\s]+$")
    expirationTime: float | None = Field(default=None, description="ignored")
    keys: PushKeysIn


class PublicKeyOut(BaseModel):
    public_key: str = Field(
        description="the VAPID application server key (base64url uncompressed P-256 point):"
        " the applicationServerKey of pushManager.subscribe"
    )


class StaffChannelsIn(Strict):
    email: bool | None = None
    sms: bool | None = None
    push: Literal[False] | None = Field(
        default=None, description="staff may turn push off; only the patient's browser turns it on"
    )


class StaffPreferencesIn(Strict):
    """What the patient asked the front desk to change; what is not sent stays."""

    channels: StaffChannelsIn = Field(default_factory=StaffChannelsIn)
    language: Literal["en", "es"] | None = None
