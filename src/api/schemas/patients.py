from datetime import date
from typing import Literal
from uuid import UUID

from pydantic import Field

from api.schemas.common import FromView, Password, Strict

AdministrativeSex = Literal["F", "M", "O", "U", "A", "N"]
SEX_HELP = "HL7 table 0001: F female, M male, O other, U unknown, A ambiguous, N not applicable"


class RegisterPatient(Strict):
    email: str = Field(max_length=254, examples=["pat.example@example.org"])
    password: Password
    given_name: str | None = Field(
        default=None, min_length=1, max_length=100, description="required without a code"
    )
    family_name: str | None = Field(
        default=None, min_length=1, max_length=100, description="required without a code"
    )
    birth_date: date
    phone: str | None = Field(default=None, max_length=32, pattern=r"^\+?[0-9 ()\-]{5,32}$")
    administrative_sex: AdministrativeSex | None = None
    activation_code: str | None = Field(
        default=None,
        max_length=32,
        description="from the centre: the account is created on the centre's record of you"
        " (the birth date must be the one the centre has)",
    )


class ChangeProfile(Strict):
    """Only the fields sent change; ``phone: null`` removes the phone number."""

    given_name: str | None = Field(default=None, min_length=1, max_length=100)
    family_name: str | None = Field(default=None, min_length=1, max_length=100)
    birth_date: date | None = None
    phone: str | None = Field(default=None, max_length=32, pattern=r"^\+?[0-9 ()\-]{5,32}$")
    administrative_sex: AdministrativeSex | None = Field(default=None, description=SEX_HELP)


class PatientProfile(FromView):
    id: UUID
    given_name: str
    family_name: str
    birth_date: date
    email: str
    phone: str | None
    administrative_sex: str = Field(description=f"{SEX_HELP}; empty when not known")
