"""The communication policy on a real PostgreSQL: a booking queues its confirmation and
its reminders due at the right UTC instants; a reschedule withdraws the old reminders and
queues new ones; a cancellation withdraws them; quiet hours hold a reminder until they
end (on the test clock); an order invites, a final result tells "a result is available"
without a clinical word; a patient with no channel gets an undeliverable record."""

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from application.notices.envelope import NoticeEnvelope
from application.notices.renderer import NoticeTemplates
from application.ris.deliveries import Deliveries
from domain.appointment_type import AppointmentType
from domain.context import Actor, system_actor
from domain.location import Location
from domain.ris.message_delivery import MessageDelivery
from imaging_bridge.bootstrap import Runtime
from imaging_bridge.outbound import Outbound
from tests.support import place_order, report_result, ris_patient

pytestmark = pytest.mark.integration

PATIENT = Actor(id="p", role="patient", source="test")
STAFF = Actor(id="s", role="scheduler", source="test")
RIS = system_actor(source="hl7-inbound")
# Riverside (America/New_York) runs CT around the clock. 2026-12-04 09:00 EST.
EXAM = datetime(2026, 12, 4, 14, 0, tzinfo=UTC)
CLINICAL = ("MRI", "brain", "70551", "ACC1", "CT", "Head", "contrast")


@pytest.fixture
def policy(runtime: Runtime) -> Iterator[Outbound]:
    """The policies only: nothing is sent (the channel workers are not started)."""
    outbound = runtime.start_outbound(pump=False, workers=0)
    yield outbound
    outbound.stop()


def new_patient(runtime: Runtime, n: int = 1) -> UUID:
    return runtime.services.registry.register_patient(
        email=f"notice-{n}@example.org",
        password="correct horse battery staple",
        given_name="Jane",
        family_name=f"Doe{n}",
        birth_date=date(1980, 2, 29),
        phone=None,
        actor=system_actor(source="test"),
    ).patient_id


def book(runtime: Runtime, patient: UUID, start: datetime = EXAM, actor: Actor = PATIENT) -> UUID:
    return runtime.services.scheduling.book(
        patient_id=patient,
        appointment_type_id=AppointmentType.create_id("ct-head"),
        location_id=Location.create_id("riverside"),
        start=start,
        actor=actor,
    ).appointment.id


def deliveries(runtime: Runtime) -> Deliveries:
    return runtime.services.deliveries.deliveries


def delivery(runtime: Runtime, cause: str, patient: UUID, channel: str = "email") -> Any:
    found = deliveries(runtime).find(
        MessageDelivery.create_id(cause, str(patient), channel), MessageDelivery
    )
    assert found is not None, f"no {channel} delivery caused by {cause}"
    return found


def absent(runtime: Runtime, cause: str, patient: UUID, channel: str = "email") -> bool:
    delivery_id = MessageDelivery.create_id(cause, str(patient), channel)
    return deliveries(runtime).find(delivery_id, MessageDelivery) is None


def caught_up(policy: Outbound) -> None:
    policy.wait_caught_up(timeout=30)


def envelope(found: Any) -> NoticeEnvelope:
    return NoticeEnvelope.from_payload(found.payload)


def test_a_booking_queues_its_confirmation_now_and_reminders_72h_and_24h_before(
    runtime, policy, clock
):
    patient = new_patient(runtime)
    appointment = book(runtime, patient)
    caught_up(policy)

    confirmation = delivery(runtime, f"{appointment}:1:confirmation", patient)
    assert (confirmation.message_type, confirmation.status) == ("booking_confirmation", "queued")
    assert confirmation.due_at is None
    assert confirmation.recipient == str(patient)
    notice = envelope(confirmation)
    assert notice.patient_id == patient
    assert notice.language == "en"
    assert notice.version == 1
    assert notice.notice.visit.start == EXAM
    assert notice.notice.visit.zone == "America/New_York"
    nearest = delivery(runtime, f"{appointment}:1:reminder:1", patient)
    farthest = delivery(runtime, f"{appointment}:1:reminder:2", patient)
    # 09:00 EST the day before and three days before: 14:00 UTC.
    assert nearest.due_at == datetime(2026, 12, 3, 14, 0, tzinfo=UTC)
    assert farthest.due_at == datetime(2026, 12, 1, 14, 0, tzinfo=UTC)
    assert (nearest.message_type, envelope(nearest).extra["offset"]) == ("reminder", "24h")
    assert envelope(farthest).extra["offset"] == "72h"
    # The e-mail carries the preparation; no third reminder, no SMS (no consent).
    assert envelope(nearest).notice.visit.exam_name
    assert absent(runtime, f"{appointment}:1:reminder:3", patient)
    assert absent(runtime, f"{appointment}:1:confirmation", patient, "sms")


