"""How patients want to hear from the centre: consent per channel, language, quiet hours,
their zone and the browsers subscribed to web push (``Patient.preferences``).

The patient changes them in the portal; staff on their behalf (source ``staff``); an SMS
reply STOP or START from a number changes SMS consent of every record with that number
at once (``sms_stop``, ``sms_start``), and a push service that says a subscription is
gone removes it (``remove_push_subscription``, source ``provider``).

Phones are found through an index of keyed digests (``PhoneIndex``), never the numbers;
each record it names is checked against the Registry's own before anything changes.
"""

from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import datetime
from enum import Enum
from typing import Any, Literal
from uuid import UUID

from application.base import Position, retrying
from application.channels import PushKeys
from application.ports import Clock, ReadModelSync
from application.registry import Registry
from domain.contact_preferences import CHANNELS, SMS, ContactPreferences, e164
from domain.context import Actor
from domain.errors import InvalidValueError
from domain.patient import Patient
from domain.reminders import QuietHours

BUSY = "the patient is being changed elsewhere; try again"
PHONE_INDEX_WAIT = 5.0  # seconds a STOP or START waits for the phone index at most


class Unchanged(Enum):
    """Marks a preference a call leaves as it is (where None means "none")."""

    UNCHANGED = "unchanged"


UNCHANGED: Literal[Unchanged.UNCHANGED] = Unchanged.UNCHANGED


class PhoneIndex(ABC):
    """Which patient records have a phone number (keyed digests, never the numbers)."""

    @abstractmethod
    def by_phone(self, phone_e164: str) -> list[UUID]:
        """The records whose phone, in E.164, is ``phone_e164``; merged-away records too."""


