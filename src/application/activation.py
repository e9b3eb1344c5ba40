"""Activation codes: staff give a patient the RIS knows a code; with it and their birth
date, the patient creates their portal account on that record, or links the account
they already have (their own record then merges into the RIS's, as an ADT^A40 would).

A code is 12 characters from an alphabet without look-alikes (``XXXX-XXXX-XXXX``, about
59 bits), valid for 14 days, once, and only while it is the patient's latest (issuing a
new one makes the earlier ones useless). Only a keyed digest of it is stored. Every
refusal is the same ``activation_failed`` and counts as a failure for the caller's
lockout (the sign-in throttle), so codes cannot be tried one after another.
"""

import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from uuid import UUID

from eventsourcing.persistence import IntegrityError

from application.base import Position, retrying
from application.digests import KeyedDigest
from application.errors import NotFoundError, TooManyAttemptsError
from application.passwords import check_password
from application.patient_merges import PatientMerges
from application.ports import Clock, PasswordHasher, Throttle
from application.registry import Registration, Registry
from domain.account import Account, EmailTakenError, normalise_email
from domain.activation_code import ActivationCode, ActivationRefusedError
from domain.context import Actor
from domain.patient import Patient

ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"  # no 0/O, 1/I/L, U
GROUPS, GROUP_LENGTH = 3, 4
LIFETIME = timedelta(days=14)
PURPOSE = "activation-code"
REFUSAL = "the activation code or birth date is not valid"
TAKEN = "an account with that e-mail address already exists"


@dataclass(frozen=True)
class IssuedCode:
    code: str
    expires_at: datetime
    patient_id: UUID


@dataclass(frozen=True)
class Linked:
    """An account now signing in as ``patient_id``, which absorbed ``merged_id``."""

    patient_id: UUID
    merged_id: UUID
    position: Position | None


def new_code() -> str:
    groups = ("".join(secrets.choice(ALPHABET) for _ in range(GROUP_LENGTH)) for _ in range(GROUPS))
    return "-".join(groups)


def normalise_code(code: str) -> str:
    """As typed, give or take case, spaces and dashes."""
    raw = "".join(c for c in code.upper() if c not in " -")
    if len(raw) != GROUPS * GROUP_LENGTH:
        return raw
    return "-".join(raw[i : i + GROUP_LENGTH] for i in range(0, len(raw), GROUP_LENGTH))


def issue_code(
    patient: Patient, digest: KeyedDigest, now: datetime, meta: dict[str, str]
) -> tuple[IssuedCode, ActivationCode]:
    """A new code for ``patient`` (it replaces any earlier one): the code to hand over
    once, and the aggregate to save together with the patient."""
    code, expires_at = new_code(), now + LIFETIME
    issued = ActivationCode.issue(
        code_digest=digest.hex(code), patient_id=patient.id, expires_at=expires_at, meta=meta
    )
    patient.issue_activation_code(issued.id, meta)
    return IssuedCode(code, expires_at, patient.id), issued


class Activation:
    def __init__(
        self,
        *,
        registry: Registry,
        merges: PatientMerges,
        digest: KeyedDigest,
        hasher: PasswordHasher,
        throttle: Throttle,
        clock: Clock,
    ) -> None:
        self._registry = registry
        self._merges = merges
        self._digest = digest
        self._hasher = hasher
        self._throttle = throttle
        self._clock = clock

    def issue(self, patient_id: UUID, actor: Actor) -> IssuedCode:
        """A new code for the patient (the surviving record of a merge): shown once."""

        def attempt() -> IssuedCode:
            patient = self._registry.surviving_patient(patient_id)
            issued, code = issue_code(patient, self._digest, self._clock.now(), actor.meta())
            self._registry.save(patient, code)
            return issued

        return retrying(attempt, tries=5, busy="the patient is being changed elsewhere; try again")

    def _code_id(self, code: str) -> UUID:
        return ActivationCode.id_for(self._digest.hex(normalise_code(code)))

    def _redeemable(self, code: str, birth_date: date) -> tuple[ActivationCode, Patient]:
        """The code and the record it activates; ActivationRefusedError, the same for
        every reason, otherwise."""
        now = self._clock.now()
        issued = self._registry.find(self._code_id(code), ActivationCode)
        if issued is None or not issued.usable(now):
            raise ActivationRefusedError(REFUSAL)
        try:
            patient = self._registry.surviving_patient(issued.patient_id)
        except NotFoundError:
            raise ActivationRefusedError(REFUSAL) from None
        if (
            patient.activation_code_id != issued.id
            or patient.birth_date != birth_date
            or patient.has_account
        ):
            raise ActivationRefusedError(REFUSAL)
        return issued, patient

    def _throttled(self, key: str) -> None:
        wait = self._throttle.retry_after(key, self._clock.now())
        if wait > 0:
            raise TooManyAttemptsError("too many failed attempts; try again later", wait)

    def _refused(self, key: str) -> ActivationRefusedError:
        self._throttle.failure(key, self._clock.now())
        return ActivationRefusedError(REFUSAL)

    def register(
        self,
        *,
        code: str,
        birth_date: date,
        email: str,
        password: str,
        throttle_key: str,
        actor: Actor,
    ) -> Registration:
        """A patient account on the record the code activates (no second record)."""
        key = f"activation:{throttle_key}"
        self._throttled(key)
        email = normalise_email(email)
        check_password(password, email)
        try:
            issued, patient = self._redeemable(code, birth_date)
        except ActivationRefusedError:
            raise self._refused(key) from None
        if self._registry.account_by_email(email) is not None:
            raise EmailTakenError(TAKEN)
        account = Account.open(
            email=email,
            password_hash=self._hasher.hash(password),
            role="patient",
            patient_id=patient.id,
            meta=actor.meta(),
        )
        issued.use(account.id, self._clock.now(), actor.meta())
        patient.link_account(account.id, email, actor.meta())
        try:
            recordings = self._registry.save(patient, issued, account)
        except IntegrityError:
            # Another request used the code or the address first.
            if self._registry.account_by_email(email) is not None:
                raise EmailTakenError(
                    "an account with that e-mail address already exists"
                ) from None
            raise self._refused(key) from None
        self._throttle.success(key)
        return Registration(patient.id, account.id, self._registry.position_of(recordings))

    def link(self, *, account_id: UUID, code: str, birth_date: date, actor: Actor) -> Linked:
        """The signed-in patient's record merges into the one the code activates, the
        account signs in as that one from now on, and the merged record's appointments
        and orders move to it; its preferences too where the record activated has none of
        its own (``Patient.take_preferences_of``)."""
        key = f"activation:{account_id}"
        self._throttled(key)
        account = self._registry.account(account_id)
        if account.patient_id is None:
            raise NotFoundError("this account has no patient record")
        own = self._registry.patient(account.patient_id)
        try:
            issued, patient = self._redeemable(code, birth_date)
            if patient.id == own.id or own.merged_into is not None:
                raise ActivationRefusedError(REFUSAL)
        except ActivationRefusedError:
            raise self._refused(key) from None
        now = self._clock.now()
        issued.use(account.id, now, actor.meta())
        patient.link_account(account.id, account.email, actor.meta())
        own.merge_into(patient.id, actor.meta())
        patient.take_preferences_of(own, at=now, meta=actor.meta())
        account.change_patient(patient.id, actor.meta())
        try:
            self._registry.save(own, patient, issued, account)
        except IntegrityError:
            raise self._refused(key) from None
        self._throttle.success(key)
        position = self._merges.move(own.id, patient.id, actor)
        return Linked(patient.id, own.id, position)
