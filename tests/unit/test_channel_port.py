"""The channel port's values: messages that cannot be sent are refused when built, and
every outcome maps onto one MessageDelivery attempt outcome."""

from datetime import timedelta
from uuid import uuid4

import pytest

from application.channels import (
    NO_REPLY,
    NOT_CONNECTED,
    MessageError,
    OutboundMessage,
    PermanentFailure,
    PushKeys,
    PushNotice,
    Sent,
    TemporaryFailure,
    attempt_outcome,
)
from domain.ris.message_delivery import (
    ACCEPTED,
    NO_ANSWER,
    NOT_SENT,
    OUTCOMES,
    REJECTED_PERMANENT,
    REJECTED_RETRYABLE,
)

KEYS = PushKeys(p256dh="BOr", auth="AAAA")


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"channel": "fax", "recipient": "x", "text": "t"}, "channel must be one of"),
        ({"channel": "sms", "recipient": " ", "text": "t"}, "needs a recipient"),
        ({"channel": "email", "recipient": "a@b.example", "text": "t"}, "subject"),
        (
            {"channel": "email", "recipient": "a@b.example", "subject": "a\nBcc: x", "text": "t"},
            "one line",
        ),
        ({"channel": "sms", "recipient": "+15550100"}, "an SMS needs a text"),
        ({"channel": "push", "recipient": "https://push.example/x"}, "needs its notice"),
        (
            {
                "channel": "push",
                "recipient": "https://push.example/x",
                "push": PushNotice(KEYS, {}, urgency="urgent"),
            },
            "urgency",
        ),
    ],
)
def test_messages_that_cannot_be_sent_are_refused_when_built(fields, says):
    with pytest.raises(MessageError, match=says):
        OutboundMessage(delivery_id=uuid4(), **fields)


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        (Sent("SM123"), (ACCEPTED, "sent", "SM123")),
        (
            PermanentFailure("unsubscribed", "STOP", "21610"),
            (REJECTED_PERMANENT, "unsubscribed", "STOP"),
        ),
        (TemporaryFailure(NOT_CONNECTED, "refused"), (NOT_SENT, NOT_CONNECTED, "refused")),
        (TemporaryFailure(NO_REPLY, "timeout"), (NO_ANSWER, NO_REPLY, "timeout")),
        (
            TemporaryFailure("rate_limited", "429", "429", timedelta(seconds=30)),
            (REJECTED_RETRYABLE, "rate_limited", "429"),
        ),
    ],
)
def test_every_outcome_is_one_delivery_attempt_outcome(outcome, expected):
    assert attempt_outcome(outcome) == expected
    assert attempt_outcome(outcome)[0] in OUTCOMES
