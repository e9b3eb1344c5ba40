"""MessageDelivery: one outbound message to one recipient over one channel.

queued -> attempted (n, with outcome) -> acknowledged
                                      -> failed, retryable (back to due at next_attempt_at)
                                      -> failed, permanent -> dead-lettered
                                      -> ambiguous (sent, no answer) -> resent, same control id
dead-lettered -> redriven -> queued
queued (not yet attempted) -> withdrawn       (a reminder of a cancelled or moved exam)
queued -> held until a time -> queued         (the patient's quiet hours)
undeliverable                                  (no channel the patient consented to)

Its identity derives from its cause (source event + recipient + channel), so processing
the same cause again creates nothing twice. Channels: ``hl7`` now; ``email``, ``sms``,
``push`` and ``ledger`` are just more values.
"""

from datetime import datetime, timedelta
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import DomainError, InvalidValueError
from domain.identifiers import derived_id

CHANNELS = ("hl7", "email", "sms", "push", "ledger")

QUEUED = "queued"
ACKNOWLEDGED = "acknowledged"
RETRYING = "retrying"
AMBIGUOUS = "ambiguous"
DEAD = "dead_lettered"
WITHDRAWN = "withdrawn"
UNDELIVERABLE = "undeliverable"

# Attempt outcomes
ACCEPTED = "accepted"  # AA / CA, or the provider's success
REJECTED_RETRYABLE = "error"  # AE, or a transient failure
REJECTED_PERMANENT = "rejected"  # AR, or a permanent failure
NO_ANSWER = "no_answer"  # sent, then timed out or the connection dropped: outcome unknown
NOT_SENT = "not_sent"  # could not connect: nothing left us
OUTCOMES = (ACCEPTED, REJECTED_RETRYABLE, REJECTED_PERMANENT, NO_ANSWER, NOT_SENT)


class DeliveryStateError(DomainError):
    code = "delivery_state"


def delivery_id(cause: str, recipient: str, channel: str) -> UUID:
    """The identity of the delivery that ``cause`` (an event's originator id and version)
    makes for ``recipient`` over ``channel``."""
    return derived_id("delivery", cause, recipient, channel)


def control_id(delivery: UUID) -> str:
    """A stable message control id (HL7 MSH-10, max 20 characters) for every send of
    one delivery, so receivers can recognise a resend."""
    return delivery.hex[:20].upper()


def backoff(attempt: int, base: timedelta, cap: timedelta, jitter: float) -> timedelta:
    """Exponential backoff: base * 2^(attempt-1), capped, scaled by ``jitter`` in [0.5, 1.0]
    (the caller draws it, so the domain stays deterministic)."""
    if not 0.5 <= jitter <= 1.0:
        raise InvalidValueError("jitter must be between 0.5 and 1.0")
    delay: timedelta = min(cap, base * (2 ** max(0, attempt - 1)))
    return delay * jitter


