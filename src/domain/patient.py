"""Patient: demographics and contact details of a person who books exams."""

from datetime import date
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import InvalidValueError

# HL7 table 0001: female, male, other, unknown, ambiguous, not applicable.
ADMINISTRATIVE_SEXES = ("F", "M", "O", "U", "A", "N")


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
        self.identifiers: dict[str, str] = {}
        self.merged_into: UUID | None = None
        # Kept by events added later; records older than them start from these.
        self.administrative_sex = ""
        self.account_id: UUID | None = None
        self.activation_code_id: UUID | None = None

    @property
    def has_account(self) -> bool:
        """Someone signs in as this patient: they registered here (their record carries
        the account's e-mail address) or an account was linked to it."""
        return bool(self.email) or self.account_id is not None

    # Identifiers, demographics from the RIS, merges -----------------------------------

    class Identified(Aggregate.Event):
        authority: str
        value: str
        meta: dict[str, str]

    class DemographicsChanged(Aggregate.Event):
        given_name: str
        family_name: str
        birth_date: date
        phone: str | None
        meta: dict[str, str]

    class MergedInto(Aggregate.Event):
        survivor_id: UUID
        meta: dict[str, str]

    class SexRecorded(Aggregate.Event):
        administrative_sex: str
        meta: dict[str, str]

    class AccountLinked(Aggregate.Event):
        account_id: UUID
        email: str
        meta: dict[str, str]

    class ActivationCodeIssued(Aggregate.Event):
        code_id: UUID
        meta: dict[str, str]

    def identify(self, *, authority: str, value: str, meta: dict[str, str]) -> None:
        """Record the patient's identifier (an MRN) issued by ``authority``."""
        if not authority.strip() or not value.strip():
            raise InvalidValueError("an identifier needs a value and an assigning authority")
        if self.identifiers.get(authority.strip()) == value.strip():
            return
        self._identified(authority=authority.strip(), value=value.strip(), meta=meta)

    @event(Identified)
    def _identified(self, authority: str, value: str, meta: dict[str, str]) -> None:
        self.identifiers[authority] = value

    def change_demographics(
        self,
        *,
        given_name: str,
        family_name: str,
        birth_date: date,
        phone: str | None,
        today: date,
        meta: dict[str, str],
    ) -> bool:
        """New names, birth date or phone; False (and no event) when nothing differs."""
        check_demographics(given_name, family_name, birth_date, today)
        given_name, family_name = given_name.strip(), family_name.strip()
        if (given_name, family_name, birth_date, phone) == (
            self.given_name,
            self.family_name,
            self.birth_date,
            self.phone,
        ):
            return False
        self._demographics_changed(
            given_name=given_name,
            family_name=family_name,
            birth_date=birth_date,
            phone=phone,
            meta=meta,
        )
        return True

    @event(DemographicsChanged)
    def _demographics_changed(
        self,
        given_name: str,
        family_name: str,
        birth_date: date,
        phone: str | None,
        meta: dict[str, str],
    ) -> None:
        self.given_name = given_name
        self.family_name = family_name
        self.birth_date = birth_date
        self.phone = phone

    def merge_into(self, survivor_id: UUID, meta: dict[str, str]) -> None:
        """This record is a duplicate of ``survivor_id``'s: lookups go there from now on."""
        if survivor_id == self.id:
            raise InvalidValueError("a patient cannot be merged into itself")
        if self.merged_into == survivor_id:
            return
        if self.merged_into is not None:
            raise InvalidValueError("this patient was already merged into another record")
        self._merged_into(survivor_id=survivor_id, meta=meta)

    @event(MergedInto)
    def _merged_into(self, survivor_id: UUID, meta: dict[str, str]) -> None:
        self.merged_into = survivor_id

    # Administrative sex (HL7 PID-8), accounts, activation codes ------------------------

    def record_sex(self, administrative_sex: str, meta: dict[str, str]) -> bool:
        """The administrative sex (HL7 table 0001); False (and no event) when unchanged.
        An empty value says nothing and changes nothing."""
        value = administrative_sex.strip().upper()
        if not value or value == self.administrative_sex:
            return False
        if value not in ADMINISTRATIVE_SEXES:
            raise InvalidValueError(
                f"administrative sex must be one of {', '.join(ADMINISTRATIVE_SEXES)}"
            )
        self._sex_recorded(administrative_sex=value, meta=meta)
        return True

    @event(SexRecorded)
    def _sex_recorded(self, administrative_sex: str, meta: dict[str, str]) -> None:
        self.administrative_sex = administrative_sex

    def link_account(self, account_id: UUID, email: str, meta: dict[str, str]) -> None:
        """An account signs in as this patient from now on (it was activated with a code)."""
        if self.merged_into is not None:
            raise InvalidValueError("an account cannot be linked to a merged-away record")
        if self.account_id == account_id:
            return
        if self.has_account:
            raise InvalidValueError("this patient already has an account")
        self._account_linked(account_id=account_id, email=email, meta=meta)

    @event(AccountLinked)
    def _account_linked(self, account_id: UUID, email: str, meta: dict[str, str]) -> None:
        self.account_id = account_id
        self.email = email

    def issue_activation_code(self, code_id: UUID, meta: dict[str, str]) -> None:
        """The code ``code_id`` may activate this record; it replaces any earlier code."""
        if self.merged_into is not None:
            raise InvalidValueError("this record was merged into another; use that one")
        self._activation_code_issued(code_id=code_id, meta=meta)

    @event(ActivationCodeIssued)
    def _activation_code_issued(self, code_id: UUID, meta: dict[str, str]) -> None:
        self.activation_code_id = code_id
