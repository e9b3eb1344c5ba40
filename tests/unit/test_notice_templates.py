"""Notice templates: every kind x channel x language renders what its channel needs, in
its language, with absolute portal links, escaped HTML, no clinical detail where none
may go, SMS within two segments, and the same text again from version + stored data."""

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from application.notices.kinds import (
    KINDS,
    BookingCancelled,
    BookingConfirmation,
    BookingMoved,
    NeedsNewTime,
    NewSecureMessage,
    Notice,
    NoticeError,
    OrderInvitation,
    PasswordReset,
    Reminder,
    ResultAvailable,
    Visit,
    notice_data,
    notice_from_data,
)
from application.notices.links import PortalLinks
from application.notices.renderer import (
    LANGUAGES,
    TEMPLATE_DIR,
    NoticeTemplates,
    RenderedNotice,
    template_digests,
)
from application.notices.sms import GSM_7, UCS_2, sms_encoding, sms_segments
from domain.errors import InvalidValueError

BASE = "https://portal.example.org"
CENTRE = "IBX"
APPOINTMENT = "0b7f9a3e-1111-4c2d-9a55-3f0c2a7d9e10"
ORDER = "6a1e2b3c-2222-4d5e-8f90-112233445566"
THREAD = "9f8e7d6c-3333-4b2a-9c1d-665544332211"
TOKEN = "tok-3k9XbQ2vR7mN1pL8sD4fG6hJ0wE5yT2uI9oP3aZ"  # 43 characters, like 32 random bytes
MADRID = "Europe/Madrid"
# 09:45 in Madrid on Saturday 12 December 2026 (CET)
START = datetime(2026, 12, 12, 8, 45, tzinfo=UTC)
PREVIOUS = datetime(2026, 12, 10, 8, 45, tzinfo=UTC)

templates = NoticeTemplates()


def notices(visit: Visit, *, token: str | None = TOKEN, exam: str = "") -> dict[str, Notice]:
    """One notice of every kind about ``visit`` (two order invitations: with and without
    an activation token)."""
    return {
        "booking_confirmation": BookingConfirmation(visit),
        "reminder": Reminder(visit),
        "order_invitation": OrderInvitation(ORDER, exam_name=exam, activation_token=token),
        "order_invitation_signed_up": OrderInvitation(ORDER, exam_name=exam),
        "result_available": ResultAvailable(),
        "booking_moved": BookingMoved(visit, PREVIOUS),
        "booking_cancelled": BookingCancelled(visit),
        "needs_new_time": NeedsNewTime(visit),
        "new_secure_message": NewSecureMessage(THREAD),
        "password_reset": PasswordReset(TOKEN, valid_minutes=60),
    }


VISIT = Visit(APPOINTMENT, START, MADRID, "Sala Norte", "Calle Mayor 1", "MRI knee", "Fast 6 h.")
SAMPLES = notices(VISIT)
COMBINATIONS = [
    (name, channel, language)
    for name, notice in SAMPLES.items()
    for channel in templates.channels(notice.kind)
    for language in LANGUAGES
]


def render(notice: Notice, channel: str, language: str, **options) -> RenderedNotice:
    options = {"base_url": BASE, "centre_name": CENTRE, **options}
    return templates.render(notice, channel, language, **options)


def everything(rendered: RenderedNotice) -> str:
    return "\n".join(
        [rendered.subject, rendered.text, rendered.html, rendered.title, rendered.body]
    )


def words(rendered: RenderedNotice) -> str:
    """What a reader reads: no tags, addresses or data."""
    text = re.sub(r"<[^>]+>|https?://\S+", " ", everything(rendered))
    for value in (CENTRE, VISIT.location_name, VISIT.location_address, VISIT.exam_name):
        text = text.replace(value, " ")
    return text


# Every combination renders what its channel needs.