class MessageDelivery(Aggregate):
    """An outbound message, its attempts and its outcome."""

    class Queued(Aggregate.Created):
        channel: str
        recipient: str
        message_type: str
        cause: str
        cause_at: datetime
        ordering_key: str
        payload: dict[str, str]
        meta: dict[str, str]
        due_at: datetime | None
        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, object]) -> None:
            """Deliveries queued before they could wait for a time were due at once."""
            state["due_at"] = None

    class Attempted(Aggregate.Event):
        number: int
        outcome: str
        code: str
        detail: str
        at: datetime
        next_attempt_at: datetime | None
        meta: dict[str, str]

    class DeadLettered(Aggregate.Event):
        reason: str
        meta: dict[str, str]

    class Redriven(Aggregate.Event):
        reason: str
        at: datetime
        meta: dict[str, str]

    class Withdrawn(Aggregate.Event):
        reason: str
        meta: dict[str, str]

    class Held(Aggregate.Event):
        until: datetime
        reason: str
        meta: dict[str, str]

    class FoundUndeliverable(Aggregate.Event):
        reason: str
        meta: dict[str, str]

    class ReceiptRecorded(Aggregate.Event):
        provider_id: str
        status: str
        code: str
        at: datetime
        meta: dict[str, str]

    @staticmethod
    def create_id(cause: str, recipient: str, channel: str) -> UUID:
        return delivery_id(cause, recipient, channel)

    @classmethod
    def queue(
        cls,
        *,
        channel: str,
        recipient: str,
        message_type: str,
        cause: str,
        cause_at: datetime,
        ordering_key: str,
        payload: dict[str, str],
        meta: dict[str, str],
        due_at: datetime | None = None,
    ) -> "MessageDelivery":
        """A delivery to send now, or not before ``due_at`` (a reminder)."""
        if channel not in CHANNELS:
            raise InvalidValueError(f"channel must be one of {', '.join(CHANNELS)}")
        if not recipient or not message_type or not cause:
            raise InvalidValueError("a delivery needs a recipient, a message type and a cause")
        return cls(
            channel=channel,
            recipient=recipient,
            message_type=message_type,
            cause=cause,
            cause_at=cause_at,
            ordering_key=ordering_key,
            payload=dict(payload),
            meta=meta,
            due_at=due_at,
        )

    @classmethod
    def undeliverable(
        cls,
        *,
        channel: str,
        recipient: str,
        message_type: str,
        cause: str,
        cause_at: datetime,
        ordering_key: str,
        payload: dict[str, str],
        reason: str,
        meta: dict[str, str],
    ) -> "MessageDelivery":
        """A message that had to be sent and has no way to go (the patient consented to
        no channel that can carry it): recorded, never silently dropped."""
        delivery = cls.queue(
            channel=channel,
            recipient=recipient,
            message_type=message_type,
            cause=cause,
            cause_at=cause_at,
            ordering_key=ordering_key,
            payload=payload,
            meta=meta,
        )
        delivery._found_undeliverable(reason=reason, meta=meta)
        return delivery

    @event(Queued)
    def __init__(
        self,
        channel: str,
        recipient: str,
        message_type: str,
        cause: str,
        cause_at: datetime,
        ordering_key: str,
        payload: dict[str, str],
        meta: dict[str, str],
        due_at: datetime | None = None,
    ) -> None:
        self.channel = channel
        self.recipient = recipient
        self.message_type = message_type
        self.cause = cause
        self.cause_at = cause_at
        self.ordering_key = ordering_key
        self.payload = dict(payload)
        self.status = QUEUED
        self.attempts = 0
        self.ambiguous_attempts = 0
        self.last_code = ""
        self.last_detail = ""
        self.due_at = due_at
        self.next_attempt_at: datetime | None = due_at
        self.dead_reason = ""
        self.end_reason = ""
        self.last_receipt = ""
        self.patience_from = cause_at if due_at is None else max(cause_at, due_at)

    @property
    def control_id(self) -> str:
        return control_id(self.id)

    @property
    def is_pending(self) -> bool:
        """Still to be sent (or resent): it holds back later deliveries of its ordering key."""
        return self.status in (QUEUED, RETRYING, AMBIGUOUS)

    def is_due(self, now: datetime) -> bool:
        return self.is_pending and (self.next_attempt_at is None or self.next_attempt_at <= now)

    def record_attempt(
        self,
        *,
        outcome: str,
        code: str,
        detail: str,
        at: datetime,
        policy: "RetryPolicy",
        jitter: float,
        meta: dict[str, str],
        retry_after: timedelta | None = None,
    ) -> None:
        """What one send led to; decides the next state from the retry policy (a retry no
        sooner than ``retry_after`` when the provider asked for that)."""
        if not self.is_pending:
            raise DeliveryStateError(f"a delivery that is {self.status} is not sent")
        if outcome not in OUTCOMES:
            raise InvalidValueError(f"unknown outcome {outcome!r}")
        number = self.attempts + 1
        next_at = None
        if outcome == NOT_SENT:
            # Nothing left us (the recipient is down): keep trying, with backoff, for as
            # long as the policy allows since the cause (or since the last redrive).
            if at - self.patience_from < policy.give_up_after:
                next_at = at + backoff(number, policy.base_delay, policy.max_delay, jitter)
        elif outcome in (REJECTED_RETRYABLE, NO_ANSWER):
            retries = self.ambiguous_attempts + 1 if outcome == NO_ANSWER else number
            limit = policy.ambiguous_limit if outcome == NO_ANSWER else policy.attempt_limit
            if retries < limit:
                next_at = at + backoff(retries, policy.base_delay, policy.max_delay, jitter)
        if next_at is not None and retry_after is not None:
            next_at = max(next_at, at + min(retry_after, policy.max_delay))
        self._attempted(
            number=number,
            outcome=outcome,
            code=code,
            detail=detail[:500],
            at=at,
            next_attempt_at=next_at,
            meta=meta,
        )
        if outcome == REJECTED_PERMANENT:
            self._dead_lettered(reason=f"rejected by the recipient ({code})", meta=meta)
        elif outcome != ACCEPTED and next_at is None:
            self._dead_lettered(reason=f"gave up after {number} attempts ({outcome})", meta=meta)

    @event(Attempted)
    def _attempted(
        self,
        number: int,
        outcome: str,
        code: str,
        detail: str,
        at: datetime,
        next_attempt_at: datetime | None,
        meta: dict[str, str],
    ) -> None:
        self.attempts = number
        self.last_code = code
        self.last_detail = detail
        self.next_attempt_at = next_attempt_at
        if outcome == ACCEPTED:
            self.status = ACKNOWLEDGED
        elif outcome == NO_ANSWER:
            self.ambiguous_attempts += 1
            self.status = AMBIGUOUS
        else:  # a permanent rejection is dead-lettered right after, by its own event
            self.status = RETRYING

    @event(DeadLettered)
    def _dead_lettered(self, reason: str, meta: dict[str, str]) -> None:
        self.status = DEAD
        self.dead_reason = reason
        self.next_attempt_at = None

    def redrive(self, *, reason: str, at: datetime, meta: dict[str, str]) -> None:
        """An operator sends a dead letter again; attempt counting starts afresh."""
        if self.status != DEAD:
            raise DeliveryStateError("only a dead-lettered delivery can be redriven")
        if not reason.strip():
            raise InvalidValueError("a redrive needs a reason")
        self._redriven(reason=reason.strip(), at=at, meta=meta)

    @event(Redriven)
    def _redriven(self, reason: str, at: datetime, meta: dict[str, str]) -> None:
        self.status = QUEUED
        self.attempts = 0
        self.ambiguous_attempts = 0
        self.next_attempt_at = at
        self.dead_reason = ""
        self.patience_from = at

    def withdraw(self, *, reason: str, meta: dict[str, str]) -> bool:
        """Take back a delivery not yet attempted (the reminder of an exam that moved or
        was cancelled); False, changing nothing, when it is already on its way or done."""
        if self.status != QUEUED or self.attempts:
            return False
        self._withdrawn(reason=reason, meta=meta)
        return True

    @event(Withdrawn)
    def _withdrawn(self, reason: str, meta: dict[str, str]) -> None:
        self.status = WITHDRAWN
        self.end_reason = reason
        self.next_attempt_at = None

    def hold(self, *, until: datetime, reason: str, meta: dict[str, str]) -> None:
        """Wait until ``until`` before the next send (the patient's quiet hours)."""
        if not self.is_pending:
            raise DeliveryStateError(f"a delivery that is {self.status} is not held")
        self._held(until=until, reason=reason, meta=meta)

    @event(Held)
    def _held(self, until: datetime, reason: str, meta: dict[str, str]) -> None:
        self.next_attempt_at = until
        self.patience_from = max(self.patience_from, until)

    @event(FoundUndeliverable)
    def _found_undeliverable(self, reason: str, meta: dict[str, str]) -> None:
        self.status = UNDELIVERABLE
        self.end_reason = reason
        self.next_attempt_at = None

    def record_receipt(
        self, *, provider_id: str, status: str, code: str, at: datetime, meta: dict[str, str]
    ) -> None:
        """What the provider later reported about a message it took (an SMS status
        callback: delivered, undelivered, failed, with its error code). Kept for the
        compliance officer; it does not change whether the delivery was sent."""
        if not status.strip():
            raise InvalidValueError("a receipt needs a status")
        self._receipt_recorded(
            provider_id=provider_id[:100], status=status[:40], code=code[:40], at=at, meta=meta
        )

    @event(ReceiptRecorded)
    def _receipt_recorded(
        self, provider_id: str, status: str, code: str, at: datetime, meta: dict[str, str]
    ) -> None:
        self.last_receipt = status


class RetryPolicy:
    """How often and how fast to retry; one per destination."""

    def __init__(
        self,
        *,
        attempt_limit: int = 8,
        ambiguous_limit: int = 3,
        base_delay: timedelta = timedelta(seconds=2),
        max_delay: timedelta = timedelta(minutes=10),
        give_up_after: timedelta = timedelta(days=3),
    ) -> None:
        if attempt_limit < 1 or ambiguous_limit < 1:
            raise InvalidValueError("limits must be at least 1")
        self.attempt_limit = attempt_limit
        self.ambiguous_limit = ambiguous_limit
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.give_up_after = give_up_after
