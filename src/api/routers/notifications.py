"""What the centre sent me, or will send: confirmations, reminders with their due time,
invitations, result notices; how and with what outcome. Read only; in the access log."""

from fastapi import APIRouter

from api.deps import AuditDep, ConsistencyDep, PatientDep, ServicesDep
from api.schemas.communications import NotificationOut, NotificationsOut

router = APIRouter(prefix="/v1/me", tags=["notifications"])


@router.get(
    "/notifications",
    response_model=NotificationsOut,
    summary="My notifications: sent, due, held, withdrawn or undeliverable, newest first",
)
def notifications(
    patient: PatientDep, services: ServicesDep, consistency: ConsistencyDep, audit: AuditDep
) -> NotificationsOut:
    if patient.patient_id is None:  # PatientDep refuses callers without one
        return NotificationsOut(items=[])
    consistency.before_read()
    found = services.communications.mine(patient.patient_id)
    audit.read("notification", "*", patient.patient_id)
    return NotificationsOut(items=[NotificationOut.model_validate(n) for n in found])
