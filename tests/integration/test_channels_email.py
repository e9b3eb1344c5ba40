"""E-mail through a real SMTP server on loopback (aiosmtpd): what arrives, over plain
SMTP, STARTTLS with a login and implicit TLS, and how refusals are classified."""

import socket
from uuid import uuid4

import pytest
from structlog.testing import capture_logs

from adapters.channels.email_smtp import SmtpSender
from adapters.channels.smtp_url import parse_smtp_url
from application.channels import (
    INVALID_RECIPIENT,
    NO_REPLY,
    NOT_CONNECTED,
    OutboundMessage,
    PermanentFailure,
    Sent,
    TemporaryFailure,
    attempt_outcome,
)
from domain.ris.message_delivery import NO_ANSWER, NOT_SENT, REJECTED_PERMANENT, REJECTED_RETRYABLE
from tests.providers.smtp_server import SmtpServer

FROM = "Imaging Centre <no-reply@centre.example>"
PASSWORD = "s3cret p@ss"


def reminder(to: str = "patient@example.org") -> OutboundMessage:
    return OutboundMessage(
        delivery_id=uuid4(),
        channel="email",
        recipient=to,
        language="es",
        subject="Recordatorio de su cita",
        text="Su cita es mañana a las 09:30.",
        html="<p>Su cita es <strong>mañana</strong> a las 09:30.</p>",
    )


def test_an_email_arrives_with_both_parts_and_a_message_id_from_its_delivery(smtp_server):
    # Given a sender for the plain SMTP server
    sender = SmtpSender(parse_smtp_url(f"smtp://127.0.0.1:{smtp_server.port}"), FROM, timeout=10)
    message = reminder()

    # When it sends a reminder
    outcome = sender.send(message)

    # Then the server got it for that recipient, with subject, language and both parts
    expected_id = f"<{message.delivery_id}@centre.example>"
    assert outcome == Sent(provider_id=expected_id)
    assert attempt_outcome(outcome)[0] == "accepted"
    [mail] = smtp_server.received
    assert mail.rcpt_tos == ["patient@example.org"]
    assert mail.mail_from == "no-reply@centre.example"
    email = mail.message
    assert email["Subject"] == "Recordatorio de su cita"
    assert email["Message-ID"] == expected_id
    assert email["Content-Language"] == "es"
    assert email.get_content_type() == "multipart/alternative"
    assert email.get_body(("plain",)).get_content().strip() == "Su cita es mañana a las 09:30."
    assert "<strong>mañana</strong>" in email.get_body(("html",)).get_content()


def test_a_resend_of_the_same_delivery_carries_the_same_message_id(smtp_server):
    # Given one delivery sent twice (a worker died after the send, before recording it)
    sender = SmtpSender(parse_smtp_url(f"smtp://127.0.0.1:{smtp_server.port}"), FROM, timeout=10)
    message = reminder()

    # When both sends arrive
    first, second = sender.send(message), sender.send(message)

    # Then the receiver can tell they are one message
    ids = [mail.message["Message-ID"] for mail in smtp_server.received]
    assert first == second
    assert ids == [ids[0], ids[0]]


def test_starttls_with_a_login(loopback_tls):
    # Given a submission server that requires STARTTLS and a login
    with SmtpServer(starttls=loopback_tls.server, credentials=("bridge", PASSWORD)) as server:
        url = f"smtp+starttls://bridge:s3cret%20p%40ss@127.0.0.1:{server.port}"
        sender = SmtpSender(parse_smtp_url(url), FROM, tls_context=loopback_tls.client)

        # When a message is sent
        outcome = sender.send(reminder())

        # Then it went over TLS, logged in as the URL's user
        assert isinstance(outcome, Sent)
        [mail] = server.received
        assert mail.tls
        assert mail.login == "bridge"


def test_implicit_tls(loopback_tls):
    with SmtpServer(implicit_tls=loopback_tls.server, credentials=("bridge", PASSWORD)) as server:
        url = f"smtps://bridge:s3cret%20p%40ss@127.0.0.1:{server.port}"
        sender = SmtpSender(parse_smtp_url(url), FROM, tls_context=loopback_tls.client)

        outcome = sender.send(reminder())

        assert isinstance(outcome, Sent)
        assert [mail.tls for mail in server.received] == [True]


