"""Patient preferences: consent per channel with time and source, language, quiet hours,
zone and push subscriptions; the defaults an older record starts from; replay."""

from datetime import UTC, date, datetime, time, timedelta
from uuid import uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from application.registry import RegistryLog
from domain.contact_preferences import (
    EMAIL,
    PUSH,
    SMS,
    Consent,
    ContactPreferences,
    e164,
    push_endpoint_allowed,
)
from domain.errors import InvalidValueError
from domain.patient import Patient
from domain.reminders import QuietHours

META = {"actor_id": "x", "role": "patient", "request_id": "", "source": "test"}
AT = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
ENDPOINT = "https://push.example.org/send/abc"


def patient(email: str = "pat@example.org", phone: str | None = "+1 215 555 0111") -> Patient:
    return Patient.register(
        id=uuid4(),
        given_name="Pat",
        family_name="Example",
        birth_date=date(1980, 5, 17),
        email=email,
        phone=phone,
        today=date(2026, 12, 1),
        meta=META,
    )


def test_a_registered_patient_hears_by_email_only():
    given = patient()
    prefs = given.preferences
    assert prefs.allows(EMAIL)
    consent = prefs.consent(EMAIL)
    assert consent is not None
    assert (consent.source, consent.at) == ("registration", given.created_on)
    assert not prefs.allows(SMS)
    assert not prefs.allows(PUSH)
    assert prefs.language == "en"
    assert prefs.quiet_hours is None
    assert prefs.zone is None


def test_a_ris_record_has_no_email_consent_until_an_account_claims_it():
    given = Patient.register(
        id=uuid4(),
        given_name="Ris",
        family_name="Made",
        birth_date=date(1970, 1, 1),
        email="",
        phone=None,
        today=date(2026, 12, 1),
        meta=META,
    )
    assert given.preferences.consent(EMAIL) is None
    given.link_account(uuid4(), "ris.made@example.org", META)
    consent = given.preferences.consent(EMAIL)
    assert consent is not None
    assert consent.granted
    assert consent.source == "ris"


def test_sms_consent_needs_a_phone_and_is_withdrawn_with_its_source():
    given = patient()
    assert given.give_consent(SMS, at=AT, source="portal", meta=META)
    assert given.preferences.allows(SMS)
    assert not given.give_consent(SMS, at=AT, source="portal", meta=META)  # nothing new
    later = AT + timedelta(hours=1)
    assert given.withdraw_consent(SMS, at=later, source="sms_stop", meta=META)
    assert given.preferences.consent(SMS) == Consent(SMS, False, later, "sms_stop")
    assert not given.withdraw_consent(SMS, at=later, source="sms_stop", meta=META)

    without_phone = patient(phone=None)
    with pytest.raises(InvalidValueError, match="phone"):
        without_phone.give_consent(SMS, at=AT, source="portal", meta=META)


def change_phone(given: Patient, phone: str | None, at: datetime = AT) -> bool:
    return given.change_demographics(
        given_name=given.given_name,
        family_name=given.family_name,
        birth_date=given.birth_date,
        phone=phone,
        today=date(2026, 12, 1),
        at=at,
        meta=META,
    )


def test_sms_consent_is_for_one_number_and_a_new_number_needs_it_again():
    given = patient(phone="+1 215 555 0111")
    given.give_consent(SMS, at=AT, source="portal", meta=META)
    given.collect_events()
    later = AT + timedelta(days=1)
    assert change_phone(given, "+1 267 555 0199", later)
    assert [type(e) for e in given.collect_events()] == [
        Patient.DemographicsChanged,
        Patient.ConsentWithdrawn,
    ]
    assert given.preferences.consent(SMS) == Consent(SMS, False, later, "number_changed")
    assert not given.preferences.allows(SMS)
    assert given.give_consent(SMS, at=later, source="portal", meta=META)
    assert given.preferences.allows(SMS)


