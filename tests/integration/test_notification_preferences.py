"""Notification preferences through the API on real PostgreSQL: the defaults, consent per
channel with its time and source, SMS STOP/START by phone number in any format, push
subscriptions, the public key, refusals (422), and one patient never seeing another's."""

import base64
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from adapters.channels.vapid_keys import application_server_key
from domain.context import Actor
from tests.support import audit_rows, register, settle

pytestmark = pytest.mark.integration

PREFS = "/v1/me/notification-preferences"
SUBSCRIPTIONS = "/v1/me/push-subscriptions"
TWILIO = Actor(id="twilio", role="system", source="sms-inbound")
STOPPED_AT = datetime(2026, 12, 3, 18, 45, tzinfo=UTC)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def browser_subscription(endpoint: str = "https://push.example.org/send/one") -> dict:
    """What a browser's ``PushSubscription.toJSON()`` gives: real P-256 keys."""
    point = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    )
    return {
        "endpoint": endpoint,
        "expirationTime": None,
        "keys": {"p256dh": b64url(point), "auth": b64url(b"0123456789abcdef")},
    }


def patient_id(client, headers) -> str:
    return client.get("/v1/patients/me", headers=headers).json()["id"]


def with_phone(client, email: str, phone: str) -> dict[str, str]:
    headers = register(client, email)
    changed = client.patch("/v1/patients/me", headers=headers, json={"phone": phone})
    assert changed.status_code == 200, changed.text
    return headers


def put(client, headers, **changes):
    """PUT the document as read, with ``changes`` (``sms=True`` for a channel)."""
    document = client.get(PREFS, headers=headers).json()
    for name, value in changes.items():
        if name in ("email", "sms", "push"):
            document["channels"][name]["enabled"] = value
        else:
            document[name] = value
    return client.put(PREFS, headers=headers, json=document)


def test_a_new_patient_hears_by_email_only(client):
    headers = register(client, "ada@example.org")
    answer = client.get(PREFS, headers=headers)
    assert answer.status_code == 200
    document = answer.json()
    email = document["channels"]["email"]
    assert (email["enabled"], email["source"], email["ready"]) == (True, "registration", True)
    assert email["since"] is not None
    for channel in ("sms", "push"):
        assert document["channels"][channel] == {
            "enabled": False,
            "since": None,
            "source": None,
            "ready": False,
        }
    assert document["language"] == "en"
    assert document["quiet_hours"] is None
    assert document["timezone"] is None
    assert document["push_subscriptions"] == 0


def test_the_document_read_can_be_written_back_unchanged(client, runtime):
    headers = register(client, "bea@example.org")
    before = client.get(PREFS, headers=headers).json()
    again = client.put(PREFS, headers=headers, json=before)
    assert again.status_code == 200, again.text
    assert again.json() == before


def test_choosing_sms_language_quiet_hours_and_zone(client, runtime, clock):
    headers = with_phone(client, "cal@example.org", "(215) 555-0111")
    answer = put(
        client,
        headers,
        sms=True,
        email=False,
        language="es",
        quiet_hours="21:30-07:00",
        timezone="America/Chicago",
    )
    assert answer.status_code == 200, answer.text
    document = answer.json()
    assert document["channels"]["sms"]["enabled"] is True
    assert document["channels"]["sms"]["source"] == "portal"
    assert document["channels"]["sms"]["ready"] is True
    assert datetime.fromisoformat(document["channels"]["sms"]["since"]) == clock.now()
    assert document["channels"]["email"]["enabled"] is False
    assert (document["language"], document["quiet_hours"], document["timezone"]) == (
        "es",
        "21:30-07:00",
        "America/Chicago",
    )
    assert client.get(PREFS, headers=headers).json() == document
    prefs = runtime.services.preferences.preferences(runtime_id(client, headers))
    assert prefs.allows("sms")
    assert not prefs.allows("email")
    assert str(prefs.quiet_hours) == "21:30-07:00"
    cleared = put(client, headers, quiet_hours=None, timezone=None)
    assert (cleared.json()["quiet_hours"], cleared.json()["timezone"]) == (None, None)


def runtime_id(client, headers):
    from uuid import UUID

    return UUID(patient_id(client, headers))


