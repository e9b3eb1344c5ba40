"""Property: on the real PostgreSQL event store, however concurrent bookings, cancellations
and reschedules interleave, no two active appointments overlap on one resource, and each
resource's calendars hold exactly the active appointments' times.

Threads call the Scheduling application the runtime wires (encrypted events, real
optimistic concurrency), racing for a few quarter-hours of one local day: two MRIs in
the morning, or the single 24-hour CT around midnight (where one exam holds two days'
calendars). Hypothesis draws what each thread does; the threads race for real.
"""

import threading
import time
from datetime import UTC, date, datetime, timedelta
from itertools import combinations, count
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import pytest
from eventsourcing.utils import get_topic
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.appointment import Appointment
from domain.appointment_type import AppointmentType
from domain.context import Actor
from domain.errors import DomainError
from domain.location import Location
from domain.schedule import local_days

pytestmark = pytest.mark.integration

NEW_YORK = ZoneInfo("America/New_York")
RIVERSIDE = Location.create_id("riverside")
# exam code -> (local start of the contested stretch, quarter-hours it spans)
EXAMS = {
    "mri-brain": ((7, 0), 12),  # MRI 1 opens at 07:00, MRI 2 at 08:00; 45-minute exams
    "ct-abdomen-pelvis": ((23, 0), 8),  # one 24-hour CT; 30-minute exams across midnight
}
CLOSED = {date(2026, 12, 25), date(2027, 1, 1)}
# A fresh weekday for every example, two days or more after the last one, so examples
# never meet on a calendar (the CT's late exams reach into the next day).
DAYS = (
    day
    for n in count(1)
    if (day := date(2026, 12, 1) + timedelta(days=2 * n)).weekday() < 5 and day not in CLOSED
)

operation = st.one_of(
    st.tuples(st.just("book"), st.integers(0, 11)),
    st.tuples(st.just("cancel"), st.integers(0, 3)),
    st.tuples(st.just("reschedule"), st.integers(0, 3), st.integers(0, 11)),
)
threads_plans = st.lists(
    st.lists(st.tuples(operation, st.sampled_from([0, 0, 1, 3])), min_size=1, max_size=4),
    min_size=2,
    max_size=5,
)


def run_thread(scheduling, plan, start_of, exam, barrier, outcome) -> None:
    """Run one thread's operations on its own bookings; note what it saw succeed."""
    patient = uuid4()
    actor = Actor(id=str(patient), role="patient", source="test")
    mine: list[UUID] = []
    barrier.wait()
    for op, pause_ms in plan:
        time.sleep(pause_ms / 1000)  # vary the interleaving a little
        try:
            if op[0] == "book":
                written = scheduling.book(
                    patient_id=patient,
                    appointment_type_id=AppointmentType.create_id(exam),
                    location_id=RIVERSIDE,
                    start=start_of(op[1]),
                    actor=actor,
                )
                mine.append(written.appointment.id)
            elif mine and op[0] == "cancel":
                written = scheduling.cancel(
                    mine[op[1] % len(mine)], reason="changed plans", actor=actor, owner=patient
                )
            elif mine:
                written = scheduling.reschedule(
                    mine[op[1] % len(mine)],
                    start=start_of(op[2]),
                    location_id=None,
                    reason="",
                    actor=actor,
                    owner=patient,
                )
            else:
                continue
            outcome["seen"][written.appointment.id] = (
                written.appointment.status,
                written.appointment.start,
            )
        except DomainError as refused:  # slot taken, busy, or not allowed: a refusal
            outcome["refused"].append(refused.code)


def booked_since(scheduling, position: int) -> list[UUID]:
    """Every appointment booked after ``position`` in the scheduling log."""
    notifications = scheduling.recorder.select_notifications(
        start=position + 1, limit=10_000, topics=[get_topic(Appointment.Booked)]
    )
    return [n.originator_id for n in notifications]


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(exam=st.sampled_from(sorted(EXAMS)), plans=threads_plans)
def test_no_concurrent_schedule_double_books_a_resource_on_postgresql(runtime, exam, plans):
    # Given a fresh local day and the stretch of it the threads contend for
    scheduling = runtime.services.scheduling
    day = next(DAYS)
    (hour, minute), _ = EXAMS[exam]
    first = datetime(day.year, day.month, day.day, hour, minute, tzinfo=NEW_YORK).astimezone(UTC)

    def start_of(quarter: int) -> datetime:
        return first + timedelta(minutes=15 * quarter)

    position = scheduling.recorder.max_notification_id() or 0
    outcome: dict = {"seen": {}, "refused": []}
    barrier = threading.Barrier(len(plans))
    errors: list[BaseException] = []

    def guarded(plan) -> None:
        try:
            run_thread(scheduling, plan, start_of, exam, barrier, outcome)
        except BaseException as error:  # noqa: BLE001 - any other error fails the test below
            errors.append(error)

    # When the threads run their operations at the same time
    workers = [threading.Thread(target=guarded, args=(plan,)) for plan in plans]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert not any(worker.is_alive() for worker in workers)
    assert errors == []

    # Then no two active appointments overlap on one resource
    ids = booked_since(scheduling, position)
    stored = [scheduling.appointment(appointment_id) for appointment_id in ids]
    assert {a.id for a in stored} >= set(outcome["seen"])
    active = [a for a in stored if a.is_active]
    for one, other in combinations(active, 2):
        if one.resource_id == other.resource_id:
            assert not one.span.overlaps(other.span), (one.span, other.span)
    # and every calendar of the exam's scanners on the days involved holds exactly the
    # active appointments' times (a moved or cancelled one is released everywhere)
    modality = scheduling.catalog.appointment_type(AppointmentType.create_id(exam)).modality
    scanners = [
        resource_id
        for resource_id in scheduling.catalog.location(RIVERSIDE).resource_ids
        if scheduling.catalog.resource(resource_id).modality == modality
    ]
    for resource_id in scanners:
        for local_day in (day, day + timedelta(days=1)):
            calendar = scheduling.resource_day(resource_id, local_day)
            assert (dict(calendar.reservations) if calendar else {}) == {
                str(a.id): a.span
                for a in active
                if a.resource_id == resource_id
                and local_day in local_days(a.start, a.end, NEW_YORK)
            }
    # and what each thread was told last about its bookings is what the store holds
    by_id = {a.id: a for a in stored}
    for appointment_id, (status, start) in outcome["seen"].items():
        last = by_id[appointment_id]
        assert (last.status, last.start) == (status, start)
