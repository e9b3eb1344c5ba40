"""Given / when / then: an order booked as an appointment, released when the appointment
is cancelled, completed by its appointment or a final result; exam types that perform
procedures; bookings and catalog specs stored before these existed still load."""

import json
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from application.base import BaseApplication
from domain.appointment import Appointment
from domain.appointment_type import AppointmentType
from domain.errors import InvalidValueError
from domain.patient import Patient
from domain.ris.order import (
    CANCELLED,
    COMPLETED,
    CORRECTED,
    FINAL,
    PRELIMINARY,
    SCHEDULED,
    WAITING,
    ImagingOrder,
    OrderNotWaitingError,
    ResultReference,
)
from domain.schedule import Interval
from projections.changes import Lookup, Update, Upsert
from projections.orders_view import ORDERS, RESULTS, order_changes, result_id
from projections.patient_merges import MERGES, merge_changes
from tests.unit.test_order import META, OBSERVED, pending, placed

MAPPER = BaseApplication({"PERSISTENCE_MODULE": "eventsourcing.popo"}).mapper
SPAN = Interval(datetime(2026, 12, 1, 15, 0, tzinfo=UTC), datetime(2026, 12, 1, 16, 0, tzinfo=UTC))
EXAM = {
    "code": "mri-brain",
    "name": "MRI brain",
    "modality": "MR",
    "cpt": "70551",
    "duration_minutes": 45,
}


def reported(order: ImagingOrder, status: str, message_id: str) -> None:
    reference = ResultReference("ACC1", "", "", status, OBSERVED, "")
    order.reference_result(reference, message_id=message_id, meta=META)


def test_a_booked_order_is_scheduled_and_a_second_booking_of_it_is_refused():
    order = placed()
    first = uuid4()
    order.link_appointment(first, META)
    order.link_appointment(first, META)  # the same booking again: nothing new
    assert (order.status, order.appointment_id) == (SCHEDULED, first)
    with pytest.raises(OrderNotWaitingError, match="scheduled"):
        order.link_appointment(uuid4(), META)


def test_cancelling_its_appointment_returns_the_order_to_waiting_once():
    order = placed()
    appointment_id = uuid4()
    order.link_appointment(appointment_id, META)
    order.collect_events()
    order.release_appointment(uuid4(), META)  # another appointment: nothing
    order.release_appointment(appointment_id, META)
    order.release_appointment(appointment_id, META)
    assert (order.status, order.appointment_id) == (WAITING, None)
    assert pending(order) == [ImagingOrder.AppointmentReleased]
    order.link_appointment(uuid4(), META)  # it can be booked again
    assert order.status == SCHEDULED


def test_its_appointment_completed_completes_the_order():
    order = placed()
    appointment_id = uuid4()
    order.complete_exam(appointment_id, META)  # not its appointment yet: nothing
    assert order.status == WAITING
    order.link_appointment(appointment_id, META)
    order.complete_exam(appointment_id, META)
    order.complete_exam(appointment_id, META)
    assert order.status == COMPLETED
    assert pending(order).count(ImagingOrder.Completed) == 1
    with pytest.raises(OrderNotWaitingError, match="completed"):
        order.require_waiting()


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([PRELIMINARY], WAITING),
        ([PRELIMINARY, FINAL], COMPLETED),
        ([CORRECTED], COMPLETED),
        ([FINAL, CORRECTED], COMPLETED),
    ],
)
def test_a_final_or_corrected_result_completes_the_order(statuses, expected):
    order = placed()
    for n, status in enumerate(statuses):
        reported(order, status, f"r{n}")
    assert order.status == expected
    assert pending(order).count(ImagingOrder.Completed) == (expected == COMPLETED)


def test_a_cancelled_order_stays_cancelled_when_a_result_or_a_release_arrives():
    order = placed()
    appointment_id = uuid4()
    order.link_appointment(appointment_id, META)
    order.cancel(reason="CA", message_id="c1", meta=META)
    reported(order, FINAL, "r1")
    order.release_appointment(appointment_id, META)
    assert order.status == CANCELLED
    with pytest.raises(OrderNotWaitingError, match="cancelled"):
        order.link_appointment(uuid4(), META)


