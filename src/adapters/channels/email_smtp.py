"""E-mail over SMTP (``SMTP_URL``): one connection per message, stdlib ``smtplib``.

How failures are classified:
- before the message could be offered (connect, TLS, STARTTLS, login) -> temporary,
  ``not_connected``: nothing left us, and a fix on our side (a password, a certificate)
  should not cost patients their messages;
- a 4xx reply to MAIL, RCPT or DATA -> temporary; a 5xx reply -> permanent
  (``invalid_recipient`` for a refused recipient, ``rejected`` otherwise);
- the connection dropping or timing out after the message was offered -> temporary,
  ``no_reply``: the server may have taken it. The Message-ID derives from the delivery,
  so a resend is recognisable as the same message.
"""

import smtplib
import socket
import ssl
from email.message import Message

import structlog

from adapters.channels.email_message import build_email, recipient_address, sender_address
from adapters.channels.smtp_url import IMPLICIT_TLS, STARTTLS, SmtpTarget
from application.channels import (
    EMAIL,
    INVALID_RECIPIENT,
    NO_REPLY,
    NOT_CONNECTED,
    REJECTED,
    ChannelSender,
    OutboundMessage,
    PermanentFailure,
    SendOutcome,
    Sent,
    TemporaryFailure,
)

log = structlog.get_logger(__name__)

SMTP_TIMEOUT = 10.0  # seconds one SMTP exchange may wait for the server, at most


def send_timeout(lease: float) -> float:
    """How long one exchange with the server (connecting, a command, the reply to the
    message) may wait under a delivery lease of ``lease`` seconds: ``SMTP_TIMEOUT``, and
    never more than a quarter of the lease. A sending thread starts no send after half
    its batch's lease (``adapters.hl7.handoff``), so a send begun in time that meets a
    stalled server ends by three quarters of the lease: before the notice can be handed
    out again, and leaving the batch's other notices time to go under their lease."""
    return min(SMTP_TIMEOUT, lease / 4)


def reply_outcome(code: int, text: bytes | str, refused_recipient: bool) -> SendOutcome:
    """What an SMTP error reply means for the message."""
    reason = (text.decode("utf-8", "replace") if isinstance(text, bytes) else text)[:300]
    if 400 <= code < 500:
        return TemporaryFailure(code="provider_deferred", reason=reason, provider_code=str(code))
    return PermanentFailure(
        code=INVALID_RECIPIENT if refused_recipient else REJECTED,
        reason=reason,
        provider_code=str(code),
    )


class SmtpSender(ChannelSender):
    """Sends each e-mail over a fresh SMTP connection to ``target``, from ``sender``;
    each exchange with the server waits ``timeout`` seconds at most (``send_timeout``)."""

    channel = EMAIL

    def __init__(
        self,
        target: SmtpTarget,
        sender: str,
        *,
        timeout: float = SMTP_TIMEOUT,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        sender_address(sender)  # refuses a malformed From address at start
        self.target = target
        self.sender = sender
        self.timeout = timeout
        self.tls_context = tls_context or ssl.create_default_context()
        self.local_hostname = socket.getfqdn()  # the EHLO name: looked up once, not per message

    def send(self, message: OutboundMessage) -> SendOutcome:
        self.check(message)
        try:
            recipient_address(message.recipient)
        except ValueError:
            return PermanentFailure(code=INVALID_RECIPIENT, reason="not an e-mail address")
        email = build_email(message, self.sender)
        try:
            connection = self._connect()
        except (smtplib.SMTPException, OSError) as error:
            log.warning(
                "email_not_connected",
                smtp=self.target.describe(),
                delivery_id=str(message.delivery_id),
                error=type(error).__name__,
            )
            return TemporaryFailure(code=NOT_CONNECTED, reason=f"{type(error).__name__}")
        with connection:
            outcome = self._offer(connection, email)
        log.info(
            "email_handed_over",
            smtp=self.target.describe(),
            delivery_id=str(message.delivery_id),
            outcome=outcome.kind,
            code=getattr(outcome, "provider_code", ""),
        )
        return outcome

    def _connect(self) -> smtplib.SMTP:
        target = self.target
        connection: smtplib.SMTP
        if target.security == IMPLICIT_TLS:
            connection = smtplib.SMTP_SSL(
                target.host,
                target.port,
                self.local_hostname,
                timeout=self.timeout,
                context=self.tls_context,
            )
        else:
            connection = smtplib.SMTP(
                target.host, target.port, self.local_hostname, timeout=self.timeout
            )
        try:
            connection.ehlo()
            if target.security == STARTTLS:
                connection.starttls(context=self.tls_context)
                connection.ehlo()
            if target.username:
                connection.login(target.username, target.password)
        except BaseException:
            connection.close()
            raise
        return connection

    def _offer(self, connection: smtplib.SMTP, email: Message) -> SendOutcome:
        try:
            connection.send_message(email)
        except smtplib.SMTPRecipientsRefused as error:
            code, text = next(iter(error.recipients.values()), (550, b"refused"))
            return reply_outcome(code, text, refused_recipient=True)
        except smtplib.SMTPResponseException as error:  # sender refused, data refused
            return reply_outcome(error.smtp_code, error.smtp_error, refused_recipient=False)
        except (smtplib.SMTPException, OSError) as error:
            return TemporaryFailure(code=NO_REPLY, reason=type(error).__name__)
        return Sent(provider_id=str(email["Message-ID"]))
