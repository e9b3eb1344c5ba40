"""The one way an e-mail is built, for SMTP and for the development Maildir alike."""

from email.charset import QP, Charset
from email.header import Header
from email.headerregistry import Address
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.utils import formataddr, formatdate, parseaddr
from uuid import UUID

from application.channels import OutboundMessage

_UTF8 = Charset("utf-8")
_UTF8.body_encoding = QP  # readable in the Maildir, as EmailMessage wrote it


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


def build_email(message: OutboundMessage, sender: str) -> Message:
    """``message`` as a MIME e-mail from ``sender``: text/plain, plus text/html as the
    preferred alternative when there is one; Content-Language from the message.

    Built with the classic ``email.mime`` classes: ``EmailMessage``'s header registry
    parses every header it is given back again, which made it cost 0.94 ms an e-mail
    where these take 0.1 ms (a confirmation per booking: 20 % of the outbound process
    while a burst's e-mails go out)."""
    text = _text_part(message.text, "plain")
    if message.html:
        email: Message = MIMEMultipart("alternative")
        email.attach(text)
        email.attach(_text_part(message.html, "html"))
    else:
        email = text
    origin = sender_address(sender)
    email["From"] = formataddr((origin.display_name, origin.addr_spec), charset="utf-8")
    email["To"] = recipient_address(message.recipient)
    email["Subject"] = _header(message.subject)
    email["Date"] = formatdate(localtime=False, usegmt=True)
    email["Message-ID"] = message_id(message.delivery_id, sender)
    email["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies, please
    email["Content-Language"] = message.language
    return email


def _text_part(body: str, subtype: str) -> Message:
    part = MIMENonMultipart("text", subtype)
    part.set_payload(body, _UTF8)
    return part


def recipient_address(recipient: str) -> str:
    """The To address, its domain in IDNA form (``exämple.org`` -> ``xn--exmple-cua.org``:
    an address may not be an RFC 2047 encoded word); ValueError if it is not an address
    (a non-ASCII local part included). The senders check it before sending."""
    address = Address(addr_spec=recipient)
    return f"{address.username}@{address.domain.encode('idna').decode('ascii')}"


def _header(value: str) -> str:
    """``value`` as is when it is ASCII, else encoded (RFC 2047)."""
    return value if value.isascii() else Header(value, "utf-8").encode()
