"""Registry application: patients and the accounts people sign in with."""

from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from application.base import BaseApplication, Position
from application.errors import NotFoundError, WeakPasswordError
from application.ports import Clock, PasswordHasher
from domain.account import Account, EmailTakenError, normalise_email
from domain.context import Actor
from domain.patient import Patient

MIN_PASSWORD = 8
MAX_PASSWORD = 128


@dataclass(frozen=True)
class Registration:
    patient_id: UUID
    account_id: UUID
    position: Position | None


def check_password(password: str) -> None:
    """Length rules only (no composition rules), per OWASP ASVS."""
    if len(password) < MIN_PASSWORD:
        raise WeakPasswordError(f"a password needs at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise WeakPasswordError(f"a password may have at most {MAX_PASSWORD} characters")


class Registry(BaseApplication):
    name = "registry"

    def __init__(
        self,
        env: Any = None,
        *,
        hasher: PasswordHasher | None = None,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(env)
        self._hasher = hasher
        self._clock = clock

    def register_patient(
        self,
        *,
        email: str,
        password: str,
        given_name: str,
        family_name: str,
        birth_date: date,
        phone: str | None,
        actor: Actor,
    ) -> Registration:
        """A new patient with a patient account; EmailTakenError if the address is in use."""
        assert self._hasher is not None
        assert self._clock is not None
        email = normalise_email(email)
        check_password(password)
        if self.account_by_email(email) is not None:
            raise EmailTakenError("an account with that e-mail address already exists")
        patient = Patient.register(
            id=uuid4(),
            given_name=given_name,
            family_name=family_name,
            birth_date=birth_date,
            email=email,
            phone=phone,
            today=self._clock.now().date(),
            meta=actor.meta(),
        )
        account = Account.open(
            email=email,
            password_hash=self._hasher.hash(password),
            role="patient",
            patient_id=patient.id,
            meta=actor.meta(),
        )
        try:
            recordings = self.save(patient, account)
        except IntegrityError:
            raise EmailTakenError("an account with that e-mail address already exists") from None
        return Registration(patient.id, account.id, self.position_of(recordings))

    def open_staff_account(self, *, email: str, password: str, role: str, actor: Actor) -> UUID:
        """An account for a member of staff (roles other than patient)."""
        assert self._hasher is not None
        check_password(password)
        account = Account.open(
            email=email,
            password_hash=self._hasher.hash(password),
            role=role,
            patient_id=None,
            meta=actor.meta(),
        )
        try:
            self.save(account)
        except IntegrityError:
            raise EmailTakenError("an account with that e-mail address already exists") from None
        return account.id

    def rehash_password(self, account_id: UUID, password: str, actor: Actor) -> None:
        """Store a stronger hash of a password that was just verified."""
        assert self._hasher is not None
        account = self.account(account_id)
        account.change_password_hash(self._hasher.hash(password), actor.meta())
        self.save(account)

    def account(self, account_id: UUID) -> Account:
        try:
            account: Any = self.repository.get(account_id)
        except AggregateNotFoundError:
            raise NotFoundError("no such account") from None
        if not isinstance(account, Account):
            raise NotFoundError("no such account")
        return account

    def account_by_email(self, email: str) -> Account | None:
        try:
            account: Any = self.repository.get(Account.create_id(email))
        except AggregateNotFoundError:
            return None
        return account if isinstance(account, Account) else None

    def patient(self, patient_id: UUID) -> Patient:
        try:
            patient: Any = self.repository.get(patient_id)
        except AggregateNotFoundError:
            raise NotFoundError("no such patient") from None
        if not isinstance(patient, Patient):
            raise NotFoundError("no such patient")
        return patient
