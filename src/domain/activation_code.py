"""ActivationCode: a one-time code staff give a patient the RIS knows, so that they can
create their portal account on that record (or link the account they have).

Only a keyed digest of the code is ever stored: the aggregate's identity derives from
it, so a lookup by code is a single read and the code itself is nowhere at rest. A code
works once, until it expires, and only while it is the patient's latest one.
"""

from datetime import datetime
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import DomainError
from domain.identifiers import derived_id


class ActivationRefusedError(DomainError):
    """One answer for every failure (unknown, expired, used or superseded code, a birth
    date that does not match), so the answer never says whether a code exists."""

    code = "activation_failed"


class ActivationCode(Aggregate):
    """A code (by its digest) that activates ``patient_id``'s record until ``expires_at``."""

    class Issued(Aggregate.Created):
        patient_id: UUID
        expires_at: datetime
        meta: dict[str, str]

    class Used(Aggregate.Event):
        account_id: UUID
        meta: dict[str, str]

    @staticmethod
    def id_for(code_digest: str) -> UUID:
        """The identity of the code whose keyed digest this is."""
        return derived_id("activation-code", code_digest)

    @classmethod
    def issue(
        cls, *, code_digest: str, patient_id: UUID, expires_at: datetime, meta: dict[str, str]
    ) -> "ActivationCode":
        return cls(
            id=cls.id_for(code_digest), patient_id=patient_id, expires_at=expires_at, meta=meta
        )

    @event(Issued)
    def __init__(
        self, id: UUID, patient_id: UUID, expires_at: datetime, meta: dict[str, str]
    ) -> None:
        self.patient_id = patient_id
        self.expires_at = expires_at
        self.used_by: UUID | None = None

    def usable(self, now: datetime) -> bool:
        return self.used_by is None and now < self.expires_at

    def use(self, account_id: UUID, now: datetime, meta: dict[str, str]) -> None:
        if not self.usable(now):
            raise ActivationRefusedError("the activation code or birth date is not valid")
        self._used(account_id=account_id, meta=meta)

    @event(Used)
    def _used(self, account_id: UUID, meta: dict[str, str]) -> None:
        self.used_by = account_id