def test_the_same_number_written_differently_keeps_sms_consent():
    given = patient(phone="+1 215 555 0111")
    given.give_consent(SMS, at=AT, source="portal", meta=META)
    assert change_phone(given, "(215) 555-0111")
    assert given.preferences.allows(SMS)
    assert change_phone(given, None)  # no number: nothing to text, the consent goes
    assert given.preferences.consent(SMS) == Consent(SMS, False, AT, "number_changed")


numbers = st.sampled_from(["+1 215 555 0111", "215-555-0111", "+1 267 555 0199", None, "555"])


@settings(max_examples=200, deadline=None)
@given(start=numbers, steps=st.lists(st.tuples(st.booleans(), numbers), max_size=8))
def test_sms_is_allowed_only_for_the_number_it_was_given_for(start, steps):
    """Whatever the order of consents and changes of number, SMS is allowed exactly when
    the patient last consented while the record had the number it has now (in E.164)."""
    live = patient(phone=start)
    consented_for: str | None = None
    for number, (consent, phone) in enumerate(steps):
        at = AT + timedelta(minutes=number)
        if consent:
            try:
                live.give_consent(SMS, at=at, source="portal", meta=META)
                consented_for = consented_for or e164(live.phone or "")
            except InvalidValueError:
                pass
        else:
            change_phone(live, phone, at)
            if e164(phone or "") != consented_for:
                consented_for = None
    assert live.preferences.allows(SMS) == (
        consented_for is not None and consented_for == e164(live.phone or "")
    )
    replayed = None
    for domain_event in live.collect_events():
        replayed = domain_event.mutate(replayed)
    assert replayed is not None
    assert replayed.preferences == live.preferences


def test_push_consent_needs_a_subscription_and_lapses_without_one():
    given = patient()
    with pytest.raises(InvalidValueError, match="subscribe"):
        given.give_consent(PUSH, at=AT, source="portal", meta=META)
    given.add_push_subscription(endpoint=ENDPOINT, p256dh="k", auth="a", at=AT, meta=META)
    given.give_consent(PUSH, at=AT, source="portal", meta=META)
    assert given.preferences.allows(PUSH)
    assert given.remove_push_subscription(ENDPOINT, at=AT, source="provider", meta=META)
    assert not given.preferences.allows(PUSH)
    assert not given.remove_push_subscription(ENDPOINT, at=AT, source="provider", meta=META)


def test_withdrawing_email_overrides_the_default():
    given = patient()
    given.withdraw_consent(EMAIL, at=AT, source="portal", meta=META)
    assert not given.preferences.allows(EMAIL)
    assert given.preferences.consent(EMAIL) == Consent(EMAIL, False, AT, "portal")


def test_language_quiet_hours_and_zone_change_only_when_different():
    given = patient()
    assert given.choose_language("es", META)
    assert not given.choose_language("es", META)
    hours = QuietHours(time(21), time(8))
    assert given.set_quiet_hours(hours, META)
    assert not given.set_quiet_hours(QuietHours.parse("21:00-08:00"), META)
    assert given.choose_timezone("America/Chicago", META)
    assert given.preferences == ContactPreferences(
        consents=given.preferences.consents,
        language="es",
        quiet_hours=hours,
        zone="America/Chicago",
    )
    assert given.set_quiet_hours(None, META)
    assert given.choose_timezone(None, META)
    assert given.preferences.quiet_hours is None
    assert given.preferences.zone is None


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda p: p.choose_language("fr", META), "language"),
        (lambda p: p.choose_timezone("Mars/Olympus", META), "time zone"),
        (lambda p: p.give_consent("fax", at=AT, source="portal", meta=META), "channel"),
        (lambda p: p.give_consent(EMAIL, at=AT, source="rumour", meta=META), "source"),
        (
            lambda p: p.add_push_subscription(
                endpoint="http://plain.example/", p256dh="k", auth="a", at=AT, meta=META
            ),
            "https",
        ),
    ],
)
def test_bad_values_are_refused(change, words):
    with pytest.raises(InvalidValueError, match=words):
        change(patient())


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("+1 215 555 0111", "+12155550111"),
        ("(215) 555-0111", "+12155550111"),
        ("1-215-555-0111", "+12155550111"),
        ("215.555.0111", "+12155550111"),
        ("0044 20 7946 0958", "+442079460958"),
        ("+44 (0)20", None),
        ("555-0111", None),
        ("+0123456789", None),
        ("+1234567890123456", None),
        ("call me", None),
        ("", None),
    ],
)
def test_phone_numbers_in_e164(typed, expected):
    assert e164(typed) == expected


