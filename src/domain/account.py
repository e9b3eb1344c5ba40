"""Account: the credentials, role, centres and second factor someone signs in with.

Its identity derives from the normalised e-mail address, so an address can
belong to one account only: a second registration collides in the event store.
"""

from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import DomainError, InvalidValueError
from domain.identifiers import derived_id

ROLES = ("patient", "scheduler", "billing", "compliance", "admin", "integration")
STAFF_ROLES = frozenset(ROLES) - {"patient"}
UNSAFE_IN_ADDRESS = frozenset('@<>()[],;:\\"')  # in the local part or the domain


class EmailTakenError(DomainError):
    code = "email_taken"


class SecondFactorError(DomainError):
    """A second-factor step that does not fit the account's state."""

    code = "second_factor_state"


class AccountDisabledError(DomainError):
    code = "account_disabled"


def normalise_email(email: str) -> str:
    """Lower-cased and stripped; the minimal shape check, the rest is the mail server's:
    one ``@`` between a local part and a dotted domain, and nothing a mail header or an
    SMTP command could be bent with (spaces, control characters, ``<>()[],;:\\"``)."""
    email = email.strip().lower()
    local, _, domain = email.partition("@")
    if (
        not local
        or "." not in domain
        or "" in domain.split(".")
        or len(email) > 254
        or any(c.isspace() or not c.isprintable() or c in UNSAFE_IN_ADDRESS for c in local + domain)
    ):
        raise InvalidValueError("a valid e-mail address is required")
    return email


def check_role(role: str, patient_id: UUID | None) -> None:
    if role not in ROLES:
        raise InvalidValueError(f"role must be one of {', '.join(ROLES)}")
    if role == "patient" and patient_id is None:
        raise InvalidValueError("a patient account needs a patient")
    if role != "patient" and patient_id is not None:
        raise InvalidValueError("a staff account is not a patient's")


