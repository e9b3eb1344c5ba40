from fastapi import APIRouter, Request

from api.deps import (
    ActorDep,
    AnonymousActorDep,
    AuditDep,
    PatientDep,
    Public,
    ServicesDep,
    client_address,
)
from api.errors import ApiError
from api.limits import rate_limit
from api.schemas.common import Created, ErrorBody
from api.schemas.patients import ChangeProfile, PatientProfile, RegisterPatient

router = APIRouter(prefix="/v1/patients", tags=["patients"])

# Registration answers 409 for an e-mail address that already has an account, so it is a
# way to ask which addresses do: the same budget per client address as sign-in's keeps
# that slow.
REGISTER_LIMIT = rate_limit("register", limit=30, window_seconds=60)


@router.post(
    "/register",
    dependencies=[Public, REGISTER_LIMIT],
    status_code=201,
    response_model=Created,
    responses={
        400: {"model": ErrorBody, "description": "`activation_failed`"},
        409: {"model": ErrorBody, "description": "`email_taken`"},
        429: {"model": ErrorBody, "description": "too many registrations from this address"},
    },
    summary="Create a patient account",
)
def register(
    request: RegisterPatient, http: Request, services: ServicesDep, actor: AnonymousActorDep
) -> Created:
    """Answers 409 ``email_taken`` when the address already has an account; at most 30
    registrations a minute per client address (then 429 with ``Retry-After``).

    With an ``activation_code`` from the centre, the account is made on the centre's
    record of the patient (names come from there; the birth date must match it). A wrong,
    expired or used code or another birth date answers 400 ``activation_failed`` whatever
    the reason, and counts toward the client address's lockout (then 429)."""
    if request.activation_code:
        registration = services.activation.register(
            code=request.activation_code,
            birth_date=request.birth_date,
            email=request.email,
            password=request.password,
            throttle_key=client_address(http),
            actor=actor,
        )
        return Created(id=str(registration.patient_id))
    if not request.given_name or not request.family_name:
        raise ApiError(422, "invalid_value", "given_name and family_name are required")
    registration = services.registry.register_patient(
        email=request.email,
        password=request.password,
        given_name=request.given_name,
        family_name=request.family_name,
        birth_date=request.birth_date,
        phone=request.phone,
        actor=actor,
        administrative_sex=request.administrative_sex or "",
    )
    return Created(id=str(registration.patient_id))


@router.get("/me", response_model=PatientProfile, summary="The signed-in patient's profile")
def me(patient: PatientDep, services: ServicesDep, audit: AuditDep) -> PatientProfile:
    assert patient.patient_id is not None
    record = services.registry.patient(patient.patient_id)
    audit.read("patient", str(record.id), record.id)
    return PatientProfile.model_validate(record)


@router.patch("/me", response_model=PatientProfile, summary="Change my names, birth date, phone")
def change_me(
    request: ChangeProfile, patient: PatientDep, actor: ActorDep, services: ServicesDep
) -> PatientProfile:
    assert patient.patient_id is not None
    changes = request.model_dump(exclude_unset=True)
    for required in ("given_name", "family_name", "birth_date"):
        if required in changes and changes[required] is None:
            raise ApiError(422, "invalid_value", f"{required} cannot be removed")
    record = services.registry.change_profile(patient.patient_id, changes, actor)
    return PatientProfile.model_validate(record)
