"""Until the communications channel lands, messages to people are written as .eml files
into an outbox folder an operator (or a developer) can read. Logs only say that a
message was written, never what it says."""

import secrets
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import structlog

from application.ports import Mailer

log = structlog.get_logger(__name__)


class OutboxMailer(Mailer):
    def __init__(self, outbox: Path, sender: str = "no-reply@imaging-bridge.invalid") -> None:
        self._outbox = outbox
        self._sender = sender

    def send(self, to: str, subject: str, body: str) -> None:
        message = EmailMessage()
        message["From"] = self._sender
        message["To"] = to
        message["Subject"] = subject
        message.set_content(body)
        self._outbox.mkdir(parents=True, exist_ok=True)
        name = f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(4)}.eml"
        path = self._outbox / name
        path.touch(mode=0o600)
        path.write_bytes(bytes(message))
        log.info("message_written_to_outbox", file=name)
