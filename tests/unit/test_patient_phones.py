"""The phone index's pure part: a keyed digest of the number in E.164 per record, never
the number; a record without a readable number has no row."""

import base64
from datetime import UTC, date, datetime
from uuid import uuid4

from application.digests import KeyedDigest
from domain.patient import Patient
from projections.changes import Delete, Upsert
from projections.patient_phones import TABLE, phone_changes

AT = datetime(2026, 12, 1, 9, tzinfo=UTC)
META = {"actor_id": "x", "role": "patient", "request_id": "", "source": "test"}
DIGEST = KeyedDigest.from_cipher_key(base64.b64encode(b"k" * 32).decode(), "patient-phones")


def registered(phone: str | None) -> Patient:
    return Patient.register(
        id=uuid4(),
        given_name="Pat",
        family_name="Example",
        birth_date=date(1980, 1, 1),
        email="pat@example.org",
        phone=phone,
        today=date(2026, 12, 1),
        meta=META,
    )


def test_numbers_in_any_format_give_one_key_and_no_number_is_stored():
    keys = set()
    for typed in ("+1 215 555 0111", "(215) 555-0111", "1-215-555-0111"):
        patient = registered(typed)
        (event,) = patient.collect_events()
        (change,) = phone_changes(event, DIGEST)
        assert change == Upsert(
            TABLE, {"patient_id": patient.id}, {"phone_key": change.values["phone_key"]}
        )
        keys.add(change.values["phone_key"])
        assert "2155550111" not in str(change)
    assert keys == {DIGEST.hex("+12155550111")}


def test_no_phone_or_an_unreadable_one_removes_the_row():
    for phone in (None, "555-0111"):
        patient = registered(phone)
        (event,) = patient.collect_events()
        assert phone_changes(event, DIGEST) == [Delete(TABLE, {"patient_id": patient.id})]


def test_a_change_of_number_moves_the_row_and_other_events_change_nothing():
    patient = registered("+1 215 555 0111")
    patient.collect_events()
    patient.change_demographics(
        given_name="Pat",
        family_name="Example",
        birth_date=date(1980, 1, 1),
        phone="+44 20 7946 0958",
        today=date(2026, 12, 1),
        at=AT,
        meta=META,
    )
    patient.choose_language("es", META)
    changed, language = patient.collect_events()
    assert phone_changes(changed, DIGEST) == [
        Upsert(TABLE, {"patient_id": patient.id}, {"phone_key": DIGEST.hex("+442079460958")})
    ]
    assert phone_changes(language, DIGEST) == []
