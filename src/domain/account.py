"""Account: the credentials and role someone signs in with.

Its identity derives from the normalised e-mail address, so an address can
belong to one account only: a second registration collides in the event store.
"""

from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import DomainError, InvalidValueError
from domain.identifiers import derived_id

ROLES = ("patient", "scheduler", "billing", "compliance", "admin", "integration")


class EmailTakenError(DomainError):
    code = "email_taken"


def normalise_email(email: str) -> str:
    """Lower-cased and stripped; the minimal shape check, the rest is the mail server's."""
    email = email.strip().lower()
    local, _, domain = email.partition("@")
    if not local or "." not in domain or len(email) > 254 or " " in email:
        raise InvalidValueError("a valid e-mail address is required")
    return email


class Account(Aggregate):
    """A sign-in identity: e-mail, password hash, role and (for patients) the patient."""

    class Opened(Aggregate.Created):
        email: str
        password_hash: str
        role: str
        patient_id: UUID | None
        meta: dict[str, str]

    class PasswordChanged(Aggregate.Event):
        password_hash: str
        meta: dict[str, str]

    @staticmethod
    def create_id(email: str) -> UUID:
        return derived_id("account", normalise_email(email))

    @classmethod
    def open(
        cls,
        *,
        email: str,
        password_hash: str,
        role: str,
        patient_id: UUID | None,
        meta: dict[str, str],
    ) -> "Account":
        if role not in ROLES:
            raise InvalidValueError(f"role must be one of {', '.join(ROLES)}")
        if role == "patient" and patient_id is None:
            raise InvalidValueError("a patient account needs a patient")
        return cls(
            email=normalise_email(email),
            password_hash=password_hash,
            role=role,
            patient_id=patient_id,
            meta=meta,
        )

    @event(Opened)
    def __init__(
        self,
        email: str,
        password_hash: str,
        role: str,
        patient_id: UUID | None,
        meta: dict[str, str],
    ) -> None:
        self.email = email
        self.password_hash = password_hash
        self.role = role
        self.patient_id = patient_id
        self.disabled = False

    def change_password_hash(self, password_hash: str, meta: dict[str, str]) -> None:
        """Store a new hash (a rehash with stronger parameters, or a new password)."""
        self._password_changed(password_hash=password_hash, meta=meta)

    @event(PasswordChanged)
    def _password_changed(self, password_hash: str, meta: dict[str, str]) -> None:
        self.password_hash = password_hash