def test_sms_stop_from_the_number_in_another_format_withdraws_at_once(client, runtime):
    stopping = with_phone(client, "dan@example.org", "215-555-0111")
    other = with_phone(client, "eve@example.org", "+1 267 555 0199")
    for headers in (stopping, other):
        assert put(client, headers, sms=True).status_code == 200
    settle(runtime)
    preferences = runtime.services.preferences

    stopped = preferences.sms_stop("+12155550111", STOPPED_AT, TWILIO)

    assert [str(p) for p in stopped] == [patient_id(client, stopping)]
    sms = client.get(PREFS, headers=stopping).json()["channels"]["sms"]
    assert (sms["enabled"], sms["source"]) == (False, "sms_stop")
    assert datetime.fromisoformat(sms["since"]) == STOPPED_AT
    assert client.get(PREFS, headers=other).json()["channels"]["sms"]["enabled"] is True
    assert preferences.patients_with_phone("1-215-555-0111") == stopped
    assert preferences.patients_with_phone("+1 215 555 0112") == []
    assert preferences.patients_with_phone("not a phone") == []

    started = preferences.sms_start("(215) 555-0111", STOPPED_AT, TWILIO)
    assert started == stopped
    sms = client.get(PREFS, headers=stopping).json()["channels"]["sms"]
    assert (sms["enabled"], sms["source"]) == (True, "sms_start")


def test_stop_reaches_every_record_with_the_number_and_follows_a_change_of_number(client, runtime):
    first = with_phone(client, "fay@example.org", "+1 215 555 0133")
    second = with_phone(client, "gus@example.org", "215 555 0133")
    moved = with_phone(client, "hal@example.org", "215 555 0133")
    for headers in (first, second, moved):
        put(client, headers, sms=True)
    client.patch("/v1/patients/me", headers=moved, json={"phone": "+1 215 555 0144"})
    settle(runtime)
    stopped = runtime.services.preferences.sms_stop("+12155550133", STOPPED_AT, TWILIO)
    assert sorted(str(p) for p in stopped) == sorted(
        [patient_id(client, first), patient_id(client, second)]
    )
    # The new number was never consented to: the change withdrew SMS, not the STOP.
    sms = client.get(PREFS, headers=moved).json()["channels"]["sms"]
    assert (sms["enabled"], sms["source"]) == (False, "number_changed")


def test_a_new_number_turns_sms_off_until_the_patient_consents_for_it(client, runtime):
    headers = with_phone(client, "hub@example.org", "+1 215 555 0166")
    assert put(client, headers, sms=True).status_code == 200
    reformatted = client.patch("/v1/patients/me", headers=headers, json={"phone": "215-555-0166"})
    assert reformatted.status_code == 200
    assert client.get(PREFS, headers=headers).json()["channels"]["sms"]["enabled"] is True

    changed = client.patch("/v1/patients/me", headers=headers, json={"phone": "+1 267 555 0177"})
    assert changed.status_code == 200
    sms = client.get(PREFS, headers=headers).json()["channels"]["sms"]
    assert (sms["enabled"], sms["source"], sms["ready"]) == (False, "number_changed", False)
    prefs = runtime.services.preferences.preferences(patient_id(client, headers))
    assert not prefs.allows("sms")

    assert put(client, headers, sms=True).status_code == 200
    sms = client.get(PREFS, headers=headers).json()["channels"]["sms"]
    assert (sms["enabled"], sms["source"], sms["ready"]) == (True, "portal", True)


def test_sms_needs_a_phone_and_push_a_subscription(client, runtime):
    headers = register(client, "ida@example.org")
    for channel, words in (("sms", "phone"), ("push", "subscribe")):
        refused = put(client, headers, **{channel: True})
        assert refused.status_code == 422
        assert refused.json()["code"] == "invalid_value"
        assert words in refused.json()["detail"]
    # All or nothing: a refused PUT changes nothing else either.
    refused = put(client, headers, sms=True, language="es")
    assert refused.status_code == 422
    assert client.get(PREFS, headers=headers).json()["language"] == "en"


def test_push_subscriptions_come_and_go(client, runtime):
    headers = register(client, "jon@example.org")
    subscription = browser_subscription()
    added = client.post(SUBSCRIPTIONS, headers=headers, json=subscription)
    assert added.status_code == 201, added.text
    assert added.json()["push_subscriptions"] == 1
    assert (
        client.post(SUBSCRIPTIONS, headers=headers, json=subscription).json()["push_subscriptions"]
        == 1
    )
    on = put(client, headers, push=True)
    assert on.status_code == 200
    assert on.json()["channels"]["push"]["ready"] is True
    pid = runtime_id(client, headers)
    assert runtime.services.preferences.preferences(pid).allows("push")

    gone = client.delete(
        SUBSCRIPTIONS, headers=headers, params={"endpoint": subscription["endpoint"]}
    )
    assert gone.status_code == 204
    document = client.get(PREFS, headers=headers).json()
    assert document["push_subscriptions"] == 0
    assert document["channels"]["push"]["enabled"] is True  # the consent stays
    assert document["channels"]["push"]["ready"] is False  # but no browser to push to
    again = client.delete(SUBSCRIPTIONS, headers=headers, params={"endpoint": "https://x.example/"})
    assert again.status_code == 204