def state(aggregate: Patient) -> dict:
    return {k: v for k, v in vars(aggregate).items() if k != "_pending_events"}


steps = st.lists(
    st.tuples(
        st.sampled_from(
            ["give", "withdraw", "language", "quiet", "zone", "subscribe", "unsubscribe"]
        ),
        st.sampled_from([EMAIL, SMS, PUSH]),
        st.integers(0, 3),
    ),
    max_size=12,
)


@settings(max_examples=200, deadline=None)
@given(steps=steps)
def test_replay_equals_live_state(steps):
    live = patient()
    for number, (command, channel, pick) in enumerate(steps):
        at = AT + timedelta(minutes=number)
        endpoint = f"{ENDPOINT}/{pick}"
        try:
            if command == "give":
                live.give_consent(channel, at=at, source="portal", meta=META)
            elif command == "withdraw":
                live.withdraw_consent(channel, at=at, source="staff", meta=META)
            elif command == "language":
                live.choose_language(("en", "es")[pick % 2], META)
            elif command == "quiet":
                live.set_quiet_hours(
                    None if pick == 0 else QuietHours(time(20 + pick), time(7)), META
                )
            elif command == "zone":
                live.choose_timezone(None if pick == 0 else "Europe/Madrid", META)
            elif command == "subscribe":
                live.add_push_subscription(
                    endpoint=endpoint, p256dh="k", auth=str(pick), at=at, meta=META
                )
            else:
                live.remove_push_subscription(endpoint, at=at, source="portal", meta=META)
        except InvalidValueError:
            pass
    replayed = None
    for domain_event in live.collect_events():
        replayed = domain_event.mutate(replayed)
    assert replayed is not None
    assert state(replayed) == state(live)
    assert replayed.preferences == live.preferences


def test_a_stored_patient_with_only_older_events_loads_with_the_defaults():
    """A record stored before preferences existed (registration, demographics, an MRN)
    reads back with e-mail consented since registration and everything else off."""
    app = RegistryLog()  # the registry's store and transcodings, in memory
    older = patient()
    older.change_demographics(
        given_name="Pat",
        family_name="Example",
        birth_date=date(1980, 5, 17),
        phone="+1 215 555 0199",
        today=date(2026, 12, 1),
        at=AT,
        meta=META,
    )
    older.identify(authority="RIS", value="MRN-1", meta=META)
    app.save(older)
    loaded = app.repository.get(older.id)
    assert state(loaded) == state(older)
    assert loaded.preferences == ContactPreferences(
        consents=(Consent(EMAIL, True, older.created_on, "registration"),)
    )
    loaded.give_consent(SMS, at=AT, source="portal", meta=META)
    app.save(loaded)
    assert app.repository.get(older.id).preferences.allows(SMS)


@pytest.mark.parametrize(
    ("endpoint", "allowed"),
    [
        ("https://fcm.googleapis.com/fcm/send/abc", True),
        ("http://127.0.0.1:8123/push/abc", True),
        ("http://localhost:9000/push/abc", True),
        ("http://[::1]:9000/push/abc", True),
        ("http://push.example.org/push/abc", False),
        ("http://127.0.0.1.example.org/push", False),
        ("ftp://127.0.0.1/push", False),
        ("https://push.example.org/a b", False),
    ],
)
def test_push_endpoints_are_https_or_a_local_push_service(endpoint, allowed):
    assert push_endpoint_allowed(endpoint) is allowed


