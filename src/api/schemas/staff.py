from datetime import date, datetime
from typing import Literal
from uuid import UUID

from pydantic import AliasChoices, BaseModel, Field

from api.schemas.appointments import AppointmentOut
from api.schemas.common import FromView, Password, Strict
from api.schemas.patients import PatientProfile

AppointmentStatus = Literal[
    "booked", "checked_in", "completed", "cancelled", "no_show", "needs_new_time"
]


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


class StaffAccountItem(FromView):
    """A staff account as the admin list shows it: no password hash, no secret."""

    id: UUID
    email: str
    role: str
    centres: list[UUID]
    disabled: bool
    second_factor_enrolled: bool = Field(
        validation_alias=AliasChoices("totp_enabled", "second_factor_enrolled")
    )


class StaffAccountList(BaseModel):
    items: list[StaffAccountItem]


class IdentifierOut(FromView):
    authority: str
    value: str


class PatientFound(FromView):
    """A patient as the staff search answers: who they are and whether they have an
    account yet (if not, an activation code lets them make one)."""

    id: UUID
    given_name: str
    family_name: str
    birth_date: date
    administrative_sex: str
    identifiers: list[IdentifierOut]
    has_account: bool


class PatientSearchOut(BaseModel):
    items: list[PatientFound]


class StaffPatientOut(PatientOut):
    """A patient's details as staff see them, with the RIS's identifiers."""

    identifiers: list[IdentifierOut]
    has_account: bool


class ActivationCodeOut(BaseModel):
    """Shown once: only a keyed digest of the code is kept."""

    code: str = Field(examples=["7KQM-3XWP-HD9T"])
    expires_at: datetime


class PatientBrief(FromView):
    """Who an appointment is for, on the staff's views."""

    id: UUID
    given_name: str
    family_name: str
    birth_date: date
    mrn: IdentifierOut | None = Field(description="the RIS's identifier, when it has one")


class StaffAppointmentOut(AppointmentOut):
    patient_id: UUID
    patient: PatientBrief | None = Field(
        default=None, description="null when the record cannot be read (e.g. erased)"
    )
