"""The one way an e-mail is built, for SMTP and for the development Maildir alike."""

from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate
from uuid import UUID

from application.channels import OutboundMessage


def message_id(delivery_id: UUID, sender: str) -> str:
    """A Message-ID that is a pure function of the delivery: every resend of one delivery
    carries the same one, so mail systems (and people) can recognise the duplicate."""
    domain = sender.rpartition("@")[2] or "imaging-bridge.invalid"
    return f"<{delivery_id}@{domain}>"


def build_email(message: OutboundMessage, sender: str) -> EmailMessage:
    """``message`` as a MIME e-mail from ``sender``: text/plain, plus text/html as the
    preferred alternative when there is one; Content-Language from the message."""
    email = EmailMessage()
    email["From"] = sender
    email["To"] = str(Address(addr_spec=message.recipient))
    email["Subject"] = message.subject
    email["Date"] = formatdate(localtime=False, usegmt=True)
    email["Message-ID"] = message_id(message.delivery_id, sender)
    email["Content-Language"] = message.language
    email["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies, please
    email.set_content(message.text)
    if message.html:
        email.add_alternative(message.html, subtype="html")
    return email