def test_every_kind_has_email_and_sms_in_both_languages_and_push_but_for_resets():
    for kind in KINDS:
        expected = ("email", "sms") if kind == "password_reset" else ("email", "sms", "push")
        assert templates.channels(kind) == expected, kind
        for channel in expected:
            assert templates.versions(kind, channel, "en") == (1,)
            assert templates.versions(kind, channel, "es") == (1,)


@pytest.mark.parametrize(("name", "channel", "language"), COMBINATIONS)
def test_each_template_renders_its_channels_fields(name, channel, language):
    notice = SAMPLES[name]

    rendered = render(notice, channel, language)

    assert (rendered.kind, rendered.channel, rendered.language) == (
        notice.kind,
        channel,
        language,
    )
    assert rendered.version == 1
    assert rendered.template_id == f"{notice.kind}/{channel}.{language}.v1"
    assert rendered.url.startswith(BASE + "/")
    if channel == "email":
        assert rendered.subject
        assert "\n" not in rendered.subject
        assert rendered.text.startswith(("Hello,", "Hola:"))
        assert rendered.url in rendered.text
        assert rendered.html.startswith("<!DOCTYPE html>")
        assert f'<html lang="{language}">' in rendered.html
        assert f'href="{rendered.url.replace("&", "&amp;")}"' in rendered.html
        assert CENTRE in rendered.text
        assert CENTRE in rendered.html
    elif channel == "sms":
        assert rendered.text.startswith(f"{CENTRE}: ")
        assert rendered.text.endswith((rendered.url, ".", ")"))
        assert rendered.url in rendered.text
        assert "\n" not in rendered.text
        assert rendered.segments == sms_segments(rendered.text) <= 2
        assert rendered.encoding == sms_encoding(rendered.text)
    else:
        assert rendered.title
        assert rendered.body
        assert rendered.push_data() == {
            "kind": notice.kind,
            "title": rendered.title,
            "body": rendered.body,
            "url": rendered.url,
        }
        assert rendered.text == rendered.html == rendered.subject == ""


@pytest.mark.parametrize(("name", "channel", "language"), COMBINATIONS)
def test_every_link_is_absolute_on_the_base_url(name, channel, language):
    rendered = render(SAMPLES[name], channel, language, base_url="https://imaging.example.net/p")

    links = re.findall(r"https?://[^\s\"<>)]+", everything(rendered) + "\n" + rendered.url)

    assert links
    assert all(link.startswith("https://imaging.example.net/p/") for link in links), links
    assert BASE not in everything(rendered)


@pytest.mark.parametrize(("name", "channel"), sorted({(n, c) for n, c, _ in COMBINATIONS}))
def test_spanish_is_spanish_and_english_is_english(name, channel):
    english = words(render(SAMPLES[name], channel, "en"))
    spanish = words(render(SAMPLES[name], channel, "es"))

    english_words = r"\b(your|you|the|appointment|please|sign in|is|has)\b"
    spanish_words = r"\b(su|sus|tiene|cita|prueba|inicie|para|de|en|le|una)\b"
    assert re.search(english_words, english, re.IGNORECASE)
    assert not re.search(spanish_words, english, re.IGNORECASE), english
    assert re.search(spanish_words, spanish, re.IGNORECASE)
    assert not re.search(english_words, spanish, re.IGNORECASE), spanish


# Times, links and what each kind says.


def test_times_are_written_in_the_locations_zone_with_its_name():
    english = render(BookingConfirmation(VISIT), "email", "en")
    spanish = render(BookingConfirmation(VISIT), "email", "es")
    sms = render(BookingConfirmation(VISIT), "sms", "en")
    new_york = Visit(APPOINTMENT, START, "America/New_York", "Sala Norte")

    assert "Saturday 12 December 2026, 9:45 am CET (Central European Standard Time)" in (
        english.text
    )
    assert "sábado, 12 de diciembre de 2026, 9:45 CET (hora estándar de Europa central)" in (
        spanish.text
    )
    assert english.subject == "Appointment booked: Sat 12 Dec, 9:45 am CET"
    assert "Sat 12 Dec, 9:45 am CET" in sms.text
    assert "Sat 12 Dec, 3:45 am EST" in render(BookingConfirmation(new_york), "sms", "en").text


