"""ImagingOrder: an exam the RIS ordered for a patient, waiting to be scheduled.

waiting -> (changed) -> scheduled (linked to an appointment) | cancelled
scheduled -> waiting (its appointment was cancelled or missed) | completed
waiting | scheduled -> completed (its appointment was completed, or a final or corrected
result arrived: the exam was done, here or elsewhere)

Results arrive as references only (accession number, procedure, status, observation
time, a viewer link): the report text stays in the radiology system.

Every command names the inbound message that caused it; a message already applied
changes nothing, so handling a message twice is harmless.
"""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import DomainError, InvalidValueError

WAITING = "waiting"
SCHEDULED = "scheduled"
CANCELLED = "cancelled"
COMPLETED = "completed"

PRELIMINARY = "preliminary"
FINAL = "final"
CORRECTED = "corrected"
RESULT_STATUSES = frozenset({PRELIMINARY, FINAL, CORRECTED})
# A result with one of these statuses means the exam was performed.
DONE_STATUSES = frozenset({FINAL, CORRECTED})


@dataclass(frozen=True)
class ResultReference:
    """Where one result lives in the radiology system; never its text."""

    accession_number: str
    procedure_code: str
    procedure_text: str
    result_status: str
    observed_at: datetime | None
    viewer_link: str

    def check(self) -> None:
        if self.result_status not in RESULT_STATUSES:
            raise InvalidValueError(f"unsupported result status {self.result_status!r}")
        if self.observed_at is not None and self.observed_at.utcoffset() is None:
            raise InvalidValueError("the observation time needs a UTC offset")


class OrderIntent(StrEnum):
    """What an order message asks of an order (the HL7 adapter reads it from the RIS's
    order control code)."""

    NEW = "new"
    CHANGE = "change"
    CANCEL = "cancel"


class OrderCancelledError(DomainError):
    code = "order_cancelled"


class UnknownOrderError(DomainError):
    code = "unknown_order"


class OrderNotWaitingError(DomainError):
    """Only an order waiting to be scheduled can be booked."""

    code = "order_not_waiting"


