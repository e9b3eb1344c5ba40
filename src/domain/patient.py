"""Patient: demographics and contact details of a person who books exams."""

from datetime import date
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import InvalidValueError


def check_demographics(given_name: str, family_name: str, birth_date: date, today: date) -> None:
    if not given_name.strip() or not family_name.strip():
        raise InvalidValueError("given and family names are required")
    if len(given_name) > 100 or len(family_name) > 100:
        raise InvalidValueError("names are limited to 100 characters")
    if not date(1900, 1, 1) <= birth_date <= today:
        raise InvalidValueError("birth date must be between 1900-01-01 and today")


class Patient(Aggregate):
    """A person known to the centre (identifiers, consent and insurance come later)."""

    class Registered(Aggregate.Created):
        given_name: str
        family_name: str
        birth_date: date
        email: str
        phone: str | None
        meta: dict[str, str]

    @classmethod
    def register(
        cls,
        *,
        id: UUID,
        given_name: str,
        family_name: str,
        birth_date: date,
        email: str,
        phone: str | None,
        today: date,
        meta: dict[str, str],
    ) -> "Patient":
        check_demographics(given_name, family_name, birth_date, today)
        return cls(
            id=id,
            given_name=given_name.strip(),
            family_name=family_name.strip(),
            birth_date=birth_date,
            email=email,
            phone=phone,
            meta=meta,
        )

    @event(Registered)
    def __init__(
        self,
        id: UUID,
        given_name: str,
        family_name: str,
        birth_date: date,
        email: str,
        phone: str | None,
        meta: dict[str, str],
    ) -> None:
        self.given_name = given_name
        self.family_name = family_name
        self.birth_date = birth_date
        self.email = email
        self.phone = phone
