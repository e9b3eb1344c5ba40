"""What the RIS hears when a forced closure strands bookings, against a real MLLP peer
on loopback: each displaced appointment as SIU^S15 (its old time, SCH-25 Cancelled, the
reason in SCH-6); the new time its patient chooses as SIU^S12 with the same SCH-1; a
cancellation after the displacement as nothing more."""

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

from adapters.clock import SystemClock
from application.catalog_admin import CatalogAdmin, Editor
from application.ris.ris_bookings import RisBookings
from domain.context import Actor
from imaging_bridge.outbound import Outbound
from tests.integration.mllp_peer import Peer, field_of, wait_until
from tests.integration.test_outbound_hl7 import (  # the outbound test helpers
    PATIENT_ACTOR,
    book,
    deliveries,
    new_patient,
    outbound_settings,
)

pytestmark = pytest.mark.integration

DAY = datetime(2026, 12, 2, 14, 0, tzinfo=UTC)  # Riverside CT is open around the clock
SCHEDULER = Actor(id="staff-7", role="scheduler", request_id="r-1", source="api")


@pytest.fixture
def peer() -> Iterator[Peer]:
    with Peer() as p:
        yield p


@pytest.fixture
def outbound_factory(runtime) -> Iterator[Any]:
    started: list[Outbound] = []

    def start(settings) -> Outbound:
        # Retries fall due in real time: the runtime's clock stands still.
        ob = runtime.start_outbound(settings, pump_interval=0.05, clock=SystemClock())
        started.append(ob)
        return ob

    yield start
    for ob in started:
        ob.stop()


def admin(runtime) -> CatalogAdmin:
    services = runtime.services
    return CatalogAdmin(
        services.catalog,
        services.scheduling,
        services.appointments,
        services.catalog_view,
        services.sync,
        services.clock,
    )


def messages_of(peer, patient: UUID) -> list[str]:
    return [m for m in peer.messages() if str(patient) in field_of(m, "PID", 3)]


def triggers(messages: list[str]) -> list[str]:
    return [field_of(m, "MSH", 9).split("^")[1] for m in messages]


def test_a_forced_closure_reaches_the_ris_as_s15_and_the_new_time_as_s12(
    runtime, peer, outbound_factory
):
    ob = outbound_factory(outbound_settings(runtime, peer))
    ann, bob = new_patient(runtime, 41), new_patient(runtime, 42)
    first = book(runtime, ann, DAY)
    second = book(runtime, bob, DAY + timedelta(hours=1))
    scheduling = runtime.services.scheduling
    resource = runtime.services.catalog.resource(scheduling.appointment(first).resource_id)
    assert scheduling.appointment(second).resource_id == resource.id
    wait_until(lambda: len(deliveries(ob)) == 4)  # A04 and S12 for each

    change = admin(runtime).add_closure(
        resource.code, date(2026, 12, 2), "Scanner repair", Editor(SCHEDULER), force=True
    )
    assert {b.id for b in change.displaced} == {first, second}
    scheduling.reschedule(
        first,
        start=DAY + timedelta(days=1),
        location_id=None,
        reason="",
        actor=PATIENT_ACTOR,
        owner=None,
    )
    scheduling.cancel(second, reason="found another centre", actor=PATIENT_ACTOR, owner=None)

    wait_until(
        lambda: len(deliveries(ob)) == 7 and all(d.status == "acknowledged" for d in deliveries(ob))
    )
    ob.wait_caught_up()
    assert len(deliveries(ob)) == 7  # the cancellation after the displacement says nothing

    assert triggers(messages_of(peer, ann)) == ["A04", "S12", "S15", "S12"]
    assert triggers(messages_of(peer, bob)) == ["A04", "S12", "S15"]
    _, booked, cancelled, rebooked = messages_of(peer, ann)
    # The cancellation names the old time, the status and the reason.
    assert field_of(cancelled, "SCH", 25) == "Cancelled"
    assert field_of(cancelled, "SCH", 11) == field_of(booked, "SCH", 11)
    assert field_of(cancelled, "SCH", 11).split("^")[3] == "20261202140000+0000"
    assert "closed on 2026-12-02" in field_of(cancelled, "SCH", 6)
    assert "Scanner repair" in field_of(cancelled, "SCH", 6)
    # The new time: a new booking of the same appointment (SCH-1), added (RGS-2 A).
    assert field_of(rebooked, "SCH", 1) == field_of(booked, "SCH", 1)
    assert field_of(rebooked, "SCH", 1).startswith(str(first))
    assert field_of(rebooked, "SCH", 25) == "Booked"
    assert field_of(rebooked, "RGS", 2) == "A"
    assert field_of(rebooked, "SCH", 11).split("^")[3] == "20261203140000+0000"
    for message in peer.messages():
        parse_message(message, validation_level=VALIDATION_LEVEL.STRICT).validate()


def test_a_reschedule_after_the_ris_took_the_time_is_still_s13(runtime, peer, outbound_factory):
    """Only a displacement the RIS heard as S15 turns the next move into an S12."""
    ob = outbound_factory(outbound_settings(runtime, peer))
    ann = new_patient(runtime, 43)
    first = book(runtime, ann, DAY)
    appointment = runtime.services.scheduling.appointment(first)
    RisBookings(runtime.services.scheduling).occupy(
        filler_id="RIS-77",
        resource_id=appointment.resource_id,
        span=appointment.span,
        timezone=appointment.timezone,
        message_id="MSG-77",
        actor=Actor(id="ris", role="integration", source="hl7-inbound"),
    )
    runtime.services.scheduling.reschedule(
        first,
        start=DAY + timedelta(days=1),
        location_id=None,
        reason="",
        actor=PATIENT_ACTOR,
        owner=None,
    )
    wait_until(
        lambda: len(deliveries(ob)) == 3 and all(d.status == "acknowledged" for d in deliveries(ob))
    )
    ob.wait_caught_up()
    assert triggers(messages_of(peer, ann)) == ["A04", "S12", "S13"]
