"""The e-mail as built for SMTP and the Maildir: an international domain goes out in its
IDNA form, never as an encoded word, and non-ASCII text reads back as it was written."""

from email import message_from_bytes, policy
from uuid import uuid4

import pytest

from adapters.channels.email_message import build_email, recipient_address
from application.channels import OutboundMessage

SENDER = "Centro de Imágenes <no-reply@imaging-bridge.invalid>"


def message(recipient: str, html: str = "") -> OutboundMessage:
    return OutboundMessage(
        delivery_id=uuid4(),
        channel="email",
        recipient=recipient,
        language="es",
        subject="Su cita está reservada, López",
        text="Hola,\nLínea de su cita.\n",
        html=html,
    )


def test_an_international_domain_is_sent_in_its_idna_form():
    assert recipient_address("pat@exämple.org") == "pat@xn--exmple-cua.org"
    assert build_email(message("pat@exämple.org"), SENDER)["To"] == "pat@xn--exmple-cua.org"


def test_a_non_ascii_local_part_is_not_an_address():
    with pytest.raises(ValueError):
        recipient_address("josé@example.org")


@pytest.mark.parametrize("html", ["", "<p>Hola, López</p>"])
def test_non_ascii_text_reads_back_as_written(html):
    raw = build_email(message("pat@example.org", html), SENDER).as_bytes()
    assert raw.isascii()
    read = message_from_bytes(raw, policy=policy.default)
    assert str(read["Subject"]) == "Su cita está reservada, López"
    assert str(read["From"]) == SENDER
    assert read["Content-Language"] == "es"
    assert read.get_body(("plain",)).get_content() == "Hola,\nLínea de su cita.\n"
    if html:
        assert read.get_body(("html",)).get_content() == html
