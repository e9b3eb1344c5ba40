"""SMS through the official Twilio client against a local server speaking the Messages
API; status callbacks and inbound messages signed as Twilio signs them."""

import socket
import urllib.request
from collections.abc import Iterator
from urllib.parse import parse_qsl, urlencode
from uuid import uuid4

import pytest

from adapters.channels.sms_callbacks import (
    HELP,
    START,
    STOP,
    CallbackError,
    parse_inbound,
    parse_status,
    valid_signature,
)
from adapters.channels.sms_twilio import TwilioConfig, TwilioConfigError, TwilioSmsSender
from application.channels import (
    INVALID_RECIPIENT,
    NO_REPLY,
    NOT_CONNECTED,
    UNSUBSCRIBED,
    OutboundMessage,
    PermanentFailure,
    Sent,
    TemporaryFailure,
    attempt_outcome,
)
from domain.ris.message_delivery import NO_ANSWER, REJECTED_PERMANENT, REJECTED_RETRYABLE
from tests.providers.fake_twilio import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    INVALID_NUMBER,
    RATE_LIMITED,
    UNAVAILABLE,
    twilio_signature,
)
from tests.providers.fake_twilio import (
    UNSUBSCRIBED as UNSUBSCRIBED_ERROR,
)
from tests.providers.loopback_http import LoopbackHttp, Reply, Request

CENTRE_NUMBER = "+15550100200"
PATIENT_NUMBER = "+15550100300"
CALLBACK = "https://portal.centre.example/v1/callbacks/sms/status"


def sender_for(twilio, **overrides) -> TwilioSmsSender:
    settings = {
        "account_sid": ACCOUNT_SID,
        "auth_token": AUTH_TOKEN,
        "sender": CENTRE_NUMBER,
        "base_url": twilio.base_url,
        "status_callback": CALLBACK,
        "timeout": 10.0,
        **overrides,
    }
    return TwilioSmsSender(TwilioConfig(**settings))


def sms(to: str = PATIENT_NUMBER) -> OutboundMessage:
    return OutboundMessage(uuid4(), "sms", to, text="Reminder: your exam is tomorrow at 09:30.")


def test_an_sms_is_created_through_the_messages_api(fake_twilio):
    # When the sender sends an SMS
    outcome = sender_for(fake_twilio).send(sms())

    # Then Twilio got To, From, Body and the status callback, and its SID is the receipt
    [created] = fake_twilio.messages
    assert outcome == Sent(provider_id=created["Sid"])
    assert created["Sid"].startswith("SM")
    assert created["To"] == PATIENT_NUMBER
    assert created["From"] == CENTRE_NUMBER
    assert created["Body"] == "Reminder: your exam is tomorrow at 09:30."
    assert created["StatusCallback"] == CALLBACK


def test_a_messaging_service_sends_in_place_of_a_number(fake_twilio):
    service = "MG" + "ab" * 16

    outcome = sender_for(fake_twilio, sender=service).send(sms())

    assert isinstance(outcome, Sent)
    assert fake_twilio.messages[0]["MessagingServiceSid"] == service
    assert "From" not in fake_twilio.messages[0]


@pytest.mark.parametrize(
    ("error", "code"), [(UNAVAILABLE, "provider_unavailable"), (RATE_LIMITED, "rate_limited")]
)
def test_a_temporary_failure_then_success(fake_twilio, error, code):
    # Given Twilio fails once for this number
    fake_twilio.fail_next(PATIENT_NUMBER, error)
    sender = sender_for(fake_twilio)
    message = sms()

    # When the delivery is tried, then tried again
    first = sender.send(message)
    second = sender.send(message)

    # Then the first is to be retried, the second went
    assert first == TemporaryFailure(code, first.reason, str(error.code))
    assert attempt_outcome(first)[0] == REJECTED_RETRYABLE
    assert isinstance(second, Sent)
    assert len(fake_twilio.messages) == 1