def test_a_moved_booking_says_both_times():
    text = render(BookingMoved(VISIT, PREVIOUS), "email", "en").text
    assert "Thursday 10 December 2026, 9:45 am CET" in text
    assert "Saturday 12 December 2026, 9:45 am CET" in text


def test_the_reminder_email_carries_the_preparation_as_paragraphs():
    visit = Visit(APPOINTMENT, START, MADRID, "Sala Norte", "", "", "Drink water.\n\nBring\nscans.")

    rendered = render(Reminder(visit), "email", "en")

    assert "How to prepare" in rendered.text
    assert "Drink water.\n\nBring\nscans." in rendered.text
    assert "<p>Drink water.</p>\n<p>Bring<br>\nscans.</p>" in rendered.html
    without = render(Reminder(Visit(APPOINTMENT, START, MADRID, "Sala Norte")), "email", "en")
    assert "How to prepare" not in without.text


@pytest.mark.parametrize(
    ("notice", "path"),
    [
        (OrderInvitation(ORDER, activation_token="a b/c"), "/activate?token=a+b%2Fc"),
        (OrderInvitation(ORDER), f"/book?order={ORDER}"),
        (ResultAvailable(), "/results"),
        (BookingCancelled(VISIT), "/book"),
        (NeedsNewTime(VISIT), f"/appointments/{APPOINTMENT}/reschedule"),
        (BookingConfirmation(VISIT), f"/appointments/{APPOINTMENT}"),
        (NewSecureMessage(THREAD), f"/messages/{THREAD}"),
        (PasswordReset("x&y", 30), "/reset-password?token=x%26y"),
    ],
)
def test_each_kind_links_where_the_patient_acts(notice, path):
    assert render(notice, "sms", "en").url == BASE + path


def test_safety_notices_sent_in_quiet_hours_say_so():
    for notice in (BookingCancelled(VISIT, True), NeedsNewTime(VISIT, True)):
        for channel in ("email", "sms", "push"):
            assert "quiet hours" in everything(render(notice, channel, "en"))
            assert "horas de silencio" in everything(render(notice, channel, "es"))
    assert "quiet hours" not in everything(render(BookingCancelled(VISIT), "email", "en"))


def test_a_password_reset_gives_its_link_and_how_long_it_holds():
    for channel in ("email", "sms"):
        rendered = render(PasswordReset(TOKEN, valid_minutes=45), channel, "en")
        assert f"{BASE}/reset-password?token={TOKEN}" in rendered.text
        assert "45 minutes" in rendered.text


# Injection and clinical detail.


HOSTILE = '<script>alert(1)</script> "><img src=x onerror=alert(2)> & Co'


@pytest.mark.parametrize("language", LANGUAGES)
def test_html_escapes_injected_data(language):
    visit = Visit(APPOINTMENT, START, MADRID, HOSTILE, HOSTILE, HOSTILE, HOSTILE)
    for notice in notices(visit, exam=HOSTILE).values():
        rendered = render(notice, "email", language, centre_name=HOSTILE)
        assert "<script>" not in rendered.html
        assert "<img" not in rendered.html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered.html
        assert "&amp; Co" in rendered.html
        # the text part is not HTML: the data stays as it was given
        assert HOSTILE in rendered.text


SENTINEL_EXAM = "SENTINEL-PROCEDURE-MRI-BRAIN"
SENTINEL_PREP = "SENTINEL-PREPARATION-CONTRAST"
CLINICAL = Visit(APPOINTMENT, START, MADRID, "Sala Norte", "", SENTINEL_EXAM, SENTINEL_PREP)


