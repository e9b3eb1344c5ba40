"""Notices over SMS (the official Twilio client against a local server speaking the
Messages API) and web push (pywebpush against a local push service that decrypts the
payload): success, temporary failure then success, permanent failure, and what a gone
address changes."""

import json
from datetime import timedelta

import pytest
from py_vapid import Vapid

from adapters.channels.sms_twilio import TwilioConfig, TwilioSmsSender
from adapters.channels.vapid_keys import application_server_key
from adapters.channels.web_push import WebPushSender
from tests.integration.mllp_peer import wait_until
from tests.integration.notices import (
    BASE_URL,
    CENTRE,
    NOON,
    Preferences,
    channel_worker,
    new_patient,
    queue_notice,
    send_current,
)
from tests.providers.fake_twilio import INVALID_NUMBER, RATE_LIMITED, UNSUBSCRIBED
from tests.support import staff_headers

pytestmark = pytest.mark.integration

PHONE = "+15555550123"
CALLBACK = f"{BASE_URL}/v1/hooks/twilio/status?delivery={{delivery_id}}"


def twilio(fake) -> dict[str, TwilioSmsSender]:
    config = TwilioConfig(
        account_sid=fake.account_sid,
        auth_token=fake.auth_token,
        sender="+15550100",
        base_url=fake.base_url,
        status_callback=CALLBACK,
    )
    return {"sms": TwilioSmsSender(config)}


def sms_patient(runtime, client, email: str) -> tuple[object, Preferences]:
    patient = new_patient(client, email, phone=PHONE)
    preferences = Preferences(runtime)
    preferences.grant(patient, "email", "sms")
    return patient, preferences


def test_an_sms_reminder_goes_to_the_patients_phone(runtime, client, clock, fake_twilio):
    clock.set(NOON)
    patient, _preferences = sms_patient(runtime, client, "sam@example.org")
    delivery = queue_notice(runtime, patient, "sms")

    outcome = send_current(channel_worker(runtime, twilio(fake_twilio)), runtime, delivery.id)

    assert outcome == "accepted"
    [sent] = fake_twilio.messages
    assert sent["To"] == PHONE
    assert sent["From"] == "+15550100"
    assert sent["Body"].startswith(f"{CENTRE}: reminder of your appointment")
    assert "CT head" not in sent["Body"]  # no clinical words in an SMS
    assert sent["StatusCallback"] == CALLBACK.replace("{delivery_id}", str(delivery.id))
    assert runtime.services.deliveries.deliveries.delivery(delivery.id).last_detail == sent["Sid"]


def test_an_sms_rate_limited_once_is_retried_then_sent(runtime, client, clock, fake_twilio):
    clock.set(NOON)
    patient, _preferences = sms_patient(runtime, client, "tim@example.org")
    delivery = queue_notice(runtime, patient, "sms")
    fake_twilio.fail_next(PHONE, RATE_LIMITED)
    worker = channel_worker(runtime, twilio(fake_twilio))

    # The first try is refused for now: the delivery waits, with backoff
    assert send_current(worker, runtime, delivery.id) == "error"
    waiting = runtime.services.deliveries.deliveries.delivery(delivery.id)
    assert waiting.status == "retrying"
    assert waiting.last_code == "rate_limited"
    assert waiting.next_attempt_at is not None
    assert waiting.next_attempt_at > NOON
    assert send_current(worker, runtime, delivery.id) == "stale"  # not due yet

    # Once due again, it goes
    clock.set(waiting.next_attempt_at)
    assert send_current(worker, runtime, delivery.id) == "accepted"
    assert [m["To"] for m in fake_twilio.messages] == [PHONE]


def test_an_invalid_number_is_dead_lettered_and_shown_to_staff(runtime, client, clock, fake_twilio):
    clock.set(NOON)
    patient, _preferences = sms_patient(runtime, client, "una@example.org")
    delivery = queue_notice(runtime, patient, "sms")
    fake_twilio.fail_next(PHONE, INVALID_NUMBER)

    outcome = send_current(channel_worker(runtime, twilio(fake_twilio)), runtime, delivery.id)

    assert outcome == "rejected"
    assert fake_twilio.messages == []
    admin = staff_headers(client, runtime, clock, "admin")

    def listed():
        answer = client.get(
            "/v1/admin/deliveries",
            params={"channel": "sms", "status": "dead_lettered"},
            headers=admin,
        )
        assert answer.status_code == 200, answer.text
        return answer.json()

    [dead] = wait_until(listed)
    assert dead["id"] == str(delivery.id)
    assert dead["last_code"] == "invalid_recipient"
    assert (
        client.get("/v1/admin/deliveries", params={"channel": "email"}, headers=admin).json() == []
    )


