"""Staff and patients: find a patient, see who they are, give them an activation code.

Search is by an exact identifier, or by family name and birth date; never a listing.
Staff limited to centres find the patients they may reach (seen at one of their centres,
booked nowhere yet, or under break-glass); every record returned is access-logged.
"""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request

from api.deps import ActorDep, Audit, AuditDep, ServicesDep, record_access, requires
from api.errors import ApiError
from api.schemas.common import Day, ErrorBody
from api.schemas.staff import ActivationCodeOut, PatientFound, PatientSearchOut, StaffPatientOut
from application.access import Reach
from application.errors import NotFoundError
from application.patient_search import PatientSummary
from application.permissions import Permission
from application.ports import Principal
from application.services import Services

router = APIRouter(prefix="/v1/staff/patients", tags=["staff"])

PatientsReader = Annotated[Principal, requires(Permission.PATIENTS_READ)]
# Giving a patient a code is front-desk work (schedulers), like booking on their behalf.
FrontDesk = Annotated[Principal, requires(Permission.APPOINTMENTS_MANAGE)]

SEARCH_NEEDS = "search by identifier=AUTHORITY|VALUE, or by family_name and birth_date"


def _reach(services: Services, principal: Principal, patient_id: UUID) -> Reach | None:
    try:
        return services.staff_access.reach_patient(principal, patient_id)
    except NotFoundError:
        return None


def reach_or_404(
    services: Services, principal: Principal, patient_id: UUID, audit: Audit, resource: str
) -> Reach:
    """How the staff member reaches the patient; a 404 (and an access-log row saying so)
    for a patient who does not exist or is out of their reach, alike."""
    reach = _reach(services, principal, patient_id)
    if reach is None or services.patient_search.summary(patient_id) is None:
        audit.read(resource, str(patient_id), patient_id, outcome="denied_or_missing")
        raise NotFoundError("no such patient")
    return reach


@router.get(
    "",
    response_model=PatientSearchOut,
    responses={422: {"model": ErrorBody, "description": f"`invalid_query`: {SEARCH_NEEDS}"}},
    summary="Find a patient by identifier, or by name and birth date",
)
def search(
    principal: PatientsReader,
    services: ServicesDep,
    audit: AuditDep,
    identifier: Annotated[
        str | None,
        Query(max_length=200, description="AUTHORITY|VALUE, e.g. CENTRE|MRN12345"),
    ] = None,
    family_name: Annotated[str | None, Query(max_length=100)] = None,
    given_name: Annotated[str | None, Query(max_length=100)] = None,
    birth_date: Annotated[Day | None, Query(description="YYYY-MM-DD")] = None,
) -> PatientSearchOut:
    """Case does not matter in names. Merged-away records answer as their survivor."""
    found: list[PatientSummary]
    if identifier is not None:
        authority, bar, value = identifier.partition("|")
        if not bar or not authority.strip() or not value.strip():
            raise ApiError(422, "invalid_query", "identifier must be AUTHORITY|VALUE")
        found = services.patient_search.by_identifier(authority, value)
    elif family_name and family_name.strip() and birth_date is not None:
        found = services.patient_search.by_name(family_name, birth_date, given_name)
    else:
        raise ApiError(422, "invalid_query", SEARCH_NEEDS)
    items = []
    for patient in found:
        reach = _reach(services, principal, patient.id)
        if reach is None:
            continue
        audit.read("patient_search", str(patient.id), patient.id, reason=reach.reason)
        items.append(PatientFound.model_validate(patient))
    if not items:
        audit.read("patient_search", "", None, outcome="none_found")
    return PatientSearchOut(items=items)


@router.get("/{patient_id}", response_model=StaffPatientOut, summary="A patient's details")
def patient(
    patient_id: UUID, principal: PatientsReader, services: ServicesDep, audit: AuditDep
) -> StaffPatientOut:
    reach = reach_or_404(services, principal, patient_id, audit, "patient")
    found = services.patient_search.summary(patient_id)
    if found is None:
        raise NotFoundError("no such patient")
    audit.read("patient", str(patient_id), found.id, reason=reach.reason)
    return StaffPatientOut.model_validate(found)


@router.post(
    "/{patient_id}/activation-codes",
    status_code=201,
    response_model=ActivationCodeOut,
    summary="A one-time code for the patient to open their portal account with",
)
def issue_activation_code(
    patient_id: UUID,
    principal: FrontDesk,
    actor: ActorDep,
    services: ServicesDep,
    request: Request,
) -> ActivationCodeOut:
    """Valid 14 days, once; a new code makes the patient's earlier ones useless. Shown
    this once: only a keyed digest of it is kept. With the code and their birth date the
    patient registers (``POST /v1/patients/register``) or links the account they have
    (``POST /v1/me/activation``)."""
    reach = _reach(services, principal, patient_id)
    if reach is None or services.patient_search.summary(patient_id) is None:
        raise NotFoundError("no such patient")
    issued = services.activation.issue(patient_id, actor)
    record_access(
        request,
        services,
        actor_id=actor.id,
        role=actor.role,
        patient_id=issued.patient_id,
        resource="activation_code",
        resource_id=str(issued.patient_id),
        action="issue",
        outcome="allowed",
        reason=reach.reason,
    )
    return ActivationCodeOut(code=issued.code, expires_at=issued.expires_at)
