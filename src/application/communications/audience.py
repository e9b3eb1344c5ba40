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
from domain.contact_preferences import EMAIL, SMS, ContactPreferences
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


def preferences_of(patient: Any) -> ContactPreferences | None:
    """The patient's stored preferences, if their record has any."""
    preferences = getattr(patient, "preferences", None)
    return preferences if isinstance(preferences, ContactPreferences) else None


def consented(patient: Any) -> tuple[str, ...]:
    """The channels the patient consented to and that have an address to go to."""
    preferences = preferences_of(patient)
    addresses = {EMAIL: bool(getattr(patient, "email", "")), SMS: bool(patient.phone)}
    if preferences is None:
        return (EMAIL,) if addresses[EMAIL] else ()
    return tuple(
        channel
        for channel in (EMAIL, SMS, "push")
        if preferences.allows(channel) and addresses.get(channel, True)
    )


def audience(
    patient: Any, kind: str, templates: NoticeTemplates, default_quiet_hours: QuietHours | None
) -> Audience:
    """The channels, language and quiet hours for a notice of ``kind`` to ``patient``."""
    preferences = preferences_of(patient)
    language = preferences.language if preferences is not None else DEFAULT_LANGUAGE
    quiet = default_quiet_hours
    if preferences is not None and preferences.quiet_hours is not None:
        quiet = preferences.quiet_hours
    zone = getattr(preferences, "timezone", None) or None
    carriers = _carriers(templates, kind)
    allowed = consented(patient)
    channels = tuple(c for c in carriers if c in allowed)
    reason = "" if channels else _no_channel(preferences, allowed, kind)
    return Audience(channels, language, quiet, zone, reason)


def _no_channel(preferences: ContactPreferences | None, allowed: tuple[str, ...], kind: str) -> str:
    """Why a notice of ``kind`` has no channel to go by."""
    if preferences is None:
        return "the patient has no e-mail address and no other channel consented"
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
