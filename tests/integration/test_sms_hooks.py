"""Twilio's callbacks: a signed delivery status is recorded on its delivery (and shown to
the operator), an unsigned or wrongly signed one is refused; inbound STOP, START and
HELP. Signatures are computed as Twilio documents them, independently of the library."""

import pytest

from adapters.channels.sms_callbacks import TwilioCallbacks
from adapters.channels.sms_twilio import TwilioConfig, TwilioSmsSender
from tests.integration.mllp_peer import wait_until
from tests.integration.notices import (
    NOON,
    Preferences,
    channel_worker,
    new_patient,
    queue_notice,
    send_current,
)
from tests.providers.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, twilio_signature
from tests.support import audit_rows, staff_headers

pytestmark = pytest.mark.integration

PHONE = "+15555550123"


@pytest.fixture
def hooks(runtime):
    """The callbacks checked with the account's auth token, as the composition root wires
    them when TWILIO_AUTH_TOKEN is set."""
    runtime.services.sms_hooks.reader = TwilioCallbacks(AUTH_TOKEN)
    return runtime.services.sms_hooks


def signed_post(
    client, runtime, path: str, params: dict[str, str], query: str = "", token=AUTH_TOKEN
):
    url = f"{runtime.settings.base_url}{path}" + (f"?{query}" if query else "")
    headers = {"X-Twilio-Signature": twilio_signature(token, url, params)}
    return client.post(path + (f"?{query}" if query else ""), data=params, headers=headers)


def sent_sms(runtime, client, clock, fake_twilio):
    """An SMS reminder sent through the fake Twilio: the delivery and its message SID."""
    clock.set(NOON)
    patient = new_patient(client, "sol@example.org", phone=PHONE)
    preferences = Preferences(runtime)
    preferences.grant(patient, "sms")
    delivery = queue_notice(runtime, patient, "sms")
    config = TwilioConfig(ACCOUNT_SID, AUTH_TOKEN, "+15550100", base_url=fake_twilio.base_url)
    worker = channel_worker(runtime, {"sms": TwilioSmsSender(config)})
    assert send_current(worker, runtime, delivery.id) == "accepted"
    [message] = fake_twilio.messages
    return delivery, message["Sid"]


def status(sid: str, value: str, **extra: str) -> dict[str, str]:
    return {
        "AccountSid": ACCOUNT_SID,
        "MessageSid": sid,
        "SmsSid": sid,
        "MessageStatus": value,
        "SmsStatus": value,
        "ApiVersion": "2010-04-01",
        **extra,
    }


def test_a_signed_status_callback_is_recorded_on_its_delivery(
    runtime, client, clock, fake_twilio, hooks
):
    # Given an SMS the provider took
    delivery, sid = sent_sms(runtime, client, clock, fake_twilio)

    # When Twilio reports it undelivered, signed
    answer = signed_post(
        client,
        runtime,
        "/v1/hooks/twilio/status",
        status(sid, "undelivered", ErrorCode="30003"),
        query=f"delivery={delivery.id}",
    )

    # Then the receipt is on the delivery, with the provider's code, for the operator
    assert answer.status_code == 204, answer.text
    recorded = runtime.services.deliveries.deliveries.delivery(delivery.id)
    assert recorded.last_receipt == "undelivered"
    admin = staff_headers(client, runtime, clock, "admin")

    def receipt():
        shown = client.get(f"/v1/admin/deliveries/{delivery.id}", headers=admin)
        assert shown.status_code == 200, shown.text
        return [h for h in shown.json()["history"] if h["kind"] == "receipt"]

    [entry] = wait_until(receipt)
    assert entry["code"] == "30003"
    assert entry["outcome"] == "undelivered"
    # And the call is in the access log, the provider as its actor
    runtime.services.access_log.flush()
    assert ("write", "delivery_receipt", "provider", "", delivery.recipient) in audit_rows(
        runtime.url, str(delivery.id)
    )