def test_a_reminder_whose_time_has_passed_is_not_created(runtime, policy, clock):
    patient = new_patient(runtime)
    appointment = book(runtime, patient, clock.now() + timedelta(hours=30))
    caught_up(policy)

    assert delivery(runtime, f"{appointment}:1:reminder:1", patient).due_at == (
        clock.now() + timedelta(hours=6)
    )
    assert absent(runtime, f"{appointment}:1:reminder:2", patient)


def test_a_reschedule_withdraws_the_old_reminders_and_queues_new_ones(runtime, policy):
    patient = new_patient(runtime)
    appointment = book(runtime, patient)
    caught_up(policy)
    later = EXAM + timedelta(days=2)

    runtime.services.scheduling.reschedule(
        appointment,
        location_id=Location.create_id("riverside"),
        start=later,
        reason="another day",
        actor=PATIENT,
        owner=None,
    )
    caught_up(policy)

    for number in (1, 2):
        old = delivery(runtime, f"{appointment}:1:reminder:{number}", patient)
        assert (old.status, old.end_reason) == ("withdrawn", "the appointment moved")
    new = delivery(runtime, f"{appointment}:2:reminder:1", patient)
    assert (new.status, new.due_at) == ("queued", later - timedelta(days=1))
    assert delivery(runtime, f"{appointment}:2:reminder:2", patient).due_at == later - timedelta(
        days=3
    )
    # The patient moved it: they get a confirmation of the new time, not "moved".
    assert envelope(delivery(runtime, f"{appointment}:2:confirmation", patient)).notice.visit.start
    assert absent(runtime, f"{appointment}:2:moved", patient)


def test_a_cancellation_by_the_patient_withdraws_the_reminders_and_says_nothing(runtime, policy):
    patient = new_patient(runtime)
    appointment = book(runtime, patient)
    runtime.services.scheduling.cancel(appointment, reason="cannot come", actor=PATIENT, owner=None)
    caught_up(policy)

    for number in (1, 2):
        assert delivery(runtime, f"{appointment}:1:reminder:{number}", patient).status == (
            "withdrawn"
        )
    assert absent(runtime, f"{appointment}:2:booking_cancelled", patient)


def test_a_cancellation_by_the_centre_is_told_at_once_even_in_quiet_hours_when_soon(
    runtime, policy, clock
):
    # 23:00 in New York: quiet hours; the exam is 34 hours away.
    clock.set(datetime(2026, 12, 3, 4, 0, tzinfo=UTC))
    patient = new_patient(runtime)
    appointment = book(runtime, patient)
    runtime.services.scheduling.cancel(appointment, reason="scanner down", actor=STAFF, owner=None)
    caught_up(policy)

    told = delivery(runtime, f"{appointment}:2:booking_cancelled", patient)
    notice = envelope(told)
    assert told.status == "queued"
    assert told.next_attempt_at is None
    assert notice.exempt
    assert notice.notice.outside_quiet_hours
    assert delivery(runtime, f"{appointment}:1:reminder:1", patient).status == "withdrawn"


def test_quiet_hours_hold_a_reminder_until_they_end(runtime, policy, clock):
    """An exam at 06:30 New York time: its 24 h reminder would be at 06:30, inside the
    default quiet hours (21:00-08:00), so it waits until 08:00 (not after the exam:
    a day before); the pump's query sees it due only then."""
    exam = datetime(2026, 12, 4, 11, 30, tzinfo=UTC)  # 06:30 EST
    patient = new_patient(runtime)
    appointment = book(runtime, patient, exam)
    caught_up(policy)

    reminder = delivery(runtime, f"{appointment}:1:reminder:1", patient)
    assert reminder.due_at == exam - timedelta(days=1)  # as planned ...
    held_until = datetime(2026, 12, 3, 13, 0, tzinfo=UTC)  # ... held until 08:00 EST
    assert reminder.next_attempt_at == held_until
    assert envelope(reminder).extra["placement"] == "after_quiet_hours"
    assert not reminder.is_due(held_until - timedelta(minutes=1))
    assert reminder.is_due(held_until)
    reader = policy.reader()
    policy_seen = lambda now: {d.id for d in reader.due(now, channel="email", limit=1000)}  # noqa: E731
    runtime_sync(runtime)
    assert reminder.id not in policy_seen(held_until - timedelta(minutes=1))
    assert reminder.id in policy_seen(held_until)


def runtime_sync(runtime: Runtime) -> None:
    from application.base import Position

    head = deliveries(runtime).recorder.max_notification_id() or 0
    assert runtime.services.sync.wait(Position("deliveries", head), timeout=30)


