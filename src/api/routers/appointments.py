from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Header

from api.deps import ActorDep, AuditDep, ConsistencyDep, PatientDep, ServicesDep
from api.limits import patient_rate_limit
from api.schemas.appointments import (
    AppointmentOut,
    BookAppointment,
    CancelAppointment,
    ChangeAppointment,
    RescheduleAppointment,
)
from application.errors import NotFoundError

router = APIRouter(prefix="/v1/appointments", tags=["appointments"])

# Each patient's booking requests per hour (BOOKING_REQUESTS_PER_HOUR), from any address.
BOOKING_BUDGET = patient_rate_limit(
    "booking",
    lambda services: services.scheduling.limits.requests_per_hour,
    window_seconds=3600,
    what="booking requests",
)


@router.post(
    "",
    status_code=201,
    response_model=AppointmentOut,
    summary="Book a slot",
    dependencies=[BOOKING_BUDGET],
)
def book(
    request: BookAppointment,
    patient: PatientDep,
    actor: ActorDep,
    services: ServicesDep,
    consistency: ConsistencyDep,
    idempotency_key: Annotated[str | None, Header(max_length=128)] = None,
) -> AppointmentOut:
    assert patient.patient_id is not None
    # The booking caps count the patient's appointments in the read model: let it hold
    # their own earlier bookings and cancellations first.
    if services.scheduling.limits.caps_bookings:
        consistency.before_read()
    written = services.scheduling.book(
        patient_id=patient.patient_id,
        appointment_type_id=request.appointment_type_id,
        location_id=request.location_id,
        start=request.start,
        actor=actor,
        idempotency_key=idempotency_key,
        order_id=request.order_id,
    )
    consistency.wrote(written.position)
    return AppointmentOut.model_validate(services.appointment_details.one(written.appointment))


@router.get("", response_model=list[AppointmentOut], summary="My appointments, soonest first")
def history(
    patient: PatientDep, services: ServicesDep, consistency: ConsistencyDep, audit: AuditDep
) -> list[AppointmentOut]:
    assert patient.patient_id is not None
    consistency.before_read()
    found = services.appointments.for_patient(patient.patient_id)
    audit.read("appointment", "*", patient.patient_id)
    return [AppointmentOut.model_validate(d) for d in services.appointment_details.all(found)]


@router.get("/{appointment_id}", response_model=AppointmentOut, summary="One of my appointments")
def one(
    appointment_id: UUID,
    patient: PatientDep,
    services: ServicesDep,
    consistency: ConsistencyDep,
    audit: AuditDep,
) -> AppointmentOut:
    consistency.before_read()
    view = services.appointments.get(appointment_id)
    if view is None or view.patient_id != patient.patient_id:
        owner = view.patient_id if view else None
        audit.read("appointment", str(appointment_id), owner, outcome="denied_or_missing")
        raise NotFoundError("no such appointment")
    audit.read("appointment", str(appointment_id), view.patient_id)
    return AppointmentOut.model_validate(services.appointment_details.one(view))


@router.post(
    "/{appointment_id}/reschedule",
    response_model=AppointmentOut,
    summary="Move it",
    dependencies=[BOOKING_BUDGET],
)
def reschedule(
    appointment_id: UUID,
    request: RescheduleAppointment,
    patient: PatientDep,
    actor: ActorDep,
    services: ServicesDep,
    consistency: ConsistencyDep,
) -> AppointmentOut:
    written = services.scheduling.reschedule(
        appointment_id,
        start=request.start,
        location_id=request.location_id,
        reason=request.reason,
        actor=actor,
        owner=patient.patient_id,
    )
    consistency.wrote(written.position)
    return AppointmentOut.model_validate(services.appointment_details.one(written.appointment))


@router.patch("/{appointment_id}", response_model=AppointmentOut, summary="Change its notes")
def change(
    appointment_id: UUID,
    request: ChangeAppointment,
    patient: PatientDep,
    actor: ActorDep,
    services: ServicesDep,
    consistency: ConsistencyDep,
) -> AppointmentOut:
    written = services.scheduling.modify(
        appointment_id, notes=request.notes, actor=actor, owner=patient.patient_id
    )
    consistency.wrote(written.position)
    return AppointmentOut.model_validate(services.appointment_details.one(written.appointment))


@router.post("/{appointment_id}/cancel", response_model=AppointmentOut, summary="Cancel it")
def cancel(
    appointment_id: UUID,
    request: CancelAppointment,
    patient: PatientDep,
    actor: ActorDep,
    services: ServicesDep,
    consistency: ConsistencyDep,
) -> AppointmentOut:
    written = services.scheduling.cancel(
        appointment_id, reason=request.reason, actor=actor, owner=patient.patient_id
    )
    consistency.wrote(written.position)
    return AppointmentOut.model_validate(services.appointment_details.one(written.appointment))