@settings(max_examples=300, deadline=None)
@given(
    area=st.integers(200, 999),
    exchange=st.integers(200, 999),
    line=st.integers(0, 9999),
    style=st.sampled_from(
        [
            "+1 {a} {e} {l}",
            "({a}) {e}-{l}",
            "1-{a}-{e}-{l}",
            "{a}.{e}.{l}",
            "001 {a} {e} {l}",
            "{a}{e}{l}",
            "  +1({a}){e} {l} ",
        ]
    ),
)
def test_a_north_american_number_reads_the_same_however_it_is_written(area, exchange, line, style):
    typed = style.format(a=area, e=exchange, l=f"{line:04d}")
    assert e164(typed) == f"+1{area}{exchange}{line:04d}"


# Merges: what the merged-away record said carries over to the survivor ----------------


def merged_into(survivor: Patient, merged: Patient) -> list[type]:
    """Merge ``merged`` into ``survivor`` and hand over its preferences: the survivor's
    new events."""
    survivor.collect_events()
    merged.merge_into(survivor.id, META)
    survivor.take_preferences_of(merged, at=AT + timedelta(days=1), meta=META)
    return [type(e) for e in survivor.collect_events()]


def test_a_survivor_never_asked_takes_the_merged_records_choices():
    survivor = patient(email="", phone="(215) 555-0111")
    merged = patient(phone="+1 215 555 0111")
    merged.give_consent(SMS, at=AT, source="portal", meta=META)
    merged.choose_language("es", META)
    merged.set_quiet_hours(QuietHours(time(21), time(8)), META)
    merged.choose_timezone("America/Chicago", META)
    assert merged_into(survivor, merged) == [
        Patient.ConsentGiven,
        Patient.LanguageChosen,
        Patient.QuietHoursSet,
        Patient.TimezoneChosen,
    ]
    prefs = survivor.preferences
    assert prefs.consent(SMS) == Consent(SMS, True, AT + timedelta(days=1), "merge")
    assert (prefs.language, str(prefs.quiet_hours), prefs.zone) == (
        "es",
        "21:00-08:00",
        "America/Chicago",
    )


def test_sms_consent_for_another_number_is_not_carried_over():
    survivor = patient(phone="+1 267 555 0199")
    merged = patient(phone="+1 215 555 0111")
    merged.give_consent(SMS, at=AT, source="portal", meta=META)
    assert merged_into(survivor, merged) == []
    assert not survivor.preferences.allows(SMS)


def test_a_withdrawal_always_carries_over_and_the_survivors_own_choices_stay():
    survivor = patient(phone="+1 215 555 0111")
    survivor.give_consent(SMS, at=AT, source="portal", meta=META)
    survivor.choose_language("es", META)
    merged = patient(email="other@example.org", phone="+1 215 555 0111")
    merged.withdraw_consent(EMAIL, at=AT, source="portal", meta=META)
    merged.withdraw_consent(SMS, at=AT, source="portal", meta=META)  # never given: no-op
    merged.give_consent(SMS, at=AT, source="portal", meta=META)
    merged.withdraw_consent(SMS, at=AT, source="sms_stop", meta=META)
    merged.choose_language("es", META)
    merged.choose_language("en", META)
    assert merged_into(survivor, merged) == [Patient.ConsentWithdrawn, Patient.ConsentWithdrawn]
    prefs = survivor.preferences
    assert not prefs.allows(EMAIL)
    assert not prefs.allows(SMS)
    assert prefs.consent(SMS).source == "merge"
    assert prefs.language == "es"


def test_a_withdrawal_by_a_change_of_number_is_not_the_persons_and_stays_behind():
    survivor = patient(phone="+1 215 555 0111")
    survivor.give_consent(SMS, at=AT, source="portal", meta=META)
    merged = patient(phone="+1 215 555 0111")
    merged.give_consent(SMS, at=AT, source="portal", meta=META)
    change_phone(merged, "+1 267 555 0199")
    assert merged_into(survivor, merged) == []
    assert survivor.preferences.allows(SMS)


def test_only_a_record_merged_into_this_one_hands_over_preferences():
    with pytest.raises(InvalidValueError, match="merged into this one"):
        patient().take_preferences_of(patient(), at=AT, meta=META)
