"""Registry application: patients and the accounts people sign in with."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.persistence import IntegrityError
from eventsourcing.utils import get_topic

from application.base import BaseApplication, Position, retrying
from application.errors import NotFoundError
from application.passwords import check_password
from application.ports import Clock, PasswordHasher
from domain.account import STAFF_ROLES, Account, EmailTakenError, normalise_email
from domain.context import Actor
from domain.errors import DomainError, InvalidValueError
from domain.identifiers import derived_id
from domain.patient import Patient
from domain.patient_identifier import PatientIdentifier


@dataclass(frozen=True)
class Registration:
    patient_id: UUID
    account_id: UUID
    position: Position | None


@dataclass(frozen=True)
class RisPatient:
    """A patient as a RIS message sends them (``Registry.record_patient_from_ris``)."""

    identifiers: list[tuple[str, str]]
    given_name: str
    family_name: str
    birth_date: date | None
    phone: str | None
    update_demographics: bool
    actor: Actor
    patient_id: UUID | None = None
    administrative_sex: str = ""
    email: str | None = None


class RegistryLog(BaseApplication):
    """The registry event store as its followers (the delivery policy) read it: the
    same log as ``Registry``, without its commands."""

    name = "registry"


class Registry(RegistryLog):
    """Patients and accounts: registration, sign-in credentials, roles, the RIS's
    patients and their merges."""

    name = RegistryLog.name  # the library names a subclass after itself otherwise

    def __init__(self, env: Any = None, *, hasher: PasswordHasher, clock: Clock) -> None:
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
        administrative_sex: str = "",
    ) -> Registration:
        """A new patient with a patient account; EmailTakenError if the address is in use."""
        email = normalise_email(email)
        check_password(password, email)
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
        patient.record_sex(administrative_sex, actor.meta())
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

    def open_staff_account(
        self, *, email: str, password: str, role: str, centres: list[UUID], actor: Actor
    ) -> UUID:
        """An account for a member of staff; they enrol a second factor at first sign-in."""
        email = normalise_email(email)
        check_password(password, email)
        account = Account.open(
            email=email,
            password_hash=self._hasher.hash(password),
            role=role,
            patient_id=None,
            centres=centres,
            meta=actor.meta(),
        )
        try:
            self.save(account)
        except IntegrityError:
            raise EmailTakenError("an account with that e-mail address already exists") from None
        return account.id

    def rehash_password(self, account_id: UUID, password: str, actor: Actor) -> None:
        """Store a stronger hash of a password that was just verified."""
        self.set_password(account_id, password, actor)

    def set_password(self, account_id: UUID, password: str, actor: Actor) -> None:
        password_hash = self._hasher.hash(password)
        self._change(account_id, lambda a: a.change_password_hash(password_hash, actor.meta()))

    def change_role(self, account_id: UUID, role: str, centres: list[UUID], actor: Actor) -> None:
        self._change(account_id, lambda a: a.change_role(role, centres, actor.meta()))

    def disable_account(self, account_id: UUID, reason: str, actor: Actor) -> None:
        self._change(account_id, lambda a: a.disable(reason, actor.meta()))

    def enable_account(self, account_id: UUID, actor: Actor) -> None:
        self._change(account_id, lambda a: a.enable(actor.meta()))

    def start_totp_enrolment(self, account_id: UUID, secret: str, actor: Actor) -> None:
        self._change(account_id, lambda a: a.start_totp_enrolment(secret, actor.meta()))

    def enable_totp(self, account_id: UUID, code_hashes: list[str], actor: Actor) -> None:
        self._change(account_id, lambda a: a.enable_totp(code_hashes, actor.meta()))

    def disable_totp(self, account_id: UUID, actor: Actor) -> None:
        self._change(account_id, lambda a: a.disable_totp(actor.meta()))

    def use_recovery_code(self, account_id: UUID, code_hash: str, actor: Actor) -> bool:
        """Spend a recovery code exactly once, even when two requests race for it."""
        account = self.account(account_id)
        if not account.use_recovery_code(code_hash, actor.meta()):
            return False
        try:
            self.save(account)
        except IntegrityError:
            return False
        return True

    def _change(self, account_id: UUID, change: Callable[[Account], None]) -> None:
        def attempt() -> None:
            account = self.account(account_id)
            change(account)
            self.save(account)

        retrying(attempt, tries=5, busy="the account is being changed elsewhere; try again")

    def account(self, account_id: UUID) -> Account:
        account = self.find(account_id, Account)
        if account is None:
            raise NotFoundError("no such account")
        return account

    def staff_accounts(self) -> list[Account]:
        """Every staff account, by e-mail address; read from the log (the ``Opened``
        events alone, so patients' accounts are not loaded)."""
        topics = [get_topic(Account.Opened)]
        ids: list[UUID] = []
        start, page = 1, 500
        while True:
            batch = self.recorder.select_notifications(start, page, topics=topics)
            for notification in batch:
                opened: Any = self.mapper.to_domain_event(notification)
                if opened.role in STAFF_ROLES:
                    ids.append(opened.originator_id)
            if len(batch) < page:
                break
            start = batch[-1].id + 1
        return sorted((self.account(i) for i in ids), key=lambda a: a.email)

    def account_by_email(self, email: str) -> Account | None:
        return self.find(Account.create_id(email), Account)

    def surviving_patient(self, patient_id: UUID) -> Patient:
        """The patient, or the record it was merged into; NotFoundError if unknown."""
        return self._surviving(patient_id)

    def patient(self, patient_id: UUID) -> Patient:
        patient = self.find(patient_id, Patient)
        if patient is None:
            raise NotFoundError("no such patient")
        return patient

    def change_profile(self, patient_id: UUID, changes: dict[str, Any], actor: Actor) -> Patient:
        """The patient changes their own names, birth date, phone or administrative sex
        (``changes`` holds only what they sent; a phone of None removes it). An ADT^A08
        tells the RIS (one for the demographics, one for the sex)."""
        changes = dict(changes)
        sex = changes.pop("administrative_sex", None) or ""
        unknown = set(changes) - {"given_name", "family_name", "birth_date", "phone"}
        if unknown:
            raise InvalidValueError(f"cannot change {', '.join(sorted(unknown))}")
        now = self._clock.now()

        def attempt() -> Patient:
            patient = self.patient(patient_id)
            current = {
                "given_name": patient.given_name,
                "family_name": patient.family_name,
                "birth_date": patient.birth_date,
                "phone": patient.phone,
            }
            patient.change_demographics(
                **{**current, **changes}, today=now.date(), at=now, meta=actor.meta()
            )
            patient.record_sex(sex, actor.meta())
            self.save(patient)
            return patient

        return retrying(attempt, tries=5, busy="the patient is being changed elsewhere; try again")

    # Patients known to the RIS (inbound ADT, orders) ------------------------------------

    def patient_by_identifier(self, authority: str, value: str) -> Patient | None:
        """The patient an MRN names, following merges to the surviving record."""
        patient_id = self._identifier_owner(authority, value)
        return self._surviving(patient_id) if patient_id is not None else None

    def record_patient_from_ris(
        self,
        *,
        identifiers: list[tuple[str, str]],
        given_name: str,
        family_name: str,
        birth_date: date | None,
        phone: str | None,
        update_demographics: bool,
        actor: Actor,
        patient_id: UUID | None = None,
        administrative_sex: str = "",
        email: str | None = None,
    ) -> UUID:
        """The patient named by any of ``identifiers`` ((authority, value) pairs), made
        known if new, given every identifier, and (with ``update_demographics``) the
        demographics sent, with the e-mail address notices may go to. ``patient_id`` is
        our own id when the RIS echoes it (the patient registered here). Repeating a call
        changes nothing."""
        return self.record_ris_patient(
            RisPatient(
                identifiers=identifiers,
                given_name=given_name,
                family_name=family_name,
                birth_date=birth_date,
                phone=phone,
                update_demographics=update_demographics,
                actor=actor,
                patient_id=patient_id,
                administrative_sex=administrative_sex,
                email=email,
            )
        )

    def record_ris_patient(self, sent: RisPatient) -> UUID:
        """``record_patient_from_ris`` for a patient already read from a message."""

        def attempt() -> UUID:
            recorded_id, pending = self._decide_ris_patient(sent)
            self.save(*pending)
            return recorded_id

        return retrying(attempt, tries=5, busy="the patient is being changed elsewhere; try again")

    def record_patients_from_ris(
        self, patients: Sequence[RisPatient]
    ) -> list[UUID | DomainError | None]:
        """Several patients the RIS sent (messages that do not wait for one another), as
        ``record_patient_from_ris`` records each, in ONE save: per patient the id
        recorded, or the DomainError that refused that patient alone (the others are
        recorded), or None for a patient whose records an earlier one of the batch
        changes too (record it alone, after this). Repeating a call changes nothing."""

        def attempt() -> list[UUID | DomainError | None]:
            results: list[UUID | DomainError | None] = []
            pending: dict[UUID, Any] = {}
            for sent in patients:
                try:
                    recorded_id, aggregates = self._decide_ris_patient(sent)
                except DomainError as error:
                    results.append(error)
                    continue
                if any(aggregate.id in pending for aggregate in aggregates):
                    results.append(None)
                    continue
                pending.update((aggregate.id, aggregate) for aggregate in aggregates)
                results.append(recorded_id)
            if pending:
                self.save(*pending.values())
            return results

        return retrying(
            attempt, tries=5, busy="the patients are being changed elsewhere; try again"
        )

    def _decide_ris_patient(self, sent: RisPatient) -> tuple[UUID, list[Any]]:
        """The patient's id and the aggregates to save for ``sent`` (nothing saved)."""
        if not sent.identifiers and sent.patient_id is None:
            raise IncompletePatientError("the message names no patient identifier")
        meta = sent.actor.meta()
        owners = [self._identifier_owner(a, v) for a, v in sent.identifiers]
        found = next((self._surviving(o) for o in owners if o is not None), None)
        if found is None and sent.patient_id is not None:
            found = self._surviving(sent.patient_id)
        if found is None:
            patient = self._new_patient_from_ris(sent, self._clock.now().date())
        else:
            patient = found
            if sent.update_demographics and sent.birth_date is not None and sent.given_name.strip():
                now = self._clock.now()
                patient.change_demographics(
                    given_name=sent.given_name,
                    family_name=sent.family_name,
                    birth_date=sent.birth_date,
                    phone=sent.phone if sent.phone is not None else patient.phone,
                    today=now.date(),
                    at=now,
                    meta=meta,
                )
        if sent.update_demographics or found is None:
            patient.record_sex(sent.administrative_sex, meta)
            patient.record_ris_email(sent.email or "", meta)
        pending: list[Any] = [patient]
        for (authority, value), owner in zip(sent.identifiers, owners, strict=True):
            patient.identify(authority=authority, value=value, meta=meta)
            if owner is None:
                pending.append(
                    PatientIdentifier(
                        authority=authority, value=value, patient_id=patient.id, meta=meta
                    )
                )
        return patient.id, pending

    @staticmethod
    def _new_patient_from_ris(sent: RisPatient, today: date) -> Patient:
        """A patient first heard of from the RIS, identified by its first identifier."""
        if sent.birth_date is None or not sent.given_name.strip() or not sent.family_name.strip():
            raise IncompletePatientError("a new patient needs a name and a birth date from the RIS")
        authority, value = sent.identifiers[0]
        return Patient.register(
            id=derived_id("patient", "identifier", authority, value),
            given_name=sent.given_name,
            family_name=sent.family_name,
            birth_date=sent.birth_date,
            email="",
            phone=sent.phone,
            today=today,
            meta=sent.actor.meta(),
        )

    def merge_patients(
        self, *, survivor_id: UUID, merged: list[tuple[str, str]], actor: Actor
    ) -> list[UUID]:
        """ADT^A40: the record named by ``merged`` identifiers is the survivor's; lookups
        by those identifiers find the survivor, which takes the merged record's
        preferences where they override none of its own (``Patient.take_preferences_of``),
        in the same save. Returns every record those identifiers name that is merged into
        the survivor (now or before), so what they hold can be moved over (again,
        harmlessly)."""
        now = self._clock.now()

        def attempt() -> list[UUID]:
            survivor = self.patient(survivor_id)
            pending: list[Any] = []
            merged_ids: list[UUID] = []
            for authority, value in merged:
                owner = self._identifier_owner(authority, value)
                if owner is None:
                    pending.append(
                        PatientIdentifier(
                            authority=authority,
                            value=value,
                            patient_id=survivor.id,
                            meta=actor.meta(),
                        )
                    )
                elif owner != survivor.id:
                    old = self.patient(owner)
                    if old.merged_into is None:
                        old.merge_into(survivor.id, actor.meta())
                        survivor.take_preferences_of(old, at=now, meta=actor.meta())
                        pending.append(old)
                    if old.merged_into == survivor.id:
                        merged_ids.append(old.id)
            if survivor.pending_events:
                pending.append(survivor)
            if pending:
                self.save(*pending)
            return merged_ids

        return retrying(
            attempt, tries=5, busy="the patients are being changed elsewhere; try again"
        )

    def patient_by_id(self, patient_id: UUID) -> Patient | None:
        """The patient (the surviving record if it was merged), or None."""
        try:
            return self._surviving(patient_id)
        except NotFoundError:
            return None

    def surviving_id(self, patient_id: UUID) -> UUID:
        """The id of the record ``patient_id`` was merged into, through every later merge
        (ADT^A40); itself when it was never merged (or is unknown)."""
        patient = self.patient_by_id(patient_id)
        return patient_id if patient is None else patient.id

    def _identifier_owner(self, authority: str, value: str) -> UUID | None:
        index = self.find(PatientIdentifier.create_id(authority, value), PatientIdentifier)
        return None if index is None else index.patient_id

    def _surviving(self, patient_id: UUID) -> Patient:
        patient = self.patient(patient_id)
        seen = {patient.id}
        while patient.merged_into is not None and patient.merged_into not in seen:
            patient = self.patient(patient.merged_into)
            seen.add(patient.id)
        return patient


class IncompletePatientError(DomainError):
    code = "incomplete_patient"
