"""Twenty patients book free slots of one scanner on one day at the same moment: every
booking succeeds (writers of the busy calendar take turns instead of running out of
tries), and none overlaps another."""

import itertools
import threading
from datetime import datetime, timedelta
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest

from application.errors import ConcurrencyError
from domain.appointment_type import AppointmentType
from domain.context import Actor
from domain.location import Location

pytestmark = pytest.mark.integration

PATIENTS = 20
# Riverside's single CT is open around the clock; its abdomen-pelvis exams take 30 minutes.
FIRST = datetime(2026, 12, 9, 6, 0, tzinfo=ZoneInfo("America/New_York"))


def test_every_booking_of_free_slots_on_one_hot_calendar_succeeds(runtime):
    scheduling = runtime.services.scheduling
    barrier = threading.Barrier(PATIENTS)
    outcomes: list[object] = []

    def book(n: int) -> None:
        patient = uuid4()
        barrier.wait()
        try:
            written = scheduling.book(
                patient_id=patient,
                appointment_type_id=AppointmentType.create_id("ct-abdomen-pelvis"),
                location_id=Location.create_id("riverside"),
                start=FIRST + timedelta(minutes=30 * n),
                actor=Actor(id=str(patient), role="patient", source="test"),
            )
            outcomes.append(written.appointment)
        except ConcurrencyError as refused:
            outcomes.append(refused)

    threads = [threading.Thread(target=book, args=(n,)) for n in range(PATIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    refused = [o for o in outcomes if isinstance(o, ConcurrencyError)]
    assert refused == []
    assert len(outcomes) == PATIENTS
    resources = {o.resource_id for o in outcomes}  # type: ignore[attr-defined]
    assert len(resources) == 1
    starts = sorted(o.start for o in outcomes)  # type: ignore[attr-defined]
    assert all(b - a >= timedelta(minutes=30) for a, b in itertools.pairwise(starts))