class Account(Aggregate):
    """A sign-in identity. Staff accounts are limited to centres (none listed: all)."""

    class Opened(Aggregate.Created):
        email: str
        password_hash: str
        role: str
        patient_id: UUID | None
        centres: list[UUID]
        meta: dict[str, str]

    class PasswordChanged(Aggregate.Event):
        password_hash: str
        meta: dict[str, str]

    class RoleChanged(Aggregate.Event):
        role: str
        centres: list[UUID]
        meta: dict[str, str]

    class Disabled(Aggregate.Event):
        reason: str
        meta: dict[str, str]

    class Enabled(Aggregate.Event):
        meta: dict[str, str]

    class PatientChanged(Aggregate.Event):
        patient_id: UUID
        meta: dict[str, str]

    class TotpEnrolmentStarted(Aggregate.Event):
        secret: str
        meta: dict[str, str]

    class TotpEnabled(Aggregate.Event):
        recovery_code_hashes: list[str]
        meta: dict[str, str]

    class TotpDisabled(Aggregate.Event):
        meta: dict[str, str]

    class RecoveryCodeUsed(Aggregate.Event):
        code_hash: str
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
        centres: list[UUID] | None = None,
    ) -> "Account":
        check_role(role, patient_id)
        return cls(
            email=normalise_email(email),
            password_hash=password_hash,
            role=role,
            patient_id=patient_id,
            centres=list(centres or []),
            meta=meta,
        )

    @event(Opened)
    def __init__(
        self,
        email: str,
        password_hash: str,
        role: str,
        patient_id: UUID | None,
        centres: list[UUID],
        meta: dict[str, str],
    ) -> None:
        self.email = email
        self.password_hash = password_hash
        self.role = role
        self.patient_id = patient_id
        self.centres = list(centres)
        self.disabled = False
        self.totp_secret: str | None = None
        self.totp_enabled = False
        self.recovery_code_hashes: list[str] = []

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES

    def change_password_hash(self, password_hash: str, meta: dict[str, str]) -> None:
        """Store a new hash (a rehash with stronger parameters, or a new password)."""
        self._password_changed(password_hash=password_hash, meta=meta)

    @event(PasswordChanged)
    def _password_changed(self, password_hash: str, meta: dict[str, str]) -> None:
        self.password_hash = password_hash

    def change_role(self, role: str, centres: list[UUID], meta: dict[str, str]) -> None:
        """Staff only: a new role and set of centres (patients stay patients)."""
        if not self.is_staff:
            raise InvalidValueError("a patient account's role cannot change")
        check_role(role, None)
        if role == self.role and sorted(centres) == sorted(self.centres):
            return
        self._role_changed(role=role, centres=list(centres), meta=meta)

    @event(RoleChanged)
    def _role_changed(self, role: str, centres: list[UUID], meta: dict[str, str]) -> None:
        self.role = role
        self.centres = list(centres)

    def disable(self, reason: str, meta: dict[str, str]) -> None:
        if not reason.strip():
            raise InvalidValueError("disabling an account needs a reason")
        if not self.disabled:
            self._disabled(reason=reason.strip(), meta=meta)

    @event(Disabled)
    def _disabled(self, reason: str, meta: dict[str, str]) -> None:
        self.disabled = True

    def enable(self, meta: dict[str, str]) -> None:
        if self.disabled:
            self._enabled(meta=meta)

    @event(Enabled)
    def _enabled(self, meta: dict[str, str]) -> None:
        self.disabled = False

    def change_patient(self, patient_id: UUID, meta: dict[str, str]) -> None:
        """A patient account now signs in as ``patient_id`` (its record was merged into the
        centre's record of the same person)."""
        if self.role != "patient":
            raise InvalidValueError("only a patient account belongs to a patient")
        if patient_id != self.patient_id:
            self._patient_changed(patient_id=patient_id, meta=meta)

    @event(PatientChanged)
    def _patient_changed(self, patient_id: UUID, meta: dict[str, str]) -> None:
        self.patient_id = patient_id

    # Second factor (TOTP, RFC 6238) --------------------------------------------------

    def start_totp_enrolment(self, secret: str, meta: dict[str, str]) -> None:
        """A new secret waits for its first code; an enabled factor must be disabled first."""
        if self.totp_enabled:
            raise SecondFactorError("two-factor sign-in is already on")
        self._totp_enrolment_started(secret=secret, meta=meta)

    @event(TotpEnrolmentStarted)
    def _totp_enrolment_started(self, secret: str, meta: dict[str, str]) -> None:
        self.totp_secret = secret

    def enable_totp(self, recovery_code_hashes: list[str], meta: dict[str, str]) -> None:
        """The first code checked out: the factor is on, with fresh recovery codes."""
        if self.totp_enabled or self.totp_secret is None:
            raise SecondFactorError("start enrolment before confirming it")
        self._totp_enabled(recovery_code_hashes=list(recovery_code_hashes), meta=meta)

    @event(TotpEnabled)
    def _totp_enabled(self, recovery_code_hashes: list[str], meta: dict[str, str]) -> None:
        self.totp_enabled = True
        self.recovery_code_hashes = list(recovery_code_hashes)

    def disable_totp(self, meta: dict[str, str]) -> None:
        """Turn the factor off (the caller re-authenticated); staff must keep theirs."""
        if not self.totp_enabled:
            raise SecondFactorError("two-factor sign-in is not on")
        if self.is_staff:
            raise SecondFactorError("staff accounts must keep two-factor sign-in")
        self._totp_disabled(meta=meta)

    @event(TotpDisabled)
    def _totp_disabled(self, meta: dict[str, str]) -> None:
        self.totp_enabled = False
        self.totp_secret = None
        self.recovery_code_hashes = []

    def use_recovery_code(self, code_hash: str, meta: dict[str, str]) -> bool:
        """Spend one recovery code; False if it is not (or no longer) one of ours."""
        if code_hash not in self.recovery_code_hashes:
            return False
        self._recovery_code_used(code_hash=code_hash, meta=meta)
        return True

    @event(RecoveryCodeUsed)
    def _recovery_code_used(self, code_hash: str, meta: dict[str, str]) -> None:
        self.recovery_code_hashes.remove(code_hash)