def test_a_refused_login_is_temporary_and_never_logged_with_its_password(loopback_tls):
    # Given a server that does not know this password
    with SmtpServer(starttls=loopback_tls.server, credentials=("bridge", "another")) as server:
        url = f"smtp+starttls://bridge:s3cret%20p%40ss@127.0.0.1:{server.port}"
        sender = SmtpSender(parse_smtp_url(url), FROM, tls_context=loopback_tls.client)

        # When a message is sent
        with capture_logs() as logs:
            outcome = sender.send(reminder())

    # Then nothing was sent, the failure is ours to fix (temporary), and no log holds the password
    assert isinstance(outcome, TemporaryFailure)
    assert outcome.code == NOT_CONNECTED
    assert attempt_outcome(outcome)[0] == NOT_SENT
    assert server.received == []
    assert logs
    assert all(PASSWORD not in repr(entry) and "p%40ss" not in repr(entry) for entry in logs)


def test_a_server_certificate_from_an_untrusted_ca_is_refused(loopback_tls):
    with SmtpServer(starttls=loopback_tls.server) as server:
        sender = SmtpSender(parse_smtp_url(f"smtp+starttls://127.0.0.1:{server.port}"), FROM)

        outcome = sender.send(reminder())  # the system's CAs do not know the test CA

        assert isinstance(outcome, TemporaryFailure)
        assert outcome.code == NOT_CONNECTED
        assert server.received == []


def test_a_4xx_recipient_reply_is_temporary(smtp_server):
    # Given a server that defers this recipient
    smtp_server.refuse["busy@example.org"] = "451 4.3.0 Mailbox busy, try later"
    sender = SmtpSender(parse_smtp_url(f"smtp://127.0.0.1:{smtp_server.port}"), FROM, timeout=10)

    # When a message is sent to them
    outcome = sender.send(reminder("busy@example.org"))

    # Then it is to be retried, and nothing was delivered
    assert isinstance(outcome, TemporaryFailure)
    assert outcome.provider_code == "451"
    assert attempt_outcome(outcome)[0] == REJECTED_RETRYABLE
    assert smtp_server.received == []


def test_a_5xx_recipient_reply_is_permanent(smtp_server):
    smtp_server.refuse["nobody@example.org"] = "550 5.1.1 No such user"
    sender = SmtpSender(parse_smtp_url(f"smtp://127.0.0.1:{smtp_server.port}"), FROM, timeout=10)

    outcome = sender.send(reminder("nobody@example.org"))

    assert outcome == PermanentFailure(INVALID_RECIPIENT, "5.1.1 No such user", "550")
    assert attempt_outcome(outcome)[0] == REJECTED_PERMANENT


def test_a_hang_up_after_the_message_is_ambiguous(smtp_server):
    # Given a server that reads the message, then hangs up without a reply
    smtp_server.hang_up_after_data.add("patient@example.org")
    sender = SmtpSender(parse_smtp_url(f"smtp://127.0.0.1:{smtp_server.port}"), FROM, timeout=10)

    # When a message is sent
    outcome = sender.send(reminder())

    # Then it may have been taken: retried as ambiguous, not as a plain failure
    assert isinstance(outcome, TemporaryFailure)
    assert outcome.code == NO_REPLY
    assert attempt_outcome(outcome)[0] == NO_ANSWER


def test_a_malformed_address_is_permanent_without_a_connection(smtp_server):
    sender = SmtpSender(parse_smtp_url(f"smtp://127.0.0.1:{smtp_server.port}"), FROM, timeout=10)

    outcome = sender.send(reminder("not an address"))

    assert isinstance(outcome, PermanentFailure)
    assert outcome.code == INVALID_RECIPIENT
    assert smtp_server.received == []


def test_nobody_listening_is_temporary_not_connected():
    # Given a port that is bound but not listening: a connection is refused
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        port = blocker.getsockname()[1]
        sender = SmtpSender(parse_smtp_url(f"smtp://127.0.0.1:{port}"), FROM, timeout=5)

        outcome = sender.send(reminder())

    assert isinstance(outcome, TemporaryFailure)
    assert outcome.code == NOT_CONNECTED


def test_a_message_for_another_channel_is_a_wiring_error(smtp_server):
    sender = SmtpSender(parse_smtp_url(f"smtp://127.0.0.1:{smtp_server.port}"), FROM)
    sms = OutboundMessage(uuid4(), "sms", "+15550100", text="hi")

    with pytest.raises(ValueError, match="email sender got a sms message"):
        sender.send(sms)
