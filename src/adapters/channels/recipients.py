"""Who a notice goes to, looked up when it is sent (not when it was queued): the patient's
e-mail address, phone and push subscriptions, their consent per channel, quiet hours and
the zone those are read in. A STOP, a withdrawn consent or a changed address takes
effect for every delivery not sent yet.

``preferences_of`` reads ``Patient.preferences`` (a ``ContactPreferences``, with the
defaults ``domain.contact_preferences`` describes until the patient chooses). SMS goes to
the record's phone read as E.164.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from application.channels import EMAIL, PUSH, SMS, PushKeys
from application.notices.envelope import NoticeEnvelope
from domain.contact_preferences import ContactPreferences, e164
from domain.reminders import QuietHours

PreferencesOf = Callable[[Any], ContactPreferences]
PatientLookup = Callable[[UUID], Any]  # the surviving Patient, or None


def preferences_of(patient: Any) -> ContactPreferences:
    """The patient's preferences as they stand (``Patient.preferences``)."""
    preferences: ContactPreferences = patient.preferences
    return preferences


@dataclass(frozen=True)
class Address:
    """Where one message goes: an e-mail address, an E.164 number, or a push endpoint
    with its keys."""

    recipient: str
    keys: PushKeys | None = None


def addresses(channel: str, patient: Any, preferences: ContactPreferences) -> list[Address]:
    """The patient's current addresses on ``channel`` (several for push: one per browser)."""
    if channel == EMAIL:
        email = getattr(patient, "notice_email", "") or ""
        return [Address(email)] if email else []
    if channel == SMS:
        phone = e164(getattr(patient, "phone", "") or "")
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
        preferences.zone or "",
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
