"""Who a notice goes to, looked up when it is sent (not when it was queued): the patient's
e-mail address, phone and push subscriptions, their consent per channel, quiet hours and
the zone those are read in. A STOP, a withdrawn consent or a changed address takes
effect for every delivery not sent yet.

``preferences_of`` reads ``Patient.preferences`` (a ``ContactPreferences``); for a record
that has none it gives the defaults ``domain.contact_preferences`` describes: e-mail on
when an address is known, SMS and push off.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from application.channels import EMAIL, PUSH, SMS, PushKeys
from application.notices.envelope import NoticeEnvelope
from domain.contact_preferences import Consent, ContactPreferences
from domain.reminders import QuietHours

PreferencesOf = Callable[[Any], ContactPreferences]
PatientLookup = Callable[[UUID], Any]  # the surviving Patient, or None
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def preferences_of(patient: Any) -> ContactPreferences:
    """The patient's preferences (``Patient.preferences``), or the defaults of a record
    without any: e-mail granted when the record has an address."""
    stored = getattr(patient, "preferences", None)
    if isinstance(stored, ContactPreferences):
        return stored
    if getattr(patient, "email", ""):
        return ContactPreferences(consents=(Consent(EMAIL, True, EPOCH, "registration"),))
    return ContactPreferences()


@dataclass(frozen=True)
class Address:
    """Where one message goes: an e-mail address, an E.164 number, or a push endpoint
    with its keys."""

    recipient: str
    keys: PushKeys | None = None


def addresses(channel: str, patient: Any, preferences: ContactPreferences) -> list[Address]:
    """The patient's current addresses on ``channel`` (several for push: one per browser)."""
    if channel == EMAIL:
        email = getattr(patient, "email", "") or ""
        return [Address(email)] if email else []
    if channel == SMS:
        phone = getattr(patient, "phone", "") or ""
        return [Address(phone)] if phone else []
    if channel == PUSH:
        return [
            Address(s.endpoint, PushKeys(p256dh=s.p256dh, auth=s.auth))
            for s in preferences.push_subscriptions
        ]
    return []


def quiet_zone(envelope: NoticeEnvelope, preferences: ContactPreferences) -> str:
    """The zone quiet hours are read in: the patient's when their preferences name one,
    else the one the notice was queued with (``extra["zone"]``), else the exam's location's,
    else UTC."""
    for candidate in (
        getattr(preferences, "zone", ""),
        getattr(preferences, "time_zone", ""),
        envelope.extra.get("zone", ""),
        getattr(getattr(envelope.notice, "visit", None), "zone", ""),
    ):
        if isinstance(candidate, str) and candidate:
            return candidate
    return "UTC"


def quiet_hours(preferences: ContactPreferences, default: QuietHours | None) -> QuietHours | None:
    """The patient's quiet hours, the centre's default (``DEFAULT_QUIET_HOURS``) when they
    chose none."""
    return preferences.quiet_hours if preferences.quiet_hours is not None else default