def test_a_push_service_that_says_gone_removes_the_subscription(client, runtime):
    headers = register(client, "kim@example.org")
    subscription = browser_subscription("https://push.example.org/send/kim")
    client.post(SUBSCRIPTIONS, headers=headers, json=subscription)
    pid = runtime_id(client, headers)
    provider = Actor(id="push-worker", role="system", source="push")
    removed = runtime.services.preferences.remove_push_subscription(
        pid, subscription["endpoint"], provider, "provider"
    )
    assert removed is True
    assert runtime.services.preferences.preferences(pid).push_subscriptions == ()
    assert not runtime.services.preferences.remove_push_subscription(
        pid, subscription["endpoint"], provider, "provider"
    )


@pytest.mark.parametrize(
    "body",
    [
        {**browser_subscription(), "endpoint": "http://push.example.org/plain"},
        {**browser_subscription(), "endpoint": "http://127.0.0.1:9/push/local"},
        {**browser_subscription(), "keys": {"p256dh": "bm90IGEga2V5", "auth": "c2VjcmV0"}},
        {**browser_subscription(), "keys": {"p256dh": "!!", "auth": "??"}},
        {"endpoint": "https://push.example.org/send/x"},
        {**browser_subscription(), "admin": True},
    ],
)
def test_a_subscription_that_is_not_a_browsers_is_refused(client, runtime, body):
    headers = register(client, "lea@example.org")
    refused = client.post(SUBSCRIPTIONS, headers=headers, json=body)
    assert refused.status_code == 422
    assert set(refused.json()) == {"code", "detail"}
    assert client.get(PREFS, headers=headers).json()["push_subscriptions"] == 0


@pytest.mark.parametrize(
    "change",
    [
        {"quiet_hours": "25:00-08:00"},
        {"quiet_hours": "9pm-8am"},
        {"quiet_hours": "08:00-08:00"},
        {"timezone": "Mars/Olympus_Mons"},
        {"timezone": "../../etc/passwd"},
        {"language": "fr"},
        {"channels": {"email": {"enabled": True}}},
        {"channels": {"email": {"enabled": True}, "sms": {"enabled": False}, "fax": {}}},
        {"owner": "someone else"},
    ],
)
def test_bad_preferences_are_refused_and_change_nothing(client, runtime, change):
    headers = register(client, "max@example.org")
    document = client.get(PREFS, headers=headers).json()
    refused = client.put(PREFS, headers=headers, json={**document, **change})
    assert refused.status_code == 422, refused.text
    assert set(refused.json()) == {"code", "detail"}
    assert client.get(PREFS, headers=headers).json() == document


def test_another_patients_preferences_are_never_shown_or_changed(client, runtime):
    ned = with_phone(client, "ned@example.org", "+1 215 555 0155")
    oda = register(client, "oda@example.org")
    subscription = browser_subscription("https://push.example.org/send/ned")
    client.post(SUBSCRIPTIONS, headers=ned, json=subscription)
    put(client, ned, sms=True, language="es", quiet_hours="22:00-07:00")
    oda_view = client.get(PREFS, headers=oda).json()
    assert oda_view["language"] == "en"
    assert oda_view["push_subscriptions"] == 0
    assert oda_view["channels"]["sms"]["enabled"] is False
    # Oda removing Ned's endpoint touches only her own (empty) list.
    client.delete(SUBSCRIPTIONS, headers=oda, params={"endpoint": subscription["endpoint"]})
    assert client.get(PREFS, headers=ned).json()["push_subscriptions"] == 1
    assert client.get(PREFS).status_code == 401


def test_reads_and_changes_are_in_the_access_log(client, runtime):
    headers = register(client, "pia@example.org")
    client.get(PREFS, headers=headers)
    put(client, headers, language="es")
    client.post(SUBSCRIPTIONS, headers=headers, json=browser_subscription())
    client.delete(SUBSCRIPTIONS, headers=headers, params={"endpoint": "https://x.example/"})
    runtime.services.access_log.flush()
    pid = patient_id(client, headers)
    rows = [(action, resource) for action, resource, *_ in audit_rows(runtime.url, pid)]
    assert rows.count(("read", "notification_preferences")) == 2  # the GET, and put()'s
    assert ("update", "notification_preferences") in rows
    assert ("add", "push_subscription") in rows
    assert ("remove", "push_subscription") in rows


def test_the_public_key_is_the_one_pushes_are_signed_with(client, runtime):
    answer = client.get("/v1/push/public-key")
    assert answer.status_code == 200
    key = answer.json()["public_key"]
    assert key == application_server_key(runtime.vapid)
    point = base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))
    assert len(point) == 65
    assert point[0] == 4
