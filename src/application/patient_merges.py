"""When one patient record is merged into another (ADT^A40 from the RIS, or a portal
account linked to the RIS's record), the merged record's appointments and orders move
to the survivor, so the person sees all of them and nothing is lost."""

from uuid import UUID

from application.base import Position
from application.ports import PatientRecords, ReadModelSync
from application.scheduling import SchedulingLog, retry_writes
from domain.appointment import Appointment
from domain.context import Actor
from domain.ris.order import ImagingOrder


class PatientMerges:
    def __init__(
        self, scheduling: SchedulingLog, records: PatientRecords, sync: ReadModelSync | None
    ) -> None:
        self._scheduling = scheduling
        self._records = records
        self._sync = sync

    def move(self, merged_id: UUID, survivor_id: UUID, actor: Actor) -> Position | None:
        """Give ``survivor_id`` every appointment and order of ``merged_id``; moving them
        again changes nothing. The read models are let catch up with the scheduling log
        first, so that a record written just before is not missed."""
        if self._sync is not None:
            head = self._scheduling.recorder.max_notification_id()
            if head:
                self._sync.wait(Position(self._scheduling.name, head))

        def attempt() -> Position | None:
            moved: list[Appointment | ImagingOrder] = []
            for appointment_id in self._records.appointment_ids(merged_id):
                appointment = self._scheduling.find(appointment_id, Appointment)
                if appointment is not None and appointment.move_to_patient(
                    survivor_id, actor.meta()
                ):
                    moved.append(appointment)
            for order_id in self._records.order_ids(merged_id):
                order = self._scheduling.find(order_id, ImagingOrder)
                if order is not None and order.move_to_patient(survivor_id, actor.meta()):
                    moved.append(order)
            if not moved:
                return None
            return self._scheduling.position_of(self._scheduling.save(*moved))

        return retry_writes(attempt)