def book(order_id=None) -> Appointment:
    return Appointment.book(
        id=uuid4(),
        patient_id=uuid4(),
        appointment_type_id=uuid4(),
        location_id=uuid4(),
        resource_id=uuid4(),
        span=SPAN,
        timezone="UTC",
        windows=[Interval(SPAN.start - timedelta(hours=5), SPAN.end + timedelta(hours=5))],
        now=datetime(2026, 11, 30, 12, 0, tzinfo=UTC),
        meta=META,
        order_id=order_id,
    )


def test_an_appointment_keeps_the_order_it_was_booked_for_through_the_store():
    order_id = uuid4()
    [booked] = book(order_id).collect_events()
    copy = MAPPER.to_domain_event(MAPPER.to_stored_event(booked))
    assert copy.mutate(None).order_id == order_id


def test_a_booking_stored_before_orders_could_be_booked_loads_for_no_order():
    # Given a Booked event as stored before it had an order (version 1: no order_id)
    [booked] = book(uuid4()).collect_events()
    stored = MAPPER.to_stored_event(booked)
    state = json.loads(stored.state)
    del state["order_id"]
    del state["class_version"]
    old = type(stored)(
        originator_id=stored.originator_id,
        originator_version=stored.originator_version,
        topic=stored.topic,
        state=json.dumps(state).encode(),
    )
    # When it is read back
    appointment = MAPPER.to_domain_event(old).mutate(None)
    # Then the appointment is for no order
    assert appointment.order_id is None
    assert appointment.span == SPAN


def test_an_exam_type_performs_the_procedure_codes_it_lists():
    exam = AppointmentType.define({**EXAM, "procedure_codes": ["70551", "P1"]}, META)
    assert exam.procedure_codes == ["70551", "P1"]
    assert exam.performs("P1")
    assert not exam.performs("70553")
    assert not exam.performs("")


def test_an_exam_type_defined_before_procedure_codes_performs_none():
    # Given an exam type as stored before specs had procedure codes
    [defined] = AppointmentType.define(dict(EXAM), META).collect_events()
    exam = MAPPER.to_domain_event(MAPPER.to_stored_event(defined)).mutate(None)
    assert "procedure_codes" not in exam.spec
    assert exam.procedure_codes == []
    assert not exam.performs("70551")


@pytest.mark.parametrize(
    "codes",
    ["70551", [""], [" 70551"], ["70551", "70551"], ["x" * 65], [7], [str(n) for n in range(51)]],
)
def test_bad_procedure_codes_are_refused(codes):
    with pytest.raises(InvalidValueError):
        AppointmentType.define({**EXAM, "procedure_codes": codes}, META)


def test_the_orders_read_model_folds_release_completion_and_one_row_per_result():
    order = placed()
    appointment_id = uuid4()
    order.link_appointment(appointment_id, META)
    order.release_appointment(appointment_id, META)
    reported(order, PRELIMINARY, "r1")
    reported(order, FINAL, "r2")
    _, _, released, preliminary, final, completed = order.collect_events()
    [waiting] = order_changes(released)
    assert isinstance(waiting, Update)
    assert (waiting.values["status"], waiting.values["appointment_id"]) == (WAITING, None)
    rows = [order_changes(event)[1] for event in (preliminary, final)]
    # Both reports are one result (same order and accession), the latest status winning.
    assert all(isinstance(row, Upsert) and row.table == RESULTS for row in rows)
    assert {row.key["id"] for row in rows} == {result_id(order.id, "ACC1")}
    assert [row.values["status"] for row in rows] == [PRELIMINARY, FINAL]
    # Its patient is the order's, read from the order's row.
    assert rows[0].values["patient_id"] == Lookup(ORDERS, "patient_id", order.id)
    assert order_changes(completed)[0].values["status"] == COMPLETED


def test_the_patient_merges_read_model_keeps_each_merge():
    survivor = uuid4()
    patient = Patient.register(
        id=uuid4(),
        given_name="Ana",
        family_name="Example",
        birth_date=datetime(1980, 1, 1).date(),
        email="",
        phone=None,
        today=datetime(2026, 11, 30).date(),
        meta=META,
    )
    patient.merge_into(survivor, META)
    registered, merged = patient.collect_events()
    assert merge_changes(registered) == []
    [row] = merge_changes(merged)
    assert (row.table, row.key, row.values["survivor_id"]) == (
        MERGES,
        {"merged_id": patient.id},
        survivor,
    )
