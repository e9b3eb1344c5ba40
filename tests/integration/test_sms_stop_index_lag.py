"""An SMS STOP that arrives while the phone index (a read model of the registry) is still
behind the number's registration still finds the patient: the lookup waits for the index
to catch up with the registry's log first."""

import threading
from datetime import UTC, date, datetime

import pytest

from domain.context import system_actor

pytestmark = pytest.mark.integration

ACTOR = system_actor(source="test")


def test_a_stop_waits_for_the_phone_index_to_know_the_number(runtime):
    preferences = runtime.services.preferences
    # The read models stop: the registration below is in the log, not in the index.
    runtime.projections.stop()
    patient = runtime.services.registry.register_patient(
        email="lag@example.org",
        password="correct horse battery staple",
        given_name="Lia",
        family_name="Lag",
        birth_date=date(1980, 2, 29),
        phone="(555) 555-0199",
        actor=ACTOR,
    ).patient_id
    at = datetime(2026, 11, 30, 12, tzinfo=UTC)
    preferences.update(patient, consents={"sms": True}, actor=ACTOR)
    # They start again a moment after the STOP arrives.
    restart = threading.Timer(0.5, runtime.projections.start)
    restart.start()
    try:
        stopped = preferences.sms_stop("+15555550199", at, ACTOR)
    finally:
        restart.join()

    assert stopped == [patient]
    assert not preferences.preferences(patient).allows("sms")