@pytest.mark.parametrize("language", LANGUAGES)
def test_no_clinical_detail_in_sms_push_or_result_notices(language):
    for notice in notices(CLINICAL, exam=SENTINEL_EXAM).values():
        for channel in templates.channels(notice.kind):
            rendered = render(notice, channel, language)
            if channel == "email" and notice.kind != "result_available":
                continue
            text = everything(rendered) + rendered.url
            assert SENTINEL_EXAM not in text, (notice.kind, channel)
            assert SENTINEL_PREP not in text, (notice.kind, channel)


def test_the_sentinels_do_reach_the_emails_that_may_carry_them():
    # (so the test above can see them when they are there)
    rendered = render(Reminder(CLINICAL), "email", "en")
    assert SENTINEL_EXAM in rendered.text
    assert SENTINEL_PREP in rendered.html


# SMS length.

# The longest data an SMS can meet: a 60-character base URL, a 40-character centre name
# with letters outside GSM-7, 43-character tokens, the longest dates (a zone whose
# abbreviation is an offset, "Wed", "Sept", a two-digit hour) and quiet-hours notes.
LONG_BASE = "https://" + "p" * 48 + ".org"
LONG_CENTRE = "Centro de Diagnóstico por Imagen Señora"[:40].ljust(40, "í")
LONG_VISIT = Visit(
    APPOINTMENT,
    datetime(2026, 9, 16, 12, 45, tzinfo=ZoneInfo("Asia/Kathmandu")),
    "Asia/Kathmandu",
    "L" * 200,
    "A" * 200,
    "E" * 200,
    "P" * 2000,
)


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_sms_stays_within_two_segments_with_the_longest_data(language):
    assert len(LONG_BASE) == 60
    assert len(LONG_CENTRE) == 40
    worst = notices(LONG_VISIT, exam="E" * 200)
    worst["booking_moved"] = BookingMoved(LONG_VISIT, PREVIOUS, outside_quiet_hours=True)
    worst["booking_cancelled"] = BookingCancelled(LONG_VISIT, outside_quiet_hours=True)
    worst["needs_new_time"] = NeedsNewTime(LONG_VISIT, outside_quiet_hours=True)
    worst["password_reset"] = PasswordReset(TOKEN, valid_minutes=1440)
    for notice in worst.values():
        rendered = render(notice, "sms", language, base_url=LONG_BASE, centre_name=LONG_CENTRE)
        assert rendered.segments <= 2, (notice.kind, len(rendered.text), rendered.text)


def test_an_sms_keeps_its_accents_when_they_fit_and_drops_them_when_not():
    short = render(ResultAvailable(), "sms", "es", centre_name="Clínica")
    assert (
        short.text
        == f"Clínica: tiene un resultado disponible. Inicie sesión para verlo: {BASE}/results"
    )
    assert (short.encoding, short.segments) == (UCS_2, 2)

    long = render(Reminder(VISIT), "sms", "es", centre_name="Clínica")
    assert long.text.startswith("Clinica: le recordamos su cita del sab 12 dic, 9:45 CET. Como")
    assert (long.encoding, long.segments) == (GSM_7, 1)


@pytest.mark.parametrize(
    ("text", "encoding", "segments"),
    [
        ("", GSM_7, 1),
        ("a" * 160, GSM_7, 1),
        ("a" * 161, GSM_7, 2),
        ("a" * 306, GSM_7, 2),
        ("a" * 307, GSM_7, 3),
        ("ñ¿¡éü" * 32, GSM_7, 1),  # Spanish letters that GSM-7 has
        ("€" * 80, GSM_7, 1),  # two septets each: 160
        ("€" * 81, GSM_7, 2),
        ("a" * 152 + "€" + "a" * 152, GSM_7, 3),  # the escape and its letter stay together
        ("a" * 151 + "€" + "a" * 152, GSM_7, 2),
        ("á" * 70, UCS_2, 1),
        ("á" * 71, UCS_2, 2),
        ("á" * 134, UCS_2, 2),
        ("á" * 135, UCS_2, 3),
        ("a" * 65 + "\U0001f600" + "a" * 67, UCS_2, 2),
        ("a" * 66 + "\U0001f600" + "a" * 66, UCS_2, 3),  # 134 units, but the pair is not split
    ],
)
def test_sms_segments_are_counted_as_carriers_do(text, encoding, segments):
    assert sms_encoding(text) == encoding
    assert sms_segments(text) == segments