@pytest.mark.parametrize(
    ("error", "code"), [(INVALID_NUMBER, INVALID_RECIPIENT), (UNSUBSCRIBED_ERROR, UNSUBSCRIBED)]
)
def test_invalid_and_unsubscribed_numbers_are_permanent(fake_twilio, error, code):
    fake_twilio.fail_next(PATIENT_NUMBER, error)

    outcome = sender_for(fake_twilio).send(sms())

    assert isinstance(outcome, PermanentFailure)
    assert (outcome.code, outcome.provider_code) == (code, str(error.code))
    assert error.message in outcome.reason
    assert attempt_outcome(outcome)[0] == REJECTED_PERMANENT
    assert fake_twilio.messages == []


def test_a_wrong_auth_token_is_ours_to_fix_and_temporary(fake_twilio):
    outcome = sender_for(fake_twilio, auth_token="not-the-token").send(sms())

    assert isinstance(outcome, TemporaryFailure)
    assert (outcome.code, outcome.provider_code) == ("provider_auth", "20003")


def test_a_number_that_is_not_e164_is_refused_before_twilio(fake_twilio):
    outcome = sender_for(fake_twilio).send(sms("555-0100"))

    assert isinstance(outcome, PermanentFailure)
    assert outcome.code == INVALID_RECIPIENT
    assert fake_twilio.requests == 0


def test_no_answer_from_twilio_is_ambiguous(fake_twilio):
    # Given Twilio takes the request and never answers within the client's timeout
    fake_twilio.stall(PATIENT_NUMBER)

    # When an SMS is sent
    outcome = sender_for(fake_twilio, timeout=0.5).send(sms())

    # Then it may have gone: retried as ambiguous (Twilio has no idempotency key)
    assert isinstance(outcome, TemporaryFailure)
    assert outcome.code == NO_REPLY
    assert attempt_outcome(outcome)[0] == NO_ANSWER


def test_twilio_unreachable_is_temporary_not_connected():
    with socket.socket() as blocker:  # bound, not listening: connections are refused
        blocker.bind(("127.0.0.1", 0))
        base = f"http://127.0.0.1:{blocker.getsockname()[1]}"
        config = TwilioConfig(ACCOUNT_SID, AUTH_TOKEN, CENTRE_NUMBER, base_url=base, timeout=5)

        outcome = TwilioSmsSender(config).send(sms())

    assert isinstance(outcome, TemporaryFailure)
    assert outcome.code == NOT_CONNECTED


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        ({"account_sid": "AC123"}, "account SID"),
        ({"auth_token": ""}, "auth token"),
        ({"sender": "CENTRE"}, "E.164"),
        ({"base_url": "api.twilio.com"}, "base URL"),
    ],
)
def test_settings_that_cannot_work_are_refused_without_the_token(settings, says):
    fields = {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "sender": CENTRE_NUMBER}
    with pytest.raises(TwilioConfigError, match=says) as refused:
        TwilioConfig(**{**fields, **settings})
    assert AUTH_TOKEN not in str(refused.value)
    assert AUTH_TOKEN not in repr(TwilioConfig(**fields))


# --- what Twilio posts to us ----------------------------------------------------------


class CallbackReceiver:
    """Stands where the API's callback routes will: checks the signature against the
    URL it was posted to, answers 403 when it fails, else parses and keeps the callback."""

    def __init__(self) -> None:
        self.statuses = []
        self.inbound = []
        self.http = LoopbackHttp(self.answer)

    def url(self, path: str) -> str:
        return self.http.base_url + path

    def answer(self, request: Request) -> Reply:
        params = dict(parse_qsl(request.body.decode(), keep_blank_values=True))
        signature = request.headers.get("x-twilio-signature", "")
        if not valid_signature(AUTH_TOKEN, self.url(request.path), params, signature):
            return Reply(403)
        if request.path == "/sms/status":
            self.statuses.append(parse_status(params))
        else:
            self.inbound.append(parse_inbound(params))
        return Reply(204)


@pytest.fixture
def receiver() -> Iterator[CallbackReceiver]:
    receiver = CallbackReceiver()
    with receiver.http:
        yield receiver