class Preferences:
    """Reads and changes patients' notification preferences (the only writer of them)."""

    def __init__(
        self,
        *,
        registry: Registry,
        phones: PhoneIndex,
        clock: Clock,
        valid_keys: Callable[[PushKeys], bool],
        push_public_key: str,
        sync: ReadModelSync | None = None,
    ) -> None:
        self._registry = registry
        self._sync = sync
        self._phones = phones
        self._clock = clock
        self._valid_keys = valid_keys
        self.push_public_key = push_public_key
        """The VAPID application server key browsers subscribe with (base64url)."""

    def preferences(self, patient_id: UUID) -> ContactPreferences:
        """The patient's preferences now (the surviving record's, if ``patient_id`` was
        merged into another); NotFoundError for an unknown patient."""
        return self._registry.surviving_patient(patient_id).preferences

    def update(
        self,
        patient_id: UUID,
        *,
        consents: dict[str, bool] | None = None,
        language: str | None = None,
        quiet_hours: QuietHours | Unchanged | None = UNCHANGED,
        zone: str | Unchanged | None = UNCHANGED,
        actor: Actor,
        source: str = "portal",
    ) -> ContactPreferences:
        """Change what is given: consent per channel (``{"sms": True}``; channels not
        named keep theirs), the language (None: unchanged), quiet hours and zone (None:
        none / the location's; ``UNCHANGED``: as they are). All or nothing: an
        InvalidValueError (SMS without a phone, push without a subscription, an unknown
        zone) changes nothing. Consent already as asked records nothing new."""
        unknown = set(consents or {}) - set(CHANNELS)
        if unknown:
            raise InvalidValueError(f"unknown channel {', '.join(sorted(unknown))}")
        now = self._clock.now()
        meta = actor.meta()

        def change(patient: Patient) -> None:
            for channel, granted in (consents or {}).items():
                if granted:
                    patient.give_consent(channel, at=now, source=source, meta=meta)
                else:
                    patient.withdraw_consent(channel, at=now, source=source, meta=meta)
            if language is not None:
                patient.choose_language(language, meta)
            if not isinstance(quiet_hours, Unchanged):
                patient.set_quiet_hours(quiet_hours, meta)
            if not isinstance(zone, Unchanged):
                patient.choose_timezone(zone, meta)

        return self._change(patient_id, change).preferences

    def add_push_subscription(
        self, patient_id: UUID, endpoint: str, p256dh: str, auth: str, actor: Actor
    ) -> ContactPreferences:
        """A browser's ``PushSubscription`` (endpoint and keys) for this patient; the keys
        must be a P-256 point and a 16-byte secret. Does not turn push on by itself."""
        if not self._valid_keys(PushKeys(p256dh=p256dh, auth=auth)):
            raise InvalidValueError("the subscription's keys are not a P-256 key and secret")
        now = self._clock.now()

        def change(patient: Patient) -> None:
            patient.add_push_subscription(
                endpoint=endpoint, p256dh=p256dh, auth=auth, at=now, meta=actor.meta()
            )

        return self._change(patient_id, change).preferences

    def remove_push_subscription(
        self, patient_id: UUID, endpoint: str, actor: Actor, source: str = "portal"
    ) -> bool:
        """The browser at ``endpoint`` gets no more pushes: the patient removed it
        (``portal``) or the push service answered 404/410 (``provider``). False when the
        patient had no such subscription."""
        now = self._clock.now()
        removed = False

        def change(patient: Patient) -> None:
            nonlocal removed
            removed = patient.remove_push_subscription(
                endpoint, at=now, source=source, meta=actor.meta()
            )

        self._change(patient_id, change)
        return removed

    def patients_with_phone(self, phone: str) -> list[UUID]:
        """Every patient record (the surviving one of a merge) whose phone is ``phone``
        in any format ``e164`` reads; none for a number it cannot read."""
        number = e164(phone)
        if number is None:
            return []
        if self._sync is not None:
            # A STOP right after the number was recorded must find it: the index is a read
            # model of the registry, so it is asked once it has caught up with the log.
            head = self._registry.recorder.max_notification_id() or 0
            if head:
                self._sync.wait(Position(self._registry.name, head), timeout=PHONE_INDEX_WAIT)
        found: list[UUID] = []
        for patient_id in self._phones.by_phone(number):
            patient = self._registry.patient_by_id(patient_id)
            if patient is None or patient.id in found or patient.phone is None:
                continue
            if e164(patient.phone) == number:  # the index may lag a change of number
                found.append(patient.id)
        return found

    def sms_stop(self, phone_e164: str, at: datetime, actor: Actor) -> list[UUID]:
        """An SMS STOP from ``phone_e164``: SMS consent withdrawn (source ``sms_stop``)
        for every patient with that number, at ``at``. Returns the patients."""
        return self._sms_consent(phone_e164, at, actor, granted=False)

    def sms_start(self, phone_e164: str, at: datetime, actor: Actor) -> list[UUID]:
        """An SMS START from ``phone_e164``: SMS consent given (source ``sms_start``) for
        every patient with that number, at ``at``. Returns the patients."""
        return self._sms_consent(phone_e164, at, actor, granted=True)

    def _sms_consent(self, phone: str, at: datetime, actor: Actor, *, granted: bool) -> list[UUID]:
        patients = self.patients_with_phone(phone)
        meta = actor.meta()
        for patient_id in patients:

            def change(patient: Patient) -> None:
                if granted:
                    patient.give_consent(SMS, at=at, source="sms_start", meta=meta)
                else:
                    patient.withdraw_consent(SMS, at=at, source="sms_stop", meta=meta)

            self._change(patient_id, change)
        return patients

    def _change(self, patient_id: UUID, change: Callable[[Patient], Any]) -> Patient:
        """Apply ``change`` to the patient's surviving record and save it (again, from a
        fresh read, when another writer got there first)."""

        def attempt() -> Patient:
            patient = self._registry.surviving_patient(patient_id)
            change(patient)
            self._registry.save(patient)
            return patient

        return retrying(attempt, tries=5, busy=BUSY)
