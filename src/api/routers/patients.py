from fastapi import APIRouter

from api.deps import ActorDep, AnonymousActorDep, AuditDep, PatientDep, Public, ServicesDep
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
        409: {"model": ErrorBody, "description": "`email_taken`"},
        429: {"model": ErrorBody, "description": "too many registrations from this address"},
    },
    summary="Create a patient account",
)
def register(request: RegisterPatient, services: ServicesDep, actor: AnonymousActorDep) -> Created:
    """Answers 409 ``email_taken`` when the address already has an account; at most 30
    registrations a minute per client address (then 429 with ``Retry-After``)."""
    registration = services.registry.register_patient(
        email=request.email,
        password=request.password,
        given_name=request.given_name,
        family_name=request.family_name,
        birth_date=request.birth_date,
        phone=request.phone,
        actor=actor,
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