class ImagingOrder(Aggregate):
    """One order (placer and/or filler order number) for one patient."""

    class Placed(Aggregate.Created):
        patient_id: UUID
        placer_number: str
        filler_number: str
        accession_number: str
        procedure_code: str
        procedure_text: str
        message_id: str
        meta: dict[str, str]

    class Changed(Aggregate.Event):
        accession_number: str
        procedure_code: str
        procedure_text: str
        message_id: str
        meta: dict[str, str]

    class Cancelled(Aggregate.Event):
        reason: str
        message_id: str
        meta: dict[str, str]

    class AppointmentLinked(Aggregate.Event):
        appointment_id: UUID
        meta: dict[str, str]

    class AppointmentReleased(Aggregate.Event):
        appointment_id: UUID
        meta: dict[str, str]

    class Completed(Aggregate.Event):
        because: str
        meta: dict[str, str]

    class ResultReferenced(Aggregate.Event):
        accession_number: str
        procedure_code: str
        procedure_text: str
        result_status: str
        observed_at: datetime | None
        viewer_link: str
        message_id: str
        meta: dict[str, str]

    @classmethod
    def place(
        cls,
        *,
        id: UUID,
        patient_id: UUID,
        placer_number: str,
        filler_number: str,
        accession_number: str,
        procedure_code: str,
        procedure_text: str,
        message_id: str,
        meta: dict[str, str],
    ) -> "ImagingOrder":
        """A new order waiting to be scheduled; it needs a placer or filler number."""
        if not placer_number.strip() and not filler_number.strip():
            raise InvalidValueError("an order needs a placer or a filler order number")
        return cls(
            id=id,
            patient_id=patient_id,
            placer_number=placer_number.strip(),
            filler_number=filler_number.strip(),
            accession_number=accession_number.strip(),
            procedure_code=procedure_code.strip(),
            procedure_text=procedure_text.strip(),
            message_id=message_id,
            meta=meta,
        )

    @event(Placed)
    def __init__(
        self,
        id: UUID,
        patient_id: UUID,
        placer_number: str,
        filler_number: str,
        accession_number: str,
        procedure_code: str,
        procedure_text: str,
        message_id: str,
        meta: dict[str, str],
    ) -> None:
        self.patient_id = patient_id
        self.placer_number = placer_number
        self.filler_number = filler_number
        self.accession_number = accession_number
        self.procedure_code = procedure_code
        self.procedure_text = procedure_text
        self.status = WAITING
        self.cancel_reason = ""
        self.appointment_id: UUID | None = None
        self.results: list[dict[str, object]] = []
        self.applied: set[str] = {message_id}

    def has_applied(self, message_id: str) -> bool:
        return message_id in self.applied

    @property
    def result_status(self) -> str | None:
        """The status of the latest result reference, if any."""
        return str(self.results[-1]["status"]) if self.results else None

    def change(
        self,
        *,
        accession_number: str,
        procedure_code: str,
        procedure_text: str,
        message_id: str,
        meta: dict[str, str],
    ) -> None:
        """The RIS changed the order (procedure, accession); a cancelled one stays so."""
        if self.has_applied(message_id):
            return
        if self.status == CANCELLED:
            raise OrderCancelledError("a cancelled order cannot be changed")
        self._changed(
            accession_number=accession_number.strip() or self.accession_number,
            procedure_code=procedure_code.strip() or self.procedure_code,
            procedure_text=procedure_text.strip() or self.procedure_text,
            message_id=message_id,
            meta=meta,
        )

    @event(Changed)
    def _changed(
        self,
        accession_number: str,
        procedure_code: str,
        procedure_text: str,
        message_id: str,
        meta: dict[str, str],
    ) -> None:
        self.accession_number = accession_number
        self.procedure_code = procedure_code
        self.procedure_text = procedure_text
        self.applied.add(message_id)

    def cancel(self, *, reason: str, message_id: str, meta: dict[str, str]) -> None:
        """The RIS cancelled the order; cancelling again changes nothing."""
        if self.has_applied(message_id) or self.status == CANCELLED:
            return
        self._cancelled(reason=reason, message_id=message_id, meta=meta)

    @event(Cancelled)
    def _cancelled(self, reason: str, message_id: str, meta: dict[str, str]) -> None:
        self.status = CANCELLED
        self.cancel_reason = reason
        self.applied.add(message_id)

    def require_waiting(self) -> None:
        """OrderNotWaitingError unless the order waits to be scheduled."""
        if self.status == CANCELLED:
            raise OrderNotWaitingError("this order was cancelled: it cannot be booked")
        if self.status != WAITING:
            raise OrderNotWaitingError(
                f"this order is {self.status}: only an order waiting to be scheduled can be booked"
            )

    def link_appointment(self, appointment_id: UUID, meta: dict[str, str]) -> None:
        """The order was booked as this appointment; only a waiting order can be (linking
        the same appointment again changes nothing)."""
        if self.appointment_id == appointment_id and self.status == SCHEDULED:
            return
        self.require_waiting()
        self._appointment_linked(appointment_id=appointment_id, meta=meta)

    @event(AppointmentLinked)
    def _appointment_linked(self, appointment_id: UUID, meta: dict[str, str]) -> None:
        self.appointment_id = appointment_id
        self.status = SCHEDULED

    def release_appointment(self, appointment_id: UUID, meta: dict[str, str]) -> None:
        """Its appointment was cancelled (or missed): the order waits to be booked again.
        Nothing changes for another appointment or an order no longer scheduled."""
        if self.status != SCHEDULED or self.appointment_id != appointment_id:
            return
        self._appointment_released(appointment_id=appointment_id, meta=meta)

    @event(AppointmentReleased)
    def _appointment_released(self, appointment_id: UUID, meta: dict[str, str]) -> None:
        self.appointment_id = None
        self.status = WAITING

    def complete_exam(self, appointment_id: UUID, meta: dict[str, str]) -> None:
        """Its appointment was completed: the exam was performed."""
        if self.status == SCHEDULED and self.appointment_id == appointment_id:
            self._completed(because="appointment_completed", meta=meta)

    @event(Completed)
    def _completed(self, because: str, meta: dict[str, str]) -> None:
        self.status = COMPLETED

    def reference_result(
        self, result: ResultReference, *, message_id: str, meta: dict[str, str]
    ) -> None:
        """Attach a reference to a result held by the radiology system (never its text);
        what the result leaves blank, the order fills in."""
        if self.has_applied(message_id):
            return
        result.check()
        self._result_referenced(
            accession_number=result.accession_number.strip() or self.accession_number,
            procedure_code=result.procedure_code.strip() or self.procedure_code,
            procedure_text=result.procedure_text.strip() or self.procedure_text,
            result_status=result.result_status,
            observed_at=result.observed_at,
            viewer_link=result.viewer_link.strip(),
            message_id=message_id,
            meta=meta,
        )
        if result.result_status in DONE_STATUSES and self.status in (WAITING, SCHEDULED):
            self._completed(because=f"{result.result_status}_result", meta=meta)

    @event(ResultReferenced)
    def _result_referenced(
        self,
        accession_number: str,
        procedure_code: str,
        procedure_text: str,
        result_status: str,
        observed_at: datetime | None,
        viewer_link: str,
        message_id: str,
        meta: dict[str, str],
    ) -> None:
        if not self.accession_number:
            self.accession_number = accession_number
        self.results.append(
            {
                "accession_number": accession_number,
                "procedure_code": procedure_code,
                "procedure_text": procedure_text,
                "status": result_status,
                "observed_at": observed_at,
                "viewer_link": viewer_link,
            }
        )
        self.applied.add(message_id)

    # Merges of patient records ----------------------------------------------------------

    class PatientMerged(Aggregate.Event):
        """The patient's record was merged into ``patient_id``'s: the order is theirs now."""

        patient_id: UUID
        meta: dict[str, str]

    def move_to_patient(self, patient_id: UUID, meta: dict[str, str]) -> bool:
        """False (and no event) when it is that patient's already."""
        if patient_id == self.patient_id:
            return False
        self._patient_merged(patient_id=patient_id, meta=meta)
        return True

    @event(PatientMerged)
    def _patient_merged(self, patient_id: UUID, meta: dict[str, str]) -> None:
        self.patient_id = patient_id
