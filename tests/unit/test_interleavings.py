"""Property: however bookings, cancellations and reschedules on one resource interleave
(each decided on what it read, then saved later), no two active appointments overlap.

Runs the real Scheduling application on in-memory persistence: each command is
planned (read + decide) at one step of the schedule and saved at a later step, so
commands decide on stale state exactly as concurrent requests do.
"""

from datetime import UTC, datetime, timedelta
from itertools import combinations
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError
from hypothesis import given, settings
from hypothesis import strategies as st

from application.catalog import Catalog
from application.catalog_file import parse_catalog
from application.scheduling import Plan, Scheduling
from domain.appointment import Appointment
from domain.appointment_type import AppointmentType
from domain.context import Actor, system_actor
from domain.errors import DomainError
from domain.location import Location
from domain.resource import Resource
from tests.support import SettableClock

POPO = {"PERSISTENCE_MODULE": "eventsourcing.popo"}
DAY = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)  # 09:00 in New York
ACTOR = Actor(id="p", role="patient")
CATALOG = {
    "locations": [
        {
            "code": "one",
            "name": "One",
            "timezone": "America/New_York",
            "address": {"line1": "1 Test St", "city": "Testville"},
        }
    ],
    "resources": [
        {
            "code": "scanner",
            "name": "Scanner",
            "modality": "CT",
            "location": "one",
            "hours": {"tue": ["08:00-18:00"]},
        },
    ],
    "appointment_types": [
        {"code": "ct", "name": "CT", "modality": "CT", "cpt": "70450", "duration_minutes": 30}
    ],
}

operation = st.one_of(
    st.tuples(st.just("book"), st.integers(0, 8)),
    st.tuples(st.just("cancel"), st.integers(0, 11)),
    st.tuples(st.just("reschedule"), st.integers(0, 11), st.integers(0, 8)),
)


@st.composite
def schedules(draw):
    ops = draw(st.lists(operation, min_size=2, max_size=12))
    # Each op is planned once and saved once, the save at some later step.
    steps: list[tuple[str, int]] = []
    pending = list(range(len(ops)))
    planned: list[int] = []
    while pending or planned:
        choices = [("plan", i) for i in pending[:1]] + [("save", i) for i in planned]
        step = draw(st.sampled_from(choices))
        steps.append(step)
        if step[0] == "plan":
            pending.remove(step[1])
            planned.append(step[1])
        else:
            planned.remove(step[1])
    return ops, steps


@settings(max_examples=250, deadline=None)
@given(schedules())
def test_no_interleaving_double_books_a_resource(case):
    ops, steps = case
    clock = SettableClock(datetime(2026, 11, 30, 12, 0, tzinfo=UTC))
    catalog = Catalog(POPO)
    catalog.apply(parse_catalog(CATALOG), system_actor())
    scheduling = Scheduling(POPO, catalog=catalog, clock=clock)
    type_id = AppointmentType.create_id("ct")
    location_id = Location.create_id("one")
    booked_ids: list[UUID] = []  # appointment ids in the order their book ops were planned
    plans: dict[int, Plan | None] = {}
    books: dict[int, UUID] = {}  # op index -> the appointment its booking creates
    saved_books: set[UUID] = set()

    def plan(index: int, op: tuple[Any, ...]) -> Plan:
        start = lambda k: DAY + timedelta(minutes=15 * k)  # noqa: E731
        if op[0] == "book":
            appointment_id = uuid4()
            booked_ids.append(appointment_id)
            books[index] = appointment_id
            return scheduling.plan_book(
                appointment_id=appointment_id,
                patient_id=uuid4(),
                appointment_type_id=type_id,
                location_id=location_id,
                start=start(op[1]),
                actor=ACTOR,
            )
        target = booked_ids[op[1] % len(booked_ids)] if booked_ids else uuid4()
        if op[0] == "cancel":
            return scheduling.plan_cancel(target, reason="r", actor=ACTOR, owner=None)
        return scheduling.plan_reschedule(
            target, start=start(op[2]), location_id=None, reason="", actor=ACTOR, owner=None
        )

    for kind, index in steps:
        if kind == "plan":
            try:
                plans[index] = plan(index, ops[index])
            except DomainError:
                plans[index] = None
        elif (planned := plans.get(index)) is not None:
            try:
                scheduling.save(*planned.aggregates)
            except IntegrityError:
                continue  # decided on stale state: the event store refused it, as it must
            if index in books:
                saved_books.add(books[index])

    # Every booking that was saved loads; one that was not saved does not exist.
    stored = [scheduling.repository.get(a) for a in booked_ids if a in saved_books]
    for appointment_id in set(booked_ids) - saved_books:
        with pytest.raises(AggregateNotFoundError):
            scheduling.repository.get(appointment_id)
    assert all(isinstance(a, Appointment) for a in stored)
    active = [a for a in stored if a.is_active]
    for first, second in combinations(active, 2):
        assert not first.span.overlaps(second.span), (first.span, second.span)

    # The calendar holds exactly the active appointments' times.
    resource_id = Resource.create_id("scanner")
    calendar = scheduling.resource_day(resource_id, DAY.astimezone(UTC).date())
    held = dict(calendar.reservations) if calendar else {}
    assert held == {str(a.id): a.span for a in active}
