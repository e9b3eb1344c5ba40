"""Given / when / then: a patient's identifiers, demographic changes and merges."""

from datetime import UTC, date, datetime
from uuid import uuid4

import pytest

from domain.errors import InvalidValueError
from domain.identifiers import derived_id
from domain.patient import Patient
from domain.patient_identifier import PatientIdentifier

META = {"actor_id": "system", "role": "system", "request_id": "m1", "source": "test"}
TODAY = date(2026, 11, 30)
AT = datetime(2026, 11, 30, 9, tzinfo=UTC)


def registered() -> Patient:
    """Given a registered patient."""
    return Patient.register(
        id=uuid4(),
        given_name="Jay",
        family_name="Silverheels",
        birth_date=date(1950, 1, 2),
        email="",
        phone=None,
        today=TODAY,
        meta=META,
    )


def pending(aggregate: object) -> list[type]:
    return [type(e) for e in aggregate.collect_events()]  # type: ignore[attr-defined]


def test_a_new_patient_has_no_identifiers_and_is_not_merged():
    patient = registered()
    assert (patient.identifiers, patient.merged_into) == ({}, None)


def test_an_identifier_is_recorded_once_per_authority_and_value():
    patient = registered()
    patient.collect_events()
    patient.identify(authority="ADT1", value="583295", meta=META)
    patient.identify(authority="ADT1", value="583295", meta=META)
    assert patient.identifiers == {"ADT1": "583295"}
    assert pending(patient) == [Patient.Identified]


def test_an_identifier_needs_a_value_and_an_authority():
    with pytest.raises(InvalidValueError):
        registered().identify(authority="", value="583295", meta=META)


def test_demographics_change_only_when_something_differs():
    patient = registered()
    patient.collect_events()
    assert not patient.change_demographics(
        given_name="Jay",
        family_name="Silverheels",
        birth_date=date(1950, 1, 2),
        phone=None,
        today=TODAY,
        at=AT,
        meta=META,
    )
    assert patient.change_demographics(
        given_name="Jay",
        family_name="Moore",
        birth_date=date(1950, 1, 2),
        phone="(314)555-1212",
        today=TODAY,
        at=AT,
        meta=META,
    )
    assert pending(patient) == [Patient.DemographicsChanged]
    assert (patient.family_name, patient.phone) == ("Moore", "(314)555-1212")


def test_demographics_are_validated_like_a_registration():
    with pytest.raises(InvalidValueError):
        registered().change_demographics(
            given_name="",
            family_name="Moore",
            birth_date=date(1950, 1, 2),
            phone=None,
            today=TODAY,
            at=AT,
            meta=META,
        )


def test_a_merged_patient_points_to_the_survivor_once():
    old, survivor = registered(), registered()
    old.collect_events()
    old.merge_into(survivor.id, META)
    old.merge_into(survivor.id, META)
    assert old.merged_into == survivor.id
    assert pending(old) == [Patient.MergedInto]
    with pytest.raises(InvalidValueError):
        old.merge_into(uuid4(), META)
    with pytest.raises(InvalidValueError):
        survivor.merge_into(survivor.id, META)


def test_a_patient_identifier_derives_its_identity_from_authority_and_value():
    patient_id = uuid4()
    index = PatientIdentifier(authority="ADT1", value="583295", patient_id=patient_id, meta=META)
    assert index.id == PatientIdentifier.create_id("ADT1", "583295")
    assert index.id == derived_id("patient-identifier", "ADT1", "583295")
    assert index.patient_id == patient_id
    assert PatientIdentifier.create_id("ADT2", "583295") != index.id
