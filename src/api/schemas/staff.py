from datetime import datetime
from uuid import UUID

from pydantic import AliasChoices, Field

from api.schemas.common import FromView, Password, Strict
from api.schemas.patients import PatientProfile


class CreateStaff(Strict):
    email: str = Field(max_length=254)
    password: Password
    role: str = Field(pattern=r"^(scheduler|billing|compliance|admin|integration)$")
    centres: list[UUID] = Field(default_factory=list, description="location ids; empty = all")


class ChangeRole(Strict):
    role: str = Field(pattern=r"^(scheduler|billing|compliance|admin|integration)$")
    centres: list[UUID] = Field(default_factory=list)


class Reason(Strict):
    reason: str = Field(min_length=1, max_length=500)


class StaffOut(FromView):
    id: UUID
    email: str
    role: str
    centres: list[UUID]
    disabled: bool
    two_factor: bool = Field(validation_alias=AliasChoices("totp_enabled", "two_factor"))


class BreakGlassRequest(Strict):
    patient_id: UUID
    reason: str = Field(min_length=10, max_length=1000)
    minutes: int = Field(default=60, ge=1, le=240)


class BreakGlassOut(FromView):
    id: UUID
    patient_id: UUID
    expires_at: datetime


class PatientOut(PatientProfile):
    """A patient's details as staff see them."""
