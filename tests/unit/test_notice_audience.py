"""Who hears a notice and how (``application.communications.audience``): the channels a
patient consented to that have an address and a template for the kind, the language, the
quiet hours; no channel gives a reason, never an empty silence."""

from dataclasses import dataclass
from datetime import UTC, datetime, time

from application.communications.audience import audience
from application.notices.renderer import NoticeTemplates
from domain.contact_preferences import Consent, ContactPreferences, PushSubscription
from domain.reminders import QuietHours

TEMPLATES = NoticeTemplates()
NIGHT = QuietHours(time(21), time(8))
AT = datetime(2026, 11, 30, 12, tzinfo=UTC)
REGISTERED = ContactPreferences(consents=(Consent("email", True, AT, "registration"),))


@dataclass
class Someone:
    """A patient record as the policy reads it; preferences as a new record starts with
    (e-mail consented at registration)."""

    email: str = ""
    phone: str | None = None
    preferences: ContactPreferences = REGISTERED

    @property
    def notice_email(self) -> str:
        return self.email


def consents(
    *channels: str, language: str = "en", quiet_hours: QuietHours | None = None
) -> ContactPreferences:
    given = tuple(Consent(c, True, AT, "portal") for c in channels)
    return ContactPreferences(consents=given, language=language, quiet_hours=quiet_hours)


def test_by_default_email_goes_to_a_patient_with_an_address():
    chosen = audience(Someone(email="a@example.org"), "reminder", TEMPLATES, NIGHT)
    assert (chosen.channels, chosen.language, chosen.quiet_hours) == (("email",), "en", NIGHT)


def test_by_default_a_patient_without_an_address_has_no_channel_and_a_reason():
    chosen = audience(Someone(phone="+12155550100"), "reminder", TEMPLATES, NIGHT)
    assert chosen.channels == ()
    assert chosen.reason == "consented to email but no address or subscription for them"


def test_every_consented_channel_with_an_address_and_a_template_is_used():
    push = PushSubscription("https://push.example/1", "key", "auth", AT)
    preferences = consents("email", "sms", "push", language="es").with_subscription(push)
    patient = Someone(email="a@example.org", phone="+12155550100", preferences=preferences)
    assert audience(patient, "reminder", TEMPLATES, NIGHT).channels == ("email", "sms", "push")
    assert audience(patient, "reminder", TEMPLATES, NIGHT).language == "es"
    # password resets have no push template
    assert audience(patient, "password_reset", TEMPLATES, NIGHT).channels == ("email", "sms")


def test_sms_consent_without_a_number_and_push_without_a_subscription_carry_nothing():
    chosen = audience(Someone(preferences=consents("sms", "push")), "reminder", TEMPLATES, NIGHT)
    assert chosen.channels == ()
    assert chosen.reason == "consented to sms, push but no address or subscription for them"


def test_a_patient_who_withdrew_every_consent_gets_nothing_and_the_reason_says_so():
    withdrawn = ContactPreferences(consents=(Consent("email", False, AT, "portal"),))
    chosen = audience(
        Someone(email="a@example.org", preferences=withdrawn), "reminder", TEMPLATES, NIGHT
    )
    assert (chosen.channels, chosen.reason) == ((), "the patient consented to no channel")


def test_the_patients_own_quiet_hours_replace_the_centres():
    own = QuietHours(time(22), time(7))
    patient = Someone(email="a@example.org", preferences=consents("email", quiet_hours=own))
    assert audience(patient, "reminder", TEMPLATES, NIGHT).quiet_hours == own
