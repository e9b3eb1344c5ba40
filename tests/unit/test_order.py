"""Given / when / then: imaging orders, result references, the RIS's own bookings and
the appointments they displace; every command is a no-op for a message already applied."""

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from domain.appointment import BOOKED, NEEDS_NEW_TIME, Appointment, InvalidTransitionError
from domain.errors import InvalidValueError
from domain.ris.order import (
    CANCELLED,
    COMPLETED,
    FINAL,
    PRELIMINARY,
    SCHEDULED,
    WAITING,
    ImagingOrder,
    OrderCancelledError,
    OrderNotWaitingError,
    ResultReference,
)
from domain.ris.ris_booking import OCCUPYING, RELEASED, RisBooking
from domain.ris.unmatched_result import UnmatchedResult
from domain.schedule import Interval
from projections.changes import Update, Upsert
from projections.orders_view import ORDERS, RESULTS, UNMATCHED, order_changes

META = {"actor_id": "system", "role": "system", "request_id": "m1", "source": "test"}
OBSERVED = datetime(2026, 11, 30, 9, 15, tzinfo=UTC)


def placed(message_id: str = "m1") -> ImagingOrder:
    """Given an order the RIS placed."""
    return ImagingOrder.place(
        id=uuid4(),
        patient_id=uuid4(),
        placer_number="PLC:A1",
        filler_number="FIL:B1",
        accession_number="ACC1",
        procedure_code="CT-HEAD",
        procedure_text="CT head",
        message_id=message_id,
        meta=META,
    )


def pending(aggregate: object) -> list[type]:
    return [type(e) for e in aggregate.collect_events()]  # type: ignore[attr-defined]


def result(order: ImagingOrder, status: str, message_id: str, link: str = "") -> None:
    reference = ResultReference("", "", "", status, OBSERVED, link)
    order.reference_result(reference, message_id=message_id, meta=META)


def test_a_placed_order_waits_to_be_scheduled():
    order = placed()
    assert order.status == WAITING
    assert (order.placer_number, order.filler_number, order.accession_number) == (
        "PLC:A1",
        "FIL:B1",
        "ACC1",
    )
    assert pending(order) == [ImagingOrder.Placed]


def test_an_order_needs_a_placer_or_a_filler_number():
    with pytest.raises(InvalidValueError):
        ImagingOrder.place(
            id=uuid4(),
            patient_id=uuid4(),
            placer_number=" ",
            filler_number="",
            accession_number="",
            procedure_code="",
            procedure_text="",
            message_id="m1",
            meta=META,
        )


def test_a_change_updates_the_procedure_once_per_message():
    order = placed()
    order.collect_events()
    for _ in range(2):
        order.change(
            accession_number="",
            procedure_code="MR-KNEE",
            procedure_text="MRI knee",
            message_id="m2",
            meta=META,
        )
    assert pending(order) == [ImagingOrder.Changed]
    assert (order.procedure_code, order.accession_number) == ("MR-KNEE", "ACC1")


def test_a_cancelled_order_stays_cancelled_and_cannot_change():
    order = placed()
    order.cancel(reason="CA", message_id="m2", meta=META)
    order.cancel(reason="CA", message_id="m3", meta=META)
    assert order.status == CANCELLED
    assert pending(order) == [ImagingOrder.Placed, ImagingOrder.Cancelled]
    with pytest.raises(OrderCancelledError):
        order.change(
            accession_number="", procedure_code="X", procedure_text="", message_id="m4", meta=META
        )
    with pytest.raises(OrderNotWaitingError):
        order.link_appointment(uuid4(), META)


def test_linking_an_appointment_schedules_the_order():
    order = placed()
    appointment_id = uuid4()
    order.link_appointment(appointment_id, META)
    order.link_appointment(appointment_id, META)
    assert (order.status, order.appointment_id) == (SCHEDULED, appointment_id)
    assert pending(order).count(ImagingOrder.AppointmentLinked) == 1


def test_results_are_references_with_the_latest_status_and_apply_once():
    order = placed()
    order.collect_events()
    result(order, PRELIMINARY, "r1")
    result(order, FINAL, "r2", link="https://pacs.example/viewer?acc=ACC1")
    result(order, FINAL, "r2", link="https://pacs.example/viewer?acc=ACC1")
    # The final result also completes the order (the exam was done).
    assert pending(order) == [
        ImagingOrder.ResultReferenced,
        ImagingOrder.ResultReferenced,
        ImagingOrder.Completed,
    ]
    assert order.result_status == FINAL
    latest = order.results[-1]
    assert latest["accession_number"] == "ACC1"
    assert latest["procedure_code"] == "CT-HEAD"
    assert latest["viewer_link"] == "https://pacs.example/viewer?acc=ACC1"
    assert set(latest) == {
        "accession_number",
        "procedure_code",
        "procedure_text",
        "status",
        "observed_at",
        "viewer_link",
    }


def test_a_result_status_outside_p_f_c_or_a_naive_time_is_refused():
    order = placed()
    with pytest.raises(InvalidValueError):
        result(order, "pending", "r1")
    naive = ResultReference("", "", "", FINAL, datetime(2026, 11, 30, 9, 15), "")
    with pytest.raises(InvalidValueError):
        order.reference_result(naive, message_id="r2", meta=META)


