"""Operating the inbound HL7 side: list stored messages, look at one, replay it.

The API (``/v1/admin/hl7/inbound``) and the CLI (``imaging-bridge hl7``) both go
through ``Hl7Inbound``; the storage behind it is the ``InboundMessageStore`` port.
"""

from uuid import UUID

from application.errors import NotFoundError
from application.ports import AccessLog, Clock
from application.ris.inbound_messages import (
    InboundDetail,
    InboundMessageStore,
    InboundReplay,
    InboundSummary,
)
from domain.context import Actor
from domain.errors import DomainError, InvalidValueError

STATUSES = ("received", "processed", "quarantined")
REPLAYABLE = ("quarantined", "processed")
MAX_LIMIT = 500
MAX_REASON = 1000  # as the API's ReplayRequest allows


class NotReplayableError(DomainError):
    code = "invalid_transition"


class AlreadyProcessedError(NotReplayableError):
    """Replaying a processed message was not asked for explicitly."""


class Hl7Inbound:
    """The operator's view of inbound HL7 messages."""

    def __init__(self, store: InboundMessageStore, clock: Clock, audit: AccessLog) -> None:
        self.store = store
        self.clock = clock
        self.audit = audit

    def list(self, status: str = "quarantined", limit: int = 50) -> list[InboundSummary]:
        """Stored messages, newest first; ``status`` one of received, processed,
        quarantined, or all."""
        if status != "all" and status not in STATUSES:
            raise InvalidValueError(f"status must be one of {', '.join(STATUSES)} or all")
        return self.store.list(None if status == "all" else status, max(1, min(limit, MAX_LIMIT)))

    def show(self, message_id: UUID, actor: Actor) -> InboundDetail:
        """One message with its raw text, the ACK we sent, its error and its replays.
        The raw text holds patient data: the read is audited."""
        detail = self._get(message_id)
        self.audit.operator_action(
            at=self.clock.now(),
            actor=actor,
            resource="hl7_inbound",
            resource_id=str(message_id),
            action="read",
            reason="",
        )
        return detail

    def _get(self, message_id: UUID) -> InboundDetail:
        detail = self.store.get(message_id)
        if detail is None:
            raise NotFoundError("no such inbound message")
        return detail

    def replay(
        self, message_id: UUID, reason: str, actor: Actor, *, processed_too: bool = True
    ) -> InboundDetail:
        """Send a quarantined (or, with ``processed_too``, processed) message through
        processing again; who and why are recorded with the message and in the audit
        log. The handler is idempotent per message, so replaying a message already
        applied changes nothing."""
        reason = reason.strip()
        if not reason:
            raise InvalidValueError("a replay needs a reason")
        if len(reason) > MAX_REASON:
            raise InvalidValueError(f"a replay reason is at most {MAX_REASON} characters")
        replay = InboundReplay(
            replayed_at=self.clock.now(),
            actor_id=actor.id,
            actor_role=actor.role,
            reason=reason,
            previous_status="",
            previous_error=None,
        )
        allowed = REPLAYABLE if processed_too else ("quarantined",)
        previous = self.store.replay(message_id, allowed, replay, actor.request_id)
        if previous is None:
            raise NotFoundError("no such inbound message")
        if previous == "processed" and not processed_too:
            raise AlreadyProcessedError("the message was processed already")
        if previous not in REPLAYABLE:
            raise NotReplayableError(f"a {previous} message cannot be replayed")
        self.audit.operator_action(
            at=replay.replayed_at,
            actor=actor,
            resource="hl7_inbound",
            resource_id=str(message_id),
            action="replay",
            reason=replay.reason,
        )
        return self._get(message_id)