@pytest.mark.parametrize("signature", ["", "bm90IHRoZSByaWdodCBzaWduYXR1cmU="])
def test_a_status_callback_without_the_right_signature_is_refused(
    runtime, client, clock, fake_twilio, hooks, signature
):
    delivery, sid = sent_sms(runtime, client, clock, fake_twilio)
    path = f"/v1/hooks/twilio/status?delivery={delivery.id}"
    headers = {"X-Twilio-Signature": signature} if signature else {}

    answer = client.post(path, data=status(sid, "delivered"), headers=headers)

    assert answer.status_code == 403
    assert answer.json()["code"] == "bad_signature"
    assert runtime.services.deliveries.deliveries.delivery(delivery.id).last_receipt == ""


def test_a_callback_signed_for_another_delivery_is_refused(
    runtime, client, clock, fake_twilio, hooks
):
    # The signature covers the query: moving a receipt onto another delivery breaks it
    delivery, sid = sent_sms(runtime, client, clock, fake_twilio)
    params = status(sid, "delivered")
    url = f"{runtime.settings.base_url}/v1/hooks/twilio/status?delivery=other"
    headers = {"X-Twilio-Signature": twilio_signature(AUTH_TOKEN, url, params)}

    answer = client.post(
        f"/v1/hooks/twilio/status?delivery={delivery.id}", data=params, headers=headers
    )

    assert answer.status_code == 403


def test_a_callback_signed_with_another_token_is_refused(
    runtime, client, clock, fake_twilio, hooks
):
    delivery, sid = sent_sms(runtime, client, clock, fake_twilio)
    answer = signed_post(
        client,
        runtime,
        "/v1/hooks/twilio/status",
        status(sid, "delivered"),
        query=f"delivery={delivery.id}",
        token="another-accounts-token",
    )
    assert answer.status_code == 403


def inbound(body: str) -> dict[str, str]:
    return {
        "AccountSid": ACCOUNT_SID,
        "MessageSid": "SM" + "a" * 32,
        "From": PHONE,
        "To": "+15550100",
        "Body": body,
    }


def test_help_is_answered_with_the_centres_name(runtime, client, hooks):
    answer = signed_post(client, runtime, "/v1/hooks/twilio/inbound", inbound("help"))

    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/xml")
    assert "<Response><Message>" in answer.text
    assert runtime.settings.centre_name in answer.text


def test_stop_stops_further_sms_at_once_and_start_gives_it_back(
    runtime, client, clock, hooks, fake_twilio
):
    clock.set(NOON)
    # The record's number is written as the patient typed it; Twilio sends E.164.
    patient = new_patient(client, "stop@example.org", phone="(555) 555-0123")
    preferences = Preferences(runtime)
    preferences.grant(patient, "email", "sms")
    pending = queue_notice(runtime, patient, "sms")

    answer = signed_post(client, runtime, "/v1/hooks/twilio/inbound", inbound(" Stop. "))

    assert answer.status_code == 200, answer.text
    assert answer.text.endswith("<Response></Response>")
    sms = preferences.of(patient).consent("sms")
    assert sms is not None
    assert (sms.granted, sms.source) == (False, "sms_stop")
    config = TwilioConfig(ACCOUNT_SID, AUTH_TOKEN, "+15550100", base_url=fake_twilio.base_url)
    worker = channel_worker(runtime, {"sms": TwilioSmsSender(config)})
    assert send_current(worker, runtime, pending.id) == "rejected"  # queued before the STOP
    assert runtime.services.deliveries.deliveries.delivery(pending.id).last_code == "no_consent"
    assert fake_twilio.messages == []

    again = signed_post(client, runtime, "/v1/hooks/twilio/inbound", inbound("START"))
    assert again.status_code == 200, again.text
    assert preferences.of(patient).allows("sms")
    later = queue_notice(runtime, patient, "sms")
    assert send_current(worker, runtime, later.id) == "accepted"
    assert [m["To"] for m in fake_twilio.messages] == [PHONE]


def test_an_unsigned_inbound_message_changes_nothing(runtime, client, hooks):
    patient = new_patient(client, "unsigned@example.org", phone=PHONE)
    preferences = Preferences(runtime)
    preferences.grant(patient, "email", "sms")

    answer = client.post("/v1/hooks/twilio/inbound", data=inbound("STOP"))

    assert answer.status_code == 403
    assert preferences.of(patient).allows("sms")
