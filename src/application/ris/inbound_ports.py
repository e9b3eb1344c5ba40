"""The ports of the inbound side: the stored message the processing stage hands on,
the handler that applies it, and the reader (the HL7 adapter) that says what it asks
of us and extracts its values."""

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID

from application.ris.parsed import ParsedMessage
from domain.errors import DomainError


@dataclass(frozen=True)
class InboundMessage:
    """One stored inbound HL7 message, as the processing stage hands it to the handler."""

    id: UUID
    message_type: str
    trigger: str
    control_id: str
    sending_application: str
    sending_facility: str
    version: str
    text: str


class InboundHandler(ABC):
    """Applies an inbound HL7 message to the applications, exactly once."""

    @abstractmethod
    def handle(self, message: InboundMessage) -> str:
        """Apply the message; idempotent on ``message.id`` (applying it again changes
        nothing). Returns a short outcome (``applied``, ``ignored``, ``kept_for_review``);
        raises a DomainError when the message cannot be applied (it is quarantined)."""

    def handle_batch(self, messages: Sequence[InboundMessage]) -> dict[UUID, str | DomainError]:
        """Apply several messages of which none waits for another (distinct ordering
        keys), together where that costs less than one by one. Per message applied or
        refused here: its outcome, or the DomainError that refused it alone (the others
        are applied). A message left out is handed to ``handle`` alone. Idempotent as
        ``handle`` is. Here: none is left in (each goes to ``handle``)."""
        return {}

    def ordering_key(self, message: InboundMessage) -> str | None:
        """What the message must be applied in order with: messages of the same key
        are applied in arrival order, messages of different keys may be applied at once
        by several processors. None (here, for every message) asks for the strictest
        order: everything received before it is applied first, and nothing received
        after it passes it."""
        return None


class MessageKind(StrEnum):
    """What an inbound message asks of us."""

    PATIENT = "patient"  # a patient's demographics and identifiers
    MERGE = "merge"  # two records of one patient become one
    ORDERS = "orders"  # new, changed or cancelled orders
    RESULTS = "results"  # result references for orders
    BOOKING_MADE = "booking_made"  # the RIS booked (or moved) time on a resource
    BOOKING_FREED = "booking_freed"  # the RIS's booking no longer holds its time


class MessageReader(ABC):
    """Turns one stored HL7 message into the values the effects need."""

    @abstractmethod
    def kind(self, message: InboundMessage) -> MessageKind | None:
        """What the message asks of us, from its type and trigger alone (None: nothing
        we act on; the message is then not read)."""

    @abstractmethod
    def read(self, message: InboundMessage) -> ParsedMessage:
        """The extracted values; MalformedMessageError when the text cannot be read."""