def test_a_signed_status_callback_is_accepted_and_read(fake_twilio, receiver):
    # Given a message Twilio accepted
    outcome = sender_for(fake_twilio).send(sms())
    assert isinstance(outcome, Sent)

    # When Twilio reports it undelivered, signed
    status = fake_twilio.post_status(
        receiver.url("/sms/status"), outcome.provider_id, "undelivered", ErrorCode="30003"
    )

    # Then the callback is taken and says which message and why
    assert status == 204
    [report] = receiver.statuses
    assert (report.message_sid, report.status, report.error_code) == (
        outcome.provider_id,
        "undelivered",
        "30003",
    )
    assert report.final
    assert not report.delivered


def test_a_callback_signed_with_another_token_is_refused(fake_twilio, receiver):
    params = {"MessageSid": "SM" + "0" * 32, "MessageStatus": "delivered"}

    status = fake_twilio.post_signed(receiver.url("/sms/status"), params, token="someone-else")

    assert status == 403
    assert receiver.statuses == []


def test_a_callback_whose_parameters_were_changed_is_refused(fake_twilio, receiver):
    # Given a signature made for one status
    url = receiver.url("/sms/status")
    signed = {"MessageSid": "SM" + "0" * 32, "MessageStatus": "undelivered"}
    signature = twilio_signature(AUTH_TOKEN, url, signed)

    # When the body says another
    changed = {**signed, "MessageStatus": "delivered"}
    request = urllib.request.Request(
        url, data=urlencode(changed).encode(), headers={"X-Twilio-Signature": signature}
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)

    # Then it is refused
    assert refused.value.code == 403
    assert receiver.statuses == []


def test_an_unsigned_callback_is_refused(receiver):
    request = urllib.request.Request(
        receiver.url("/sms/inbound"),
        data=urlencode(
            {"MessageSid": "SM1", "From": PATIENT_NUMBER, "To": CENTRE_NUMBER, "Body": "STOP"}
        ).encode(),
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)

    assert refused.value.code == 403
    assert receiver.inbound == []


def test_an_inbound_stop_is_read_as_an_opt_out(fake_twilio, receiver):
    params = {
        "MessageSid": "SM" + "1" * 32,
        "AccountSid": ACCOUNT_SID,
        "From": PATIENT_NUMBER,
        "To": CENTRE_NUMBER,
        "Body": "Stop",
    }

    assert fake_twilio.post_signed(receiver.url("/sms/inbound"), params) == 204

    [message] = receiver.inbound
    assert (message.sender, message.to, message.keyword) == (PATIENT_NUMBER, CENTRE_NUMBER, STOP)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("STOP", STOP),
        ("  stop ", STOP),
        ("Stop.", STOP),
        ("STOPALL", STOP),
        ("unsubscribe", STOP),
        ("Cancel", STOP),
        ("END", STOP),
        ("quit!", STOP),
        ("START", START),
        ("yes", START),
        ("Unstop", START),
        ("HELP", HELP),
        ("info", HELP),
        ("stop please", None),
        ("please cancel", None),
        ("Thanks, see you tomorrow", None),
        ("", None),
    ],
)
def test_twilio_standard_keywords(body, expected):
    params = {"MessageSid": "SM1", "From": PATIENT_NUMBER, "To": CENTRE_NUMBER, "Body": body}
    assert parse_inbound(params).keyword == expected


def test_advanced_opt_out_names_the_keyword_type_itself():
    params = {"MessageSid": "SM1", "From": PATIENT_NUMBER, "To": CENTRE_NUMBER, "Body": "ARRET"}

    assert parse_inbound({**params, "OptOutType": "STOP"}).keyword == STOP


def test_a_callback_without_its_fields_is_refused():
    with pytest.raises(CallbackError, match="From"):
        parse_inbound({"MessageSid": "SM1", "To": CENTRE_NUMBER, "Body": "STOP"})
    with pytest.raises(CallbackError, match="MessageStatus"):
        parse_status({"MessageSid": "SM1"})
