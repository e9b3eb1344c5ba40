from datetime import date, datetime
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, Field

from api.schemas.common import Password, Strict


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


class StaffOut(BaseModel):
    id: str
    email: str
    role: str
    centres: list[str]
    disabled: bool
    two_factor: bool


class BreakGlassRequest(Strict):
    patient_id: UUID
    reason: str = Field(min_length=10, max_length=1000)
    minutes: int = Field(default=60, ge=1, le=240)


class BreakGlassOut(BaseModel):
    id: str
    patient_id: str
    expires_at: datetime


class PatientOut(BaseModel):
    id: str
    given_name: str
    family_name: str
    birth_date: date
    email: str
    phone: str | None


class DayQuery(Strict):
    location_id: UUID
    start: AwareDatetime
    end: AwareDatetime