def test_an_sms_to_a_number_that_replied_stop_withdraws_sms_consent(
    runtime, client, clock, fake_twilio
):
    clock.set(NOON)
    patient, preferences = sms_patient(runtime, client, "vic@example.org")
    delivery = queue_notice(runtime, patient, "sms")
    fake_twilio.fail_next(PHONE, UNSUBSCRIBED)

    outcome = send_current(channel_worker(runtime, twilio(fake_twilio)), runtime, delivery.id)

    assert outcome == "rejected"
    assert runtime.services.deliveries.deliveries.delivery(delivery.id).last_code == "unsubscribed"
    # The number's SMS consent is withdrawn at once, as by a STOP: nothing more goes to it.
    sms = preferences.of(patient).consent("sms")
    assert sms is not None
    assert (sms.granted, sms.source) == (False, "sms_stop")


@pytest.fixture
def vapid() -> Vapid:
    key = Vapid()
    key.generate_keys()
    return key


def push_patient(runtime, client, push_service, vapid, email: str):
    patient = new_patient(client, email)
    browser = push_service.subscribe(application_server_key(vapid))
    preferences = Preferences(runtime)
    keys = browser.keys
    preferences.subscribe(patient, browser.endpoint, keys.p256dh, keys.auth)
    preferences.grant(patient, "push")
    return patient, browser, preferences


def pusher(vapid) -> dict[str, WebPushSender]:
    return {"push": WebPushSender(vapid, "mailto:it@centre.example")}


def test_a_push_arrives_and_decrypts_to_the_notice(runtime, client, clock, push_service, vapid):
    clock.set(NOON)
    patient, browser, _preferences = push_patient(
        runtime, client, push_service, vapid, "pia@example.org"
    )
    delivery = queue_notice(runtime, patient, "push")

    outcome = send_current(channel_worker(runtime, pusher(vapid)), runtime, delivery.id)

    assert outcome == "accepted"
    [received] = push_service.received
    assert received.token == browser.token
    assert received.topic == delivery.id.hex
    data = json.loads(received.data)
    assert data["kind"] == "reminder"
    assert data["url"].startswith(f"{BASE_URL}/appointments/")
    assert data["title"]
    assert data["body"]


def test_a_push_rate_limited_waits_as_long_as_the_service_asked(
    runtime, client, clock, push_service, vapid
):
    clock.set(NOON)
    patient, browser, _preferences = push_patient(
        runtime, client, push_service, vapid, "quin@example.org"
    )
    delivery = queue_notice(runtime, patient, "push")
    push_service.answer_next(browser, 429, Retry_After="3")
    worker = channel_worker(runtime, pusher(vapid))

    assert send_current(worker, runtime, delivery.id) == "error"
    waiting = runtime.services.deliveries.deliveries.delivery(delivery.id)
    assert waiting.next_attempt_at is not None
    assert waiting.next_attempt_at >= NOON + timedelta(seconds=3)

    clock.set(waiting.next_attempt_at)
    assert send_current(worker, runtime, delivery.id) == "accepted"
    assert len(push_service.received) == 1


def test_a_gone_push_subscription_is_removed(runtime, client, clock, push_service, vapid):
    clock.set(NOON)
    patient, browser, preferences = push_patient(
        runtime, client, push_service, vapid, "rui@example.org"
    )
    delivery = queue_notice(runtime, patient, "push")
    push_service.answer_next(browser, 410)

    outcome = send_current(channel_worker(runtime, pusher(vapid)), runtime, delivery.id)

    assert outcome == "rejected"
    ended = runtime.services.deliveries.deliveries.delivery(delivery.id)
    assert ended.status == "dead_lettered"
    assert ended.last_code == "subscription_gone"
    assert preferences.of(patient).push_subscriptions == ()
    # And the next push notice finds no way to reach the patient: refused, not sent
    later = queue_notice(runtime, patient, "push")
    worker = channel_worker(runtime, pusher(vapid))
    assert send_current(worker, runtime, later.id) == "rejected"
    assert runtime.services.deliveries.deliveries.delivery(later.id).last_code == "no_consent"
