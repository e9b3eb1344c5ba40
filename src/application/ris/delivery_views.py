"""Deliveries as the operator and the pump see them, and the port to that read model."""

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID


def patient_of(payload: dict[str, str]) -> UUID | None:
    """The patient a delivery's message is about, if it names one."""
    return patient_from(payload.get("patient_id", ""))


def patient_from(text: str) -> UUID | None:
    """A patient id from its text (a delivery's ordering key is one), if it is one."""
    try:
        return UUID(text)
    except ValueError:
        return None


@dataclass(frozen=True)
class DeliveryView:
    """A delivery as the operator and the pump see it (from the read model)."""

    id: UUID
    channel: str
    recipient: str
    message_type: str
    cause: str
    cause_at: datetime
    ordering_key: str
    control_id: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_code: str
    last_detail: str
    dead_reason: str
    version: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class AttemptView:
    """One entry of a delivery's history: an attempt, a dead letter or a redrive."""

    version: int
    kind: str
    number: int
    outcome: str
    code: str
    detail: str
    at: datetime
    next_attempt_at: datetime | None
    actor_id: str


class DeliveryReader(ABC):
    """The deliveries read model."""

    @abstractmethod
    def search(
        self, *, status: str | None = None, channel: str | None = None, limit: int = 100
    ) -> list[DeliveryView]:
        """Deliveries, newest first, optionally of one status and channel."""

    @abstractmethod
    def get(self, delivery_id: UUID) -> DeliveryView | None:
        """One delivery, or None."""

    @abstractmethod
    def history(self, delivery_id: UUID) -> list[AttemptView]:
        """A delivery's attempts, dead letters and redrives, oldest first."""

    @abstractmethod
    def due(
        self,
        now: datetime,
        *,
        channel: str = "hl7",
        limit: int = 500,
        unleased_since: datetime | None = None,
    ) -> list[DeliveryView]:
        """The earliest pending delivery of each (recipient, ordering key), if it is due
        (and, with ``unleased_since``, not handed out in its current version since then)."""
