"""The development channels write where they say, readable by this account only, and say
so in the log: e-mail into a Maildir, SMS and push as JSON lines."""

import json
import mailbox
import stat
from uuid import uuid4

import pytest
from structlog.testing import capture_logs

from adapters.channels.file_channels import push_file, sms_file
from adapters.channels.maildir import MaildirSender
from application.channels import (
    INVALID_RECIPIENT,
    MessageError,
    OutboundMessage,
    PermanentFailure,
    PushKeys,
    PushNotice,
    Sent,
)


def test_email_goes_into_the_maildir(tmp_path):
    # Given the development e-mail channel on a data folder
    folder = tmp_path / "data" / "mail"
    with capture_logs() as logs:
        sender = MaildirSender(folder, "Imaging Centre <no-reply@centre.example>")
    message = OutboundMessage(
        uuid4(),
        "email",
        "patient@example.org",
        language="en",
        subject="Your appointment",
        text="See you on Monday.",
        html="<p>See you on <b>Monday</b>.</p>",
    )

    # When it sends a message
    outcome = sender.send(message)

    # Then a mail client finds it in the Maildir, as SMTP would have sent it
    [stored] = mailbox.Maildir(folder, create=False)
    assert outcome == Sent(provider_id=f"<{message.delivery_id}@centre.example>")
    assert stored["Message-ID"] == outcome.provider_id
    assert stored["To"] == "patient@example.org"
    assert stored["Subject"] == "Your appointment"
    assert {part.get_content_type() for part in stored.walk()} >= {"text/plain", "text/html"}
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert logs[0]["event"] == "email_channel_writes_to_maildir"
    assert logs[0]["folder"] == str(folder)


def test_a_malformed_address_is_refused_by_the_maildir_too(tmp_path):
    sender = MaildirSender(tmp_path / "mail")

    outcome = sender.send(OutboundMessage(uuid4(), "email", "nobody", subject="s", text="t"))

    assert isinstance(outcome, PermanentFailure)
    assert outcome.code == INVALID_RECIPIENT
    assert list(mailbox.Maildir(tmp_path / "mail", create=False)) == []


def test_sms_and_push_go_into_json_lines_files(tmp_path):
    # Given the development SMS and push channels on a data folder
    with capture_logs() as logs:
        sms, push = sms_file(tmp_path), push_file(tmp_path)
    text = OutboundMessage(uuid4(), "sms", "+15550100300", language="es", text="Su cita: lunes")
    notice = OutboundMessage(
        uuid4(),
        "push",
        "https://push.example/abc",
        push=PushNotice(PushKeys("BKey", "auth"), {"title": "Result available"}, ttl=60),
    )

    # When each sends one message
    outcomes = [sms.send(text), sms.send(text), push.send(notice)]

    # Then each file holds one line per send, and only this account can read it
    sms_lines = [json.loads(line) for line in (tmp_path / "sms.jsonl").read_text().splitlines()]
    [push_line] = [json.loads(line) for line in (tmp_path / "push.jsonl").read_text().splitlines()]
    assert all(isinstance(outcome, Sent) for outcome in outcomes)
    assert (
        sms_lines
        == [
            {
                "delivery_id": str(text.delivery_id),
                "channel": "sms",
                "to": "+15550100300",
                "language": "es",
                "text": "Su cita: lunes",
            }
        ]
        * 2
    )
    assert push_line["data"] == {"title": "Result available"}
    assert (push_line["to"], push_line["ttl"], push_line["urgency"]) == (
        "https://push.example/abc",
        60,
        "normal",
    )
    assert stat.S_IMODE((tmp_path / "sms.jsonl").stat().st_mode) == 0o600
    assert [entry["event"] for entry in logs] == [
        "sms_channel_writes_to_file",
        "push_channel_writes_to_file",
    ]


def test_a_file_channel_refuses_another_channels_message(tmp_path):
    email = OutboundMessage(uuid4(), "email", "a@b.example", subject="s", text="t")

    with pytest.raises(MessageError):
        sms_file(tmp_path).send(email)