def test_an_order_replays_to_the_same_state():
    order = placed()
    order.change(
        accession_number="ACC2", procedure_code="", procedure_text="", message_id="m2", meta=META
    )
    result(order, FINAL, "r1")
    events = order.collect_events()
    copy = None
    for e in events:
        copy = e.mutate(copy)
    assert copy is not None
    assert copy.__dict__ == order.__dict__


def test_an_unmatched_result_is_kept_under_its_message_and_can_be_resolved():
    kept = UnmatchedResult.keep(
        ResultReference("ACC9", "CHO", "", FINAL, OBSERVED, ""),
        message_id="msg-1/0",
        placer_number="",
        filler_number="F9",
        patient_identifier="TML:7005728",
        meta=META,
    )
    assert kept.id == UnmatchedResult.create_id("msg-1/0")
    kept.resolve("attached by hand", META)
    kept.resolve("again", META)
    assert kept.resolved
    assert kept.note == "attached by hand"


SPAN = Interval(datetime(2026, 12, 1, 15, 0, tzinfo=UTC), datetime(2026, 12, 1, 16, 0, tzinfo=UTC))


def ris_booking() -> RisBooking:
    """Given a booking the RIS made itself."""
    return RisBooking(
        filler_id="2196178",
        resource_id=uuid4(),
        start=SPAN.start,
        end=SPAN.end,
        timezone="America/New_York",
        message_id="s12",
        meta=META,
    )


def test_a_ris_booking_is_identified_by_the_ris_appointment_id():
    booking = ris_booking()
    assert booking.id == RisBooking.create_id("2196178")
    assert (booking.holder, booking.status, booking.span) == ("ris:2196178", OCCUPYING, SPAN)


def test_a_ris_booking_moves_and_releases_once_per_message():
    booking = ris_booking()
    booking.collect_events()
    later = Interval(SPAN.start + timedelta(hours=2), SPAN.end + timedelta(hours=2))
    for _ in range(2):
        booking.move(
            resource_id=booking.resource_id,
            span=later,
            timezone="America/New_York",
            message_id="s13",
            meta=META,
        )
        booking.release(reason="S15", message_id="s15", meta=META)
    assert pending(booking) == [RisBooking.Moved, RisBooking.Released]
    assert (booking.status, booking.span) == (RELEASED, later)


def test_a_displaced_appointment_needs_a_new_time_and_is_no_longer_active():
    appointment = Appointment.book(
        id=uuid4(),
        patient_id=uuid4(),
        appointment_type_id=uuid4(),
        location_id=uuid4(),
        resource_id=uuid4(),
        span=SPAN,
        timezone="America/New_York",
        windows=[Interval(SPAN.start - timedelta(hours=5), SPAN.end + timedelta(hours=5))],
        now=datetime(2026, 11, 30, 12, 0, tzinfo=UTC),
        meta=META,
    )
    assert appointment.status == BOOKED
    appointment.displace(by="ris:2196178", reason="the RIS took it", meta=META)
    appointment.displace(by="ris:2196178", reason="the RIS took it", meta=META)
    assert appointment.status == NEEDS_NEW_TIME
    assert not appointment.is_active
    assert pending(appointment) == [Appointment.Booked, Appointment.Displaced]
    with pytest.raises(InvalidTransitionError):
        appointment.check_in(now=SPAN.start, meta=META)
    later = Interval(SPAN.start + timedelta(hours=2), SPAN.end + timedelta(hours=2))
    appointment.reschedule(
        location_id=appointment.location_id,
        resource_id=appointment.resource_id,
        span=later,
        timezone="America/New_York",
        windows=[Interval(SPAN.start - timedelta(hours=5), SPAN.end + timedelta(hours=5))],
        now=datetime(2026, 11, 30, 12, 0, tzinfo=UTC),
        reason="a new time",
        meta=META,
    )
    assert (appointment.status, appointment.span) == (BOOKED, later)
    appointment.cancel(reason="changed my mind", meta=META)
    assert appointment.status == "cancelled"


def test_the_orders_read_model_folds_an_order_and_its_latest_result():
    order = placed()
    result(order, FINAL, "r1", link="https://pacs.example/v/ACC1")
    order.cancel(reason="CA", message_id="m2", meta=META)
    placed_event, referenced, completed, cancelled = order.collect_events()
    [row] = order_changes(placed_event)
    assert isinstance(row, Upsert)
    assert (row.table, row.key, row.values["status"]) == (ORDERS, {"id": order.id}, WAITING)
    change, result_row = order_changes(referenced)
    assert isinstance(change, Update)
    assert isinstance(result_row, Upsert)
    assert result_row.table == RESULTS
    assert order_changes(completed)[0].values["status"] == COMPLETED
    assert change.values["result_status"] == FINAL
    assert change.values["viewer_link"] == "https://pacs.example/v/ACC1"
    assert order_changes(cancelled)[0].values["status"] == CANCELLED
    kept = UnmatchedResult.keep(
        ResultReference("ACC9", "", "", FINAL, None, ""),
        message_id="m9/0",
        placer_number="",
        filler_number="F9",
        patient_identifier="TML:7005728",
        meta=META,
    )
    [unmatched] = order_changes(kept.collect_events()[0])
    assert unmatched.table == UNMATCHED
    # The MRN stays in the (encrypted) event: the read model keeps no patient identifier.
    assert "7005728" not in repr(unmatched.values)
