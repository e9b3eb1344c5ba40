"""Stored inbound HL7 messages as the operator sees them, and the port to their store."""

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID


@dataclass(frozen=True)
class InboundSummary:
    id: UUID
    received_at: datetime
    status: str
    message_type: str
    trigger: str
    control_id: str
    sending_application: str
    sending_facility: str
    version: str
    ack_code: str
    error: str | None
    outcome: str | None


@dataclass(frozen=True)
class InboundReplay:
    replayed_at: datetime
    actor_id: str
    actor_role: str
    reason: str
    previous_status: str
    previous_error: str | None


@dataclass(frozen=True)
class InboundDetail:
    summary: InboundSummary
    peer: str
    charset: str
    processed_at: datetime | None
    duplicates: int
    ack: str
    raw: str
    replays: list[InboundReplay]


class InboundMessageStore(ABC):
    """Where inbound messages are kept (the listener writes, the processor updates)."""

    @abstractmethod
    def list(self, status: str | None, limit: int) -> list[InboundSummary]:
        """Newest first, optionally only those with ``status``."""

    @abstractmethod
    def get(self, message_id: UUID) -> InboundDetail | None: ...

    @abstractmethod
    def replay(
        self,
        message_id: UUID,
        allowed_from: tuple[str, ...],
        replay: InboundReplay,
        request_id: str,
    ) -> str | None:
        """Put the message back to ``received`` if its status is one of ``allowed_from``,
        recording ``replay`` in the same transaction. Returns the status it had (None
        when the message does not exist)."""
