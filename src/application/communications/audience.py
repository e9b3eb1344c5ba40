"""Who hears a notice and how: the channels a patient consented to that can carry the
notice's kind, the language, and the quiet hours to respect. Pure functions of the
patient (as the registry holds them) and the published templates.

Until a patient has stored preferences (``Patient.preferences``), the defaults of
``domain.contact_preferences`` apply: e-mail when the patient has an address, nothing
else, in English, with the centre's default quiet hours.
"""

from dataclasses import dataclass
from functools import cache
from typing import Any

from application.notices.renderer import NoticeTemplates
from domain.contact_preferences import EMAIL, SMS, ContactPreferences, e164
from domain.reminders import QuietHours

DEFAULT_LANGUAGE = "en"


@dataclass(frozen=True)
class Audience:
    """How one notice reaches one patient: ``channels`` (empty: undeliverable, and
    ``reason`` says why), ``language``, ``quiet_hours`` (None: none) read in ``zone``
    (None: the location's)."""

    channels: tuple[str, ...]
    language: str
    quiet_hours: QuietHours | None
    zone: str | None
    reason: str = ""


def consented(patient: Any) -> tuple[str, ...]:
    """The channels the patient consented to and that have an address to go to (SMS: a
    phone that reads as E.164; push: a subscription, which ``allows`` checks)."""
    preferences: ContactPreferences = patient.preferences
    addresses = {EMAIL: bool(patient.notice_email), SMS: e164(patient.phone or "") is not None}
    return tuple(
        channel
        for channel in (EMAIL, SMS, "push")
        if preferences.allows(channel) and addresses.get(channel, True)
    )


def audience(
    patient: Any, kind: str, templates: NoticeTemplates, default_quiet_hours: QuietHours | None
) -> Audience:
    """The channels, language and quiet hours for a notice of ``kind`` to ``patient``."""
    preferences: ContactPreferences = patient.preferences
    language = preferences.language
    quiet = preferences.quiet_hours if preferences.quiet_hours is not None else default_quiet_hours
    zone = preferences.zone
    carriers = _carriers(templates, kind)
    allowed = consented(patient)
    channels = tuple(c for c in carriers if c in allowed)
    reason = "" if channels else _no_channel(preferences, allowed, kind)
    return Audience(channels, language, quiet, zone, reason)


def _no_channel(preferences: ContactPreferences, allowed: tuple[str, ...], kind: str) -> str:
    """Why a notice of ``kind`` has no channel to go by."""
    if allowed:
        return f"no {kind} template for {', '.join(allowed)} (the channels consented)"
    consents = [preferences.consent(c) for c in (EMAIL, SMS, "push")]
    granted = [c.channel for c in consents if c is not None and c.granted]
    if granted:
        return f"consented to {', '.join(granted)} but no address or subscription for them"
    return "the patient consented to no channel"


@cache
def _carriers(templates: NoticeTemplates, kind: str) -> tuple[str, ...]:
    """The channels with a template for ``kind`` (the published templates do not change
    while the process runs)."""
    return templates.channels(kind)


def language_for(templates: NoticeTemplates, kind: str, channel: str, language: str) -> str:
    """``language`` when the template exists in it, else the default language."""
    return language if templates.versions(kind, channel, language) else DEFAULT_LANGUAGE
