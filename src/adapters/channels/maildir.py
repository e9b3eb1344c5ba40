"""The development e-mail channel: every message goes into a Maildir (``DATA_DIR``'s
``mail/`` by default) that any mail client, or ``mailbox.Maildir``, can read. Nothing
leaves the machine; the start-up line says so, so nobody waits for a real e-mail."""

import mailbox
import os
import threading
from pathlib import Path

import structlog

from adapters.channels.email_message import build_email, recipient_address, sender_address
from application.channels import (
    EMAIL,
    INVALID_RECIPIENT,
    ChannelSender,
    OutboundMessage,
    PermanentFailure,
    SendOutcome,
    Sent,
)

log = structlog.get_logger(__name__)


class MaildirSender(ChannelSender):
    """Writes each e-mail, as SMTP would have sent it, into the Maildir at ``folder``."""

    channel = EMAIL

    def __init__(self, folder: Path, sender: str = "no-reply@imaging-bridge.invalid") -> None:
        self.folder = folder
        sender_address(sender)  # refuses a malformed From address at start
        self.sender = sender
        self._lock = threading.Lock()
        folder.parent.mkdir(parents=True, exist_ok=True)
        self._maildir = mailbox.Maildir(folder, create=True)
        os.chmod(folder, 0o700)  # the messages hold patient data: this account only
        log.warning("email_channel_writes_to_maildir", folder=str(folder), sends=False)

    def send(self, message: OutboundMessage) -> SendOutcome:
        self.check(message)
        try:
            recipient_address(message.recipient)
        except ValueError:
            return PermanentFailure(code=INVALID_RECIPIENT, reason="not an e-mail address")
        email = build_email(message, self.sender)
        with self._lock:
            key = self._maildir.add(email)
        log.info(
            "email_written_to_maildir",
            folder=str(self.folder),
            file=key,
            delivery_id=str(message.delivery_id),
        )
        return Sent(provider_id=str(email["Message-ID"]))
