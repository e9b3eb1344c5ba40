"""The compliance officer's record of every communication sent to one patient: kind,
template id and version, channel, when it was queued, due and sent, every attempt and
provider receipt, and (``content=1``) the message rendered again from its template
version and stored data. Reading it is recorded in the access log."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query

from api.deps import AuditDep, ServicesDep, requires
from api.schemas.communications import CommunicationOut, CommunicationsOut
from application.errors import NotFoundError
from application.permissions import Permission

router = APIRouter(prefix="/v1/audit", tags=["audit"])


@router.get(
    "/patients/{patient_id}/communications",
    dependencies=[requires(Permission.AUDIT_READ)],
    response_model=CommunicationsOut,
    summary="Every communication sent to a patient, with its history (compliance)",
)
def communications(
    patient_id: UUID,
    services: ServicesDep,
    audit: AuditDep,
    content: Annotated[
        bool, Query(description="1: render each message again from its template version")
    ] = False,
) -> CommunicationsOut:
    if services.registry.patient_by_id(patient_id) is None:
        raise NotFoundError("no such patient")
    found = services.communications.record(patient_id, content=content)
    audit.read("communications", "content" if content else "*", patient_id)
    return CommunicationsOut(
        patient_id=patient_id,
        items=[CommunicationOut.model_validate(c, from_attributes=True) for c in found],
    )
