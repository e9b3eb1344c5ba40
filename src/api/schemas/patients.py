from datetime import date
from uuid import UUID

from pydantic import Field

from api.schemas.common import FromView, Password, Strict


class RegisterPatient(Strict):
    email: str = Field(max_length=254, examples=["pat.example@example.org"])
    password: Password
    given_name: str = Field(min_length=1, max_length=100)
    family_name: str = Field(min_length=1, max_length=100)
    birth_date: date
    phone: str | None = Field(default=None, max_length=32, pattern=r"^\+?[0-9 ()\-]{5,32}$")


class ChangeProfile(Strict):
    """Only the fields sent change; ``phone: null`` removes the phone number."""

    given_name: str | None = Field(default=None, min_length=1, max_length=100)
    family_name: str | None = Field(default=None, min_length=1, max_length=100)
    birth_date: date | None = None
    phone: str | None = Field(default=None, max_length=32, pattern=r"^\+?[0-9 ()\-]{5,32}$")


class PatientProfile(FromView):
    id: UUID
    given_name: str
    family_name: str
    birth_date: date
    email: str
    phone: str | None
