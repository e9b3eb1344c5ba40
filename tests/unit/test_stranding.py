"""Given / when / then: an appointment a forced catalog change strands, the stranding that
lists it, and ``Appointment.Displaced`` as stored before it carried its cause and time."""

import json
from datetime import timedelta
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest
from eventsourcing.application import Application

from application.stranded import actor_of, still_holds
from domain.appointment import (
    BOOKED,
    CLOSURE,
    NEEDS_NEW_TIME,
    RIS,
    Appointment,
    InvalidTransitionError,
)
from domain.errors import InvalidValueError
from domain.stranding import Stranding
from tests.unit.test_appointment import META, booked, span

STAFF = {"actor_id": "s1", "role": "scheduler", "request_id": "r9", "source": "api"}


def test_a_closure_displaces_a_booked_appointment_naming_its_cause_and_old_time():
    appointment = booked()
    appointment.collect_events()

    appointment.displace(
        by="scheduler:s1", reason="the centre is closed on 2026-12-01", meta=STAFF, cause=CLOSURE
    )

    (event,) = appointment.collect_events()
    assert isinstance(event, Appointment.Displaced)
    assert (event.cause, event.by, event.meta) == (CLOSURE, "scheduler:s1", STAFF)
    assert (event.start, event.timezone) == (span(14).start, "America/New_York")
    assert event.reason == "the centre is closed on 2026-12-01"
    assert appointment.status == NEEDS_NEW_TIME
    assert appointment.displaced_by == CLOSURE
    assert not appointment.is_active
    assert appointment.start == span(14).start  # the time it had stays on it


def test_displacing_again_records_nothing_and_a_cancelled_one_cannot_be_displaced():
    appointment = booked()
    appointment.displace(by="x", reason="closed", meta=STAFF, cause=CLOSURE)
    appointment.collect_events()
    appointment.displace(by="x", reason="closed", meta=STAFF, cause=CLOSURE)
    assert appointment.collect_events() == []

    cancelled = booked()
    cancelled.cancel(reason="no longer needed", meta=META)
    with pytest.raises(InvalidTransitionError):
        cancelled.displace(by="x", reason="closed", meta=STAFF, cause=CLOSURE)


def test_an_unknown_cause_is_refused():
    with pytest.raises(InvalidValueError):
        booked().displace(by="x", reason="closed", meta=STAFF, cause="weather")


def test_a_displaced_appointment_gets_a_new_time_and_is_booked_again():
    appointment = booked()
    appointment.displace(by="x", reason="closed", meta=STAFF, cause=CLOSURE)
    later = span(15)
    appointment.reschedule(
        location_id=appointment.location_id,
        resource_id=appointment.resource_id,
        span=later,
        timezone="America/New_York",
        windows=[later],
        now=later.start - timedelta(days=1),
        reason="",
        meta=META,
    )
    assert appointment.status == BOOKED
    assert appointment.span == later


def test_a_displacement_stored_before_version_2_still_loads_as_one_by_the_ris():
    app = Application[object]()
    appointment = booked()
    appointment.displace(by="ris:RIS-1", reason="the RIS booked it", meta=META)
    app.save(appointment)
    stored = list(app.recorder.select_events(appointment.id))[-1]
    # As version 1 stored it: no cause, no time, no class version.
    state = json.loads(stored.state)
    for added in ("cause", "start", "timezone", "class_version"):
        state.pop(added, None)
    old = type(stored)(
        originator_id=stored.originator_id,
        originator_version=stored.originator_version,
        topic=stored.topic,
        state=json.dumps(state).encode(),
    )

    event = app.mapper.to_domain_event(old)

    assert isinstance(event, Appointment.Displaced)
    assert (event.cause, event.start, event.timezone) == (RIS, None, "")
    assert (event.by, event.reason) == ("ris:RIS-1", "the RIS booked it")


def test_a_stranding_lists_bookings_of_a_known_kind_of_change():
    booking = Stranding.booking(uuid4(), uuid4(), span(14).start, span(14).end)
    stranding = Stranding.record(
        id=uuid4(), cause=CLOSURE, reason="closed", bookings=[booking], meta=STAFF
    )
    assert stranding.bookings == [booking]
    assert actor_of(stranding.meta).meta() == STAFF
    with pytest.raises(InvalidValueError):
        Stranding.record(id=uuid4(), cause=RIS, reason="x", bookings=[booking], meta=STAFF)
    with pytest.raises(InvalidValueError):
        Stranding.record(id=uuid4(), cause=CLOSURE, reason="x", bookings=[], meta=STAFF)


def test_only_a_booking_still_at_its_stranded_time_is_settled():
    appointment = booked()
    listed = Stranding.booking(
        appointment.id, appointment.resource_id, appointment.start, appointment.end
    )
    assert still_holds(appointment, listed)
    # The same instants written with another offset are the same time.
    local = appointment.start.astimezone(ZoneInfo("America/New_York")).isoformat()
    assert local.endswith("-05:00")
    assert still_holds(appointment, {**listed, "start": local})
    assert not still_holds(appointment, {**listed, "resource_id": str(uuid4())})
    assert not still_holds(appointment, {**listed, "start": span(15).start.isoformat()})
    appointment.displace(by="x", reason="closed", meta=STAFF, cause=CLOSURE)
    assert not still_holds(appointment, listed)
