"""The one way an e-mail is built, for SMTP and for the development Maildir alike."""

from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from uuid import UUID

from application.channels import OutboundMessage


def sender_address(sender: str) -> Address:
    """The From address (``Name <addr@domain>`` or a bare address); ValueError if it is
    not one."""
    name, addr = parseaddr(sender)
    address = Address(display_name=name, addr_spec=addr)
    if not address.username or not address.domain:
        raise ValueError("the sender is not an e-mail address")
    return address


def message_id(delivery_id: UUID, sender: str) -> str:
    """A Message-ID that is a pure function of the delivery: every resend of one delivery
    carries the same one, so mail systems (and people) can recognise the duplicate."""
    return f"<{delivery_id}@{sender_address(sender).domain}>"


def build_email(message: OutboundMessage, sender: str) -> EmailMessage:
    """``message`` as a MIME e-mail from ``sender``: text/plain, plus text/html as the
    preferred alternative when there is one; Content-Language from the message."""
    email = EmailMessage()
    email["From"] = sender_address(sender)
    email["To"] = str(Address(addr_spec=message.recipient))
    email["Subject"] = message.subject
    email["Date"] = formatdate(localtime=False, usegmt=True)
    email["Message-ID"] = message_id(message.delivery_id, sender)
    email["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies, please
    email.set_content(message.text)
    if message.html:
        email.add_alternative(message.html, subtype="html")
    # After the parts: making the message multipart moves Content-* headers into them.
    email["Content-Language"] = message.language
    return email
