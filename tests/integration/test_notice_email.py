"""Notices over e-mail, from a queued delivery to a real SMTP server on loopback
(aiosmtpd): what arrives, and what the worker decides at the time of sending (consent,
quiet hours, the template version the notice was queued with)."""

from datetime import UTC, datetime, timedelta

import pytest

from adapters.channels.email_smtp import SmtpSender
from adapters.channels.smtp_url import parse_smtp_url
from application.notices.kinds import PasswordReset
from tests.integration.notices import (
    BASE_URL,
    CENTRE,
    NOON,
    Preferences,
    channel_worker,
    new_patient,
    queue_notice,
    reminder,
    send_current,
)

pytestmark = pytest.mark.integration

FROM = "Riverside Imaging <no-reply@centre.example>"


def smtp(server) -> dict[str, SmtpSender]:
    return {"email": SmtpSender(parse_smtp_url(f"smtp://127.0.0.1:{server.port}"), FROM)}


def test_a_reminder_arrives_in_the_patients_language_with_both_parts(
    runtime, client, clock, smtp_server
):
    # Given a patient with an e-mail address and a reminder queued in Spanish
    clock.set(NOON)
    patient = new_patient(client, "ana@example.org")
    delivery = queue_notice(runtime, patient, "email", language="es")

    # When the worker sends it
    outcome = send_current(channel_worker(runtime, smtp(smtp_server)), runtime, delivery.id)

    # Then the SMTP server got one message for the patient: Spanish subject and both parts
    assert outcome == "accepted"
    [mail] = smtp_server.received
    assert mail.rcpt_tos == ["ana@example.org"]
    email = mail.message
    assert email["Message-ID"] == f"<{delivery.id}@centre.example>"
    assert email["Content-Language"] == "es"
    assert email["Subject"].startswith("Recordatorio: su cita del ")
    text = email.get_body(("plain",)).get_content()
    html = email.get_body(("html",)).get_content()
    assert CENTRE in text
    assert "Riverside" in text
    assert f"{BASE_URL}/appointments/" in text
    assert '<html lang="es">' in html
    # And the delivery is acknowledged with the message id as its receipt
    sent = runtime.services.deliveries.deliveries.delivery(delivery.id)
    assert sent.status == "acknowledged"
    assert sent.last_detail == email["Message-ID"]


def test_consent_withdrawn_after_queueing_refuses_the_delivery_and_sends_nothing(
    runtime, client, clock, smtp_server
):
    # Given a reminder queued while the patient allowed e-mail
    clock.set(NOON)
    patient = new_patient(client, "ben@example.org")
    preferences = Preferences(runtime)
    preferences.grant(patient, "email")
    delivery = queue_notice(runtime, patient, "email")

    # When the patient turns e-mail off before it goes
    preferences.withdraw(patient, "email")
    outcome = send_current(channel_worker(runtime, smtp(smtp_server)), runtime, delivery.id)

    # Then nothing was sent and the delivery ended, refused for want of consent
    assert outcome == "rejected"
    assert smtp_server.received == []
    refused = runtime.services.deliveries.deliveries.delivery(delivery.id)
    assert refused.status == "dead_lettered"
    assert refused.last_code == "no_consent"


def test_quiet_hours_hold_a_reminder_until_they_end(runtime, client, clock, smtp_server):
    # Given a patient whose quiet hours are 21:00-08:00 and 23:30 in Madrid
    late = datetime(2026, 12, 2, 22, 30, tzinfo=UTC)
    clock.set(late)
    patient = new_patient(client, "carla@example.org")
    preferences = Preferences(runtime)
    preferences.grant(patient, "email", quiet="21:00-08:00")
    delivery = queue_notice(runtime, patient, "email", reminder("Europe/Madrid"))
    worker = channel_worker(runtime, smtp(smtp_server))

    # When the worker gets it
    outcome = send_current(worker, runtime, delivery.id)

    # Then it is held until 08:00 Madrid time (07:00 UTC) and nothing was sent
    assert outcome == "held"
    assert smtp_server.received == []
    held = runtime.services.deliveries.deliveries.delivery(delivery.id)
    assert held.next_attempt_at == datetime(2026, 12, 3, 7, 0, tzinfo=UTC)
    assert not held.is_due(late + timedelta(hours=8))

    # And once the quiet hours are over it goes
    clock.set(datetime(2026, 12, 3, 7, 0, tzinfo=UTC))
    assert send_current(worker, runtime, delivery.id) == "accepted"
    assert len(smtp_server.received) == 1


def test_an_exempt_notice_goes_during_quiet_hours(runtime, client, clock, smtp_server):
    clock.set(datetime(2026, 12, 2, 22, 30, tzinfo=UTC))
    patient = new_patient(client, "dora@example.org")
    preferences = Preferences(runtime)
    preferences.grant(patient, "email", quiet="21:00-08:00")
    delivery = queue_notice(runtime, patient, "email", exempt=True)

    outcome = send_current(channel_worker(runtime, smtp(smtp_server)), runtime, delivery.id)

    assert outcome == "accepted"
    assert len(smtp_server.received) == 1


def test_a_stale_version_is_not_sent_twice(runtime, client, clock, smtp_server):
    # Given a reminder already sent
    clock.set(NOON)
    patient = new_patient(client, "eve@example.org")
    delivery = queue_notice(runtime, patient, "email")
    worker = channel_worker(runtime, smtp(smtp_server))
    assert worker.send(delivery.id, delivery.version) == "accepted"

    # When the same hand-out comes again (a task redelivered after a crash)
    again = worker.send(delivery.id, delivery.version)

    # Then it is stale: the server saw one message
    assert again == "stale"
    assert len(smtp_server.received) == 1


def test_a_reset_link_goes_where_reset_link_says_even_in_quiet_hours(
    runtime, client, clock, smtp_server
):
    # Given a staff member (no patient record) who asked for a reset link at 23:30
    clock.set(datetime(2026, 12, 2, 22, 30, tzinfo=UTC))
    delivery = queue_notice(
        runtime,
        None,
        "email",
        PasswordReset(token="tok.en-123", valid_minutes=30),
        address="desk@staff.example.org",
    )
    worker = channel_worker(
        runtime,
        smtp(smtp_server),
        quiet="21:00-08:00",
        reset_link="https://id.centre.example/reset?from=mail&token={token}",
    )

    # When the worker sends it
    assert send_current(worker, runtime, delivery.id) == "accepted"

    # Then it went at once to the account's address, linking where RESET_LINK says
    [mail] = smtp_server.received
    assert mail.rcpt_tos == ["desk@staff.example.org"]
    text = mail.message.get_body(("plain",)).get_content()
    html = mail.message.get_body(("html",)).get_content()
    assert "https://id.centre.example/reset?from=mail&token=tok.en-123" in text
    assert "https://id.centre.example/reset?from=mail&amp;token=tok.en-123" in html
    assert f"{BASE_URL}/reset-password" not in text + html
