"""The RIS orders that appointments are booked for, as the scheduling commands see them:
the order a booking names (checked: the patient's, waiting, performed by the exam), and
the order an appointment's cancellation, no-show or completion moves along. Each is saved
by the scheduling command in the same atomic write as the appointment."""

from collections.abc import Callable
from uuid import UUID

from application.base import BaseApplication
from application.errors import ExamNotForOrderError, NotFoundError
from domain.appointment import Appointment
from domain.appointment_type import AppointmentType
from domain.context import Actor
from domain.ris.order import ImagingOrder


class BookedOrders:
    """Orders in the scheduling event store, beside the appointments booked for them."""

    def __init__(
        self, store: BaseApplication, survivor: Callable[[UUID], UUID] | None = None
    ) -> None:
        """``survivor`` names the record a patient's record was merged into (ADT^A40), so
        that a patient may book the orders the RIS placed under a record merged into
        theirs; without it, records are taken as never merged."""
        self._store = store
        self._survivor = survivor or (lambda patient_id: patient_id)

    def to_book(self, order_id: UUID, patient_id: UUID, exam: AppointmentType) -> ImagingOrder:
        """The patient's order to book as ``exam``: NotFoundError for an unknown order or
        another patient's; OrderNotWaitingError unless it waits to be scheduled;
        ExamNotForOrderError when the exam does not perform its procedure."""
        order = self._store.find(order_id, ImagingOrder)
        if order is None or self._survivor(order.patient_id) != self._survivor(patient_id):
            raise NotFoundError("no such order")
        order.require_waiting()
        if not exam.performs(order.procedure_code):
            raise ExamNotForOrderError(
                f"{exam.spec.get('name', 'this exam')} does not perform the ordered procedure"
                f" {order.procedure_code!r}; pick one of the order's appointment_type_ids"
            )
        return order

    def released(self, appointment: Appointment, actor: Actor) -> list[ImagingOrder]:
        """The appointment's order, back to waiting (one the RIS cancelled, or linked to
        another appointment since, stays as it is): to save with the appointment."""
        order = self._of(appointment)
        if order is None:
            return []
        order.release_appointment(appointment.id, actor.meta())
        return [order]

    def completed(self, appointment: Appointment, actor: Actor) -> list[ImagingOrder]:
        """The appointment's order, completed with it: to save with the appointment."""
        order = self._of(appointment)
        if order is None:
            return []
        order.complete_exam(appointment.id, actor.meta())
        return [order]

    def _of(self, appointment: Appointment) -> ImagingOrder | None:
        if appointment.order_id is None:
            return None
        return self._store.find(appointment.order_id, ImagingOrder)
