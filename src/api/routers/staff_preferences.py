"""Staff record how a patient wants to hear from the centre when the patient tells the
front desk ("stop texting me", "e-mail me in Spanish"): the consent is the patient's,
its source is ``staff`` and the change names who made it. Only patients the staff member
may reach; every read and change is in the access log."""

from uuid import UUID

from fastapi import APIRouter

from api.deps import ActorDep, AuditDep, ServicesDep
from api.routers.preferences import RESOURCE, document
from api.routers.staff_patients import FrontDesk, PatientsReader, reach_or_404
from api.schemas.common import ErrorBody
from api.schemas.preferences import PreferencesOut, StaffPreferencesIn
from domain.contact_preferences import CHANNELS

router = APIRouter(prefix="/v1/staff/patients", tags=["staff"])
PATH = "/{patient_id}/notification-preferences"


@router.get(
    PATH,
    response_model=PreferencesOut,
    responses={404: {"model": ErrorBody, "description": "no such patient within reach"}},
    summary="How a patient hears from the centre (as GET /v1/me/notification-preferences)",
)
def read_preferences(
    patient_id: UUID, principal: PatientsReader, services: ServicesDep, audit: AuditDep
) -> PreferencesOut:
    reach = reach_or_404(services, principal, patient_id, audit, RESOURCE)
    record = services.registry.surviving_patient(patient_id)
    audit.read(RESOURCE, str(record.id), record.id, reason=reach.reason)
    return document(record)


@router.patch(
    PATH,
    response_model=PreferencesOut,
    responses={
        404: {"model": ErrorBody, "description": "no such patient within reach"},
        422: {"model": ErrorBody, "description": "`invalid_value`: nothing changed"},
    },
    summary="Record what the patient asked for: consent per channel, language",
    description='Only what is sent changes (`{"channels": {"sms": false}}` stops text'
    " messages and keeps the rest). The consent's source is `staff`. 422 `invalid_value`"
    " (nothing changes) for SMS without a mobile number on the record, push (a patient turns"
    " it on in their own browser) or e-mail without an address.",
)
def change_preferences(
    patient_id: UUID,
    body: StaffPreferencesIn,
    principal: FrontDesk,
    actor: ActorDep,
    services: ServicesDep,
    audit: AuditDep,
) -> PreferencesOut:
    reach = reach_or_404(services, principal, patient_id, audit, RESOURCE)
    record = services.registry.surviving_patient(patient_id)
    consents = {c: v for c in CHANNELS if (v := getattr(body.channels, c)) is not None}
    services.preferences.update(
        record.id, consents=consents, language=body.language, actor=actor, source="staff"
    )
    audit.read(RESOURCE, str(record.id), record.id, action="update", reason=reach.reason)
    return document(services.registry.surviving_patient(record.id))