# Versions and reproducibility.


def test_published_template_versions_are_unchanged():
    recorded = json.loads((TEMPLATE_DIR / "manifest.json").read_text())
    current = template_digests()

    changed = sorted(path for path in recorded if current.get(path) != recorded[path])
    unrecorded = {path: digest for path, digest in current.items() if path not in recorded}
    assert not changed, (
        f"published templates changed: {changed}; write the new wording as the next version"
    )
    assert not unrecorded, f"add the new versions to manifest.json: {json.dumps(unrecorded)}"


@pytest.mark.parametrize(("name", "channel", "language"), COMBINATIONS)
def test_the_same_text_renders_again_from_version_and_stored_data(name, channel, language):
    notice = SAMPLES[name]
    first = render(notice, channel, language)

    stored = json.loads(json.dumps(notice_data(notice)))
    again = render(notice_from_data(notice.kind, stored), channel, language, version=1)

    assert again == first


def test_times_survive_storage_with_their_offset():
    stored = notice_data(BookingMoved(VISIT, PREVIOUS))
    assert stored["visit"]["start"] == "2026-12-12T08:45:00+00:00"
    assert notice_from_data("booking_moved", stored) == BookingMoved(VISIT, PREVIOUS)


@pytest.mark.parametrize(
    ("kind", "data"),
    [
        ("no_such_kind", {}),
        ("result_available", {"exam_name": "MRI"}),
        ("password_reset", {"token": "x"}),
        ("booking_confirmation", {"visit": {"appointment_id": "a", "start": "soon"}}),
        ("booking_confirmation", {"visit": "a"}),
    ],
)
def test_data_that_does_not_fit_its_kind_is_refused(kind, data):
    with pytest.raises(NoticeError):
        notice_from_data(kind, data)


def test_unknown_versions_languages_and_channels_are_refused():
    with pytest.raises(NoticeError):
        render(ResultAvailable(), "email", "en", version=2)
    with pytest.raises(NoticeError):
        render(ResultAvailable(), "email", "fr")
    with pytest.raises(NoticeError):
        render(PasswordReset(TOKEN, 30), "push", "en")


def test_a_new_version_is_rendered_by_default_and_the_old_one_on_request(tmp_path: Path):
    # Given a copy of the templates with a second version of one
    for path in TEMPLATE_DIR.glob("*/*.jinja"):
        target = tmp_path / path.relative_to(TEMPLATE_DIR)
        target.parent.mkdir(exist_ok=True)
        target.write_bytes(path.read_bytes())
    (tmp_path / "result_available" / "sms.en.v2.jinja").write_text(
        "{% block text %}{{ centre }}: new result. {{ url }}{% endblock %}"
    )
    copy = NoticeTemplates(tmp_path)
    options = {"base_url": BASE, "centre_name": CENTRE}

    latest = copy.render(ResultAvailable(), "sms", "en", **options)
    first = copy.render(ResultAvailable(), "sms", "en", version=1, **options)

    assert (latest.version, latest.text) == (2, f"{CENTRE}: new result. {BASE}/results")
    assert first == render(ResultAvailable(), "sms", "en")


# Links.


@pytest.mark.parametrize(
    "bad",
    ["portal.example.org", "ftp://portal.example.org", "javascript:alert(1)", f"{BASE}/?a=1", ""],
)
def test_a_base_url_is_an_absolute_http_address(bad):
    with pytest.raises(InvalidValueError):
        PortalLinks(bad)


def test_a_trailing_slash_on_the_base_url_is_dropped():
    assert PortalLinks(BASE + "/").results() == f"{BASE}/results"
    assert PortalLinks(BASE).appointment("a/b") == f"{BASE}/appointments/a%2Fb"
