"""Web push through pywebpush to a local push service that checks VAPID and decrypts the
payload with the subscription's own keys, as a browser's push service does."""

import json
import stat
from datetime import timedelta
from uuid import uuid4

import pytest
from py_vapid import Vapid

from adapters.channels.vapid_keys import (
    VapidKeyError,
    application_server_key,
    load_vapid,
    vapid_from_file,
)
from adapters.channels.web_push import WebPushSender
from application.channels import (
    INVALID_RECIPIENT,
    REJECTED,
    SUBSCRIPTION_GONE,
    TOO_LARGE,
    OutboundMessage,
    PermanentFailure,
    PushKeys,
    PushNotice,
    Sent,
    TemporaryFailure,
    attempt_outcome,
)
from domain.ris.message_delivery import REJECTED_PERMANENT, REJECTED_RETRYABLE

SUBJECT = "mailto:operations@centre.example"
NOTICE = {"title": "Result available", "body": "Sign in to view it.", "url": "/portal/results"}


def another_key_pem() -> str:
    """Another P-256 key, as PEM text (as a setting would hold it)."""
    other = Vapid()
    other.generate_keys()
    return other.private_pem().decode()


@pytest.fixture
def vapid(tmp_path):
    return vapid_from_file(tmp_path / "vapid.pem")


def push_to(subscription, data=NOTICE, **notice) -> OutboundMessage:
    return OutboundMessage(
        uuid4(),
        "push",
        subscription.endpoint,
        push=PushNotice(subscription.keys, dict(data), **notice),
    )


def test_a_push_arrives_encrypted_for_its_subscription_and_signed_with_vapid(push_service, vapid):
    # Given a browser subscribed with our server key
    subscription = push_service.subscribe(application_server_key(vapid))
    message = push_to(subscription, ttl=3600, urgency="high")

    # When we push to it
    outcome = WebPushSender(vapid, SUBJECT).send(message)

    # Then the push service took it, and what it decrypts is what we sent
    assert isinstance(outcome, Sent)
    assert outcome.provider_id.startswith(push_service.origin + "/message/")
    [push] = push_service.received
    assert json.loads(push.data) == NOTICE
    assert (push.ttl, push.urgency, push.topic) == ("3600", "high", message.delivery_id.hex)
    assert push.claims["aud"] == push_service.origin
    assert push.claims["sub"] == SUBJECT


def test_a_gone_subscription_is_permanent_and_stays_gone(push_service, vapid):
    # Given a subscription the browser dropped
    subscription = push_service.subscribe(application_server_key(vapid))
    push_service.answer_next(subscription, 410)
    sender = WebPushSender(vapid, SUBJECT)

    # When we push to it twice
    first, second = sender.send(push_to(subscription)), sender.send(push_to(subscription))

    # Then both say it is gone (the caller removes it); nothing was shown
    for outcome in (first, second):
        assert isinstance(outcome, PermanentFailure)
        assert (outcome.code, outcome.provider_code) == (SUBSCRIPTION_GONE, "410")
        assert attempt_outcome(outcome)[0] == REJECTED_PERMANENT
    assert push_service.received == []


def test_an_unknown_subscription_is_gone_too(push_service, vapid):
    subscription = push_service.subscribe(application_server_key(vapid))
    push_service.answer_next(subscription, 404)

    outcome = WebPushSender(vapid, SUBJECT).send(push_to(subscription))

    assert isinstance(outcome, PermanentFailure)
    assert (outcome.code, outcome.provider_code) == (SUBSCRIPTION_GONE, "404")


def test_too_many_requests_is_temporary_with_the_services_retry_after(push_service, vapid):
    # Given a push service that is rate limiting us for two minutes
    subscription = push_service.subscribe(application_server_key(vapid))
    push_service.answer_next(subscription, 429, Retry_After="120")
    sender = WebPushSender(vapid, SUBJECT)
    message = push_to(subscription)

    # When the delivery is tried, then tried again
    first, second = sender.send(message), sender.send(message)

    # Then the first waits at least the service's delay, the second went
    assert isinstance(first, TemporaryFailure)
    assert (first.code, first.provider_code) == ("rate_limited", "429")
    assert first.retry_after == timedelta(seconds=120)
    assert attempt_outcome(first)[0] == REJECTED_RETRYABLE
    assert isinstance(second, Sent)
    assert len(push_service.received) == 1


def test_a_server_error_is_temporary(push_service, vapid):
    subscription = push_service.subscribe(application_server_key(vapid))
    push_service.answer_next(subscription, 503)

    outcome = WebPushSender(vapid, SUBJECT).send(push_to(subscription))

    assert isinstance(outcome, TemporaryFailure)
    assert (outcome.code, outcome.retry_after) == ("provider_unavailable", None)


def test_a_subscription_made_for_another_server_key_refuses_our_pushes(push_service, vapid):
    # Given a subscription made with another application's key
    other = load_vapid(another_key_pem())
    subscription = push_service.subscribe(application_server_key(other))

    # When we push to it with ours
    outcome = WebPushSender(vapid, SUBJECT).send(push_to(subscription))

    # Then the push service checked the VAPID key and refused it
    assert isinstance(outcome, PermanentFailure)
    assert (outcome.code, outcome.provider_code) == (REJECTED, "403")
    assert push_service.received == []


def test_broken_subscription_keys_and_oversized_payloads_are_refused_before_sending(
    push_service, vapid
):
    subscription = push_service.subscribe(application_server_key(vapid))
    broken = OutboundMessage(
        uuid4(),
        "push",
        subscription.endpoint,
        push=PushNotice(PushKeys(p256dh="bm90IGEga2V5", auth="c2hvcnQ"), dict(NOTICE)),
    )
    sender = WebPushSender(vapid, SUBJECT)

    bad_keys = sender.send(broken)
    too_large = sender.send(push_to(subscription, {"body": "x" * 4000}))

    assert isinstance(bad_keys, PermanentFailure)
    assert bad_keys.code == INVALID_RECIPIENT
    assert isinstance(too_large, PermanentFailure)
    assert too_large.code == TOO_LARGE
    assert push_service.received == []


def test_the_development_vapid_key_is_kept_private_and_reused(tmp_path):
    # Given no key yet
    path = tmp_path / "keys" / "vapid.pem"

    # When it is asked for twice
    first, second = vapid_from_file(path), vapid_from_file(path)

    # Then it was made once, readable by this account only
    assert application_server_key(first) == application_server_key(second)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(application_server_key(first)) == 87  # 65 bytes, base64url


def test_a_vapid_key_that_is_not_one_is_refused_without_echoing_it():
    with pytest.raises(VapidKeyError) as refused:
        load_vapid("not-a-key-SECRET")

    assert "SECRET" not in str(refused.value)


def test_a_vapid_subject_must_say_whom_to_contact(vapid):
    with pytest.raises(ValueError, match="mailto"):
        WebPushSender(vapid, "operations@centre.example")