def test_in_quiet_hours_a_patients_own_booking_is_confirmed_at_once_and_staffs_waits(
    runtime, policy, clock
):
    clock.set(datetime(2026, 11, 30, 3, 0, tzinfo=UTC))  # 22:00 EST
    patient, other = new_patient(runtime), new_patient(runtime, 2)
    own = book(runtime, patient)
    by_staff = book(runtime, other, EXAM + timedelta(hours=1), actor=STAFF)
    caught_up(policy)

    # The answer to what the patient just did goes now (no hold; the worker sends it too).
    confirmation = delivery(runtime, f"{own}:1:confirmation", patient)
    assert confirmation.next_attempt_at is None
    assert envelope(confirmation).exempt
    # A booking someone else made for them waits for the morning.
    told = delivery(runtime, f"{by_staff}:1:confirmation", other)
    assert told.next_attempt_at == datetime(2026, 11, 30, 13, 0, tzinfo=UTC)
    assert not envelope(told).exempt


def test_the_ris_moving_a_booking_tells_the_patient(runtime, policy):
    patient = new_patient(runtime)
    appointment = book(runtime, patient)
    later = EXAM + timedelta(hours=5)
    runtime.services.scheduling.reschedule(
        appointment,
        location_id=Location.create_id("riverside"),
        start=later,
        reason="RIS moved it",
        actor=RIS,
        owner=None,
    )
    caught_up(policy)

    moved = envelope(delivery(runtime, f"{appointment}:2:moved", patient)).notice
    assert (moved.kind, moved.previous_start, moved.visit.start) == ("booking_moved", EXAM, later)


def test_an_order_invites_and_a_final_result_says_only_that_a_result_is_available(runtime, policy):
    patient = new_patient(runtime)
    order = place_order(runtime, patient, 1)
    report_result(runtime, 1, "preliminary")
    report_result(runtime, 1, "final")
    caught_up(policy)

    invitation = delivery(runtime, f"{order}:1:invitation", patient)
    assert invitation.message_type == "order_invitation"
    assert envelope(invitation).notice.order_id == str(order)
    # 06:00 in Chicago, where most of the centre's locations are: quiet hours, so the
    # invitation waits until 08:00 there.
    assert invitation.next_attempt_at == datetime(2026, 11, 30, 14, 0, tzinfo=UTC)
    results = [
        d
        for d in (
            deliveries(runtime).find(
                MessageDelivery.create_id(f"{order}:{v}:result", str(patient), "email"),
                MessageDelivery,
            )
            for v in range(2, 8)
        )
        if d is not None
    ]
    assert len(results) == 1  # the final one; the preliminary said nothing
    [result] = results
    assert result.message_type == "result_available"
    rendered = NoticeTemplates().render(
        envelope(result).notice, "email", "en", base_url="https://p.example", centre_name="C"
    )
    for word in CLINICAL:
        assert word not in result.payload["data"]
        assert word not in rendered.text
        assert word not in rendered.subject


def test_a_patient_with_no_channel_is_recorded_undeliverable(runtime, policy):
    patient = UUID(ris_patient(runtime))  # the RIS's patient: no e-mail, no consent
    order = place_order(runtime, patient, 1)
    caught_up(policy)

    invitation = delivery(runtime, f"{order}:1:invitation", patient)
    assert invitation.status == "undeliverable"
    assert invitation.end_reason == "the patient consented to no channel"
    assert envelope(invitation).notice.needs_account


def test_a_booking_and_its_cancellation_processed_in_one_batch_leave_nothing_pending(runtime):
    """The policy starts after both happened: it processes them in one write, and the
    cancellation withdraws the reminders the booking queued in that same write."""
    patient = new_patient(runtime)
    appointment = book(runtime, patient)
    runtime.services.scheduling.cancel(appointment, reason="cannot come", actor=PATIENT, owner=None)
    policy = runtime.start_outbound(pump=False, workers=0)
    try:
        caught_up(policy)
    finally:
        policy.stop()

    for number in (1, 2):
        reminder = delivery(runtime, f"{appointment}:1:reminder:{number}", patient)
        assert reminder.status == "withdrawn"
        assert reminder.end_reason == "the appointment was cancelled"


def test_an_appointment_the_ris_displaced_asks_for_a_new_time_and_withdraws_reminders(
    runtime, policy, clock
):
    patient = new_patient(runtime)
    appointment_id = book(runtime, patient)
    caught_up(policy)
    clock.set(datetime(2026, 12, 3, 4, 0, tzinfo=UTC))  # 23:00 in New York, the exam in 34 h
    appointment = runtime.services.scheduling.appointment(appointment_id)
    appointment.displace(by="RIS:F9", reason="the RIS took the time", meta=RIS.meta())
    runtime.services.scheduling.save(appointment)
    caught_up(policy)

    asked = delivery(runtime, f"{appointment_id}:2:needs_new_time", patient)
    notice = envelope(asked)
    assert asked.status == "queued"
    assert asked.next_attempt_at is None  # soon: at once, quiet hours or not ...
    assert notice.exempt
    assert notice.notice.outside_quiet_hours  # ... and it says so
    for number in (1, 2):
        reminder = delivery(runtime, f"{appointment_id}:1:reminder:{number}", patient)
        assert reminder.status == "withdrawn"
