"""A signed-in patient links their account to the centre's record of them, with the
activation code staff gave them and their birth date."""

from datetime import date
from uuid import UUID

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.deps import ActorDep, ConsistencyDep, PatientDep, ServicesDep
from api.schemas.auth import TokenResponse
from api.schemas.common import ErrorBody, Strict

router = APIRouter(prefix="/v1/me", tags=["patients"])


class ActivateRequest(Strict):
    code: str = Field(min_length=1, max_length=32, examples=["7KQM-3XWP-HD9T"])
    birth_date: date


class Activated(BaseModel):
    """The record the account signs in as from now on, and the tokens of the session
    that replaces this one (every session of the account ended: their tokens named the
    record that was merged away)."""

    patient_id: UUID
    tokens: TokenResponse


@router.post(
    "/activation",
    response_model=Activated,
    responses={
        400: {
            "model": ErrorBody,
            "description": "`activation_failed`: the code or the birth date is not valid"
            " (the same answer whatever the reason)",
        },
        429: {"model": ErrorBody, "description": "`too_many_attempts`"},
    },
    summary="Link my account to the centre's record of me",
)
def activate(
    request: ActivateRequest,
    patient: PatientDep,
    actor: ActorDep,
    services: ServicesDep,
    consistency: ConsistencyDep,
) -> Activated:
    """My record merges into the centre's (as an ADT^A40 merge would): my appointments
    and orders and the centre's are all mine afterwards. A wrong, expired or used code or
    another birth date counts toward the lockout, as a wrong password does."""
    linked = services.activation.link(
        account_id=patient.account_id, code=request.code, birth_date=request.birth_date, actor=actor
    )
    consistency.wrote(linked.position)
    tokens = services.auth.renew_sessions(patient, "linked to the centre's record")
    return Activated(patient_id=linked.patient_id, tokens=TokenResponse.model_validate(tokens))
