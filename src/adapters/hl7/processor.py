"""The processing stage: stored messages (status ``received``) go to the
``InboundHandler`` off the ACK path, by several processors at once (threads, and
processes on one database), in arrival order per patient.

Order: each message gets a lane first (``sort_lanes``: a keyed digest of the handler's
``ordering_key``, e.g. the patient's identifier; ``*`` when the handler asks for the
whole feed's order). A message is claimed only when no earlier message of its lane is
still ``received`` (waiting or in another processor's hands) and no earlier message is
a barrier (``*``) or not yet sorted; a barrier only when nothing earlier is waiting.

Each message is claimed (``FOR UPDATE SKIP LOCKED``) and marked ``processed`` or
``quarantined`` in the same transaction, so a crash leaves it ``received`` (and its
lane waiting behind it) and it is handled again; the handler is idempotent per message
id, so it applies once. The stored message is opened (decrypted) here, in memory, for
the handler only.
"""

import threading
from typing import Any
from uuid import UUID

import psycopg
import structlog
from eventsourcing.persistence import InterfaceError, OperationalError
from psycopg_pool import ConnectionPool

from adapters.at_rest import AtRestCipher, UnreadableError
from adapters.database import reader_pool
from adapters.hl7.acks import acceptance
from adapters.hl7.envelope import read_envelope, segments_text
from adapters.hl7.inbound_store import open_raw
from adapters.hl7.wakeup import Wakeup, listen
from application.errors import ConcurrencyError
from application.ris.inbound_ports import InboundHandler, InboundMessage
from domain.errors import DomainError

log = structlog.get_logger(__name__)

BARRIER = "*"
UNSORTED = """
SELECT id, raw, raw_format FROM hl7_inbound WHERE status = 'received' AND lane IS NULL
ORDER BY seq LIMIT %s FOR UPDATE SKIP LOCKED
"""
SET_LANE = "UPDATE hl7_inbound SET lane = %s WHERE id = %s"
# The fence: the first waiting message that everything after it waits for.
CLAIM = """
WITH fence AS (
    SELECT min(seq) AS seq FROM hl7_inbound
    WHERE status = 'received' AND (lane IS NULL OR lane = '*')
)
SELECT m.id, m.raw, m.raw_format FROM hl7_inbound AS m, fence
WHERE m.status = 'received' AND m.lane IS NOT NULL
    AND (fence.seq IS NULL OR m.seq <= fence.seq)
    AND NOT EXISTS (
        SELECT 1 FROM hl7_inbound AS e
        WHERE e.status = 'received' AND e.lane = m.lane AND e.seq < m.seq
    )
    AND (m.lane <> '*' OR NOT EXISTS (
        SELECT 1 FROM hl7_inbound AS e WHERE e.status = 'received' AND e.seq < m.seq
    ))
ORDER BY m.seq LIMIT %s FOR UPDATE OF m SKIP LOCKED
"""
WAITING = "SELECT EXISTS (SELECT 1 FROM hl7_inbound WHERE status = 'received')"
MARK = """
UPDATE hl7_inbound SET status = %s, outcome = %s, error = %s, processed_at = now()
WHERE id = %s
"""
SORT_BATCH = 200
# Messages claimed and marked in one transaction (and handed to the handler together):
# fewer claims, saves and commits per message. 50 applied 1.5-2x faster than 10 in
# benchmarks/RESULTS.md (the claim query costs about the same for either).
CLAIM_BATCH = 50


def inbound_message(message_id: UUID, raw: bytes) -> tuple[InboundMessage, str | None]:
    """The handler's view of a stored message, and why it cannot be handled (if so)."""
    envelope = read_envelope(raw)
    problem = acceptance(envelope)
    message = InboundMessage(
        id=message_id,
        message_type=envelope.message_type,
        trigger=envelope.trigger,
        control_id=envelope.control_id,
        sending_application=envelope.sending_application,
        sending_facility=envelope.sending_facility,
        version=envelope.version,
        text=segments_text(raw, envelope) if envelope.problem is None else "",
    )
    return message, None if problem is None else f"{problem.error_code}: {problem.text}"


# status, outcome, error, id: what MARK writes.
Mark = tuple[str, str | None, str | None, UUID]


def _result_mark(message_id: UUID, result: str | DomainError) -> Mark:
    """The mark of a message the handler applied (its outcome) or refused."""
    if isinstance(result, DomainError):
        log.info("hl7_inbound_quarantined", id=str(message_id), error=result.code)
        return "quarantined", None, f"{result.code}: {result.detail}", message_id
    return "processed", result, None, message_id


UNREADABLE = "stored_unreadable: the stored message does not open with the configured key"

# Failures that say nothing about the message: another writer got there first, or the
# database is away for a moment. The message is not quarantined for them.
PASSING = (ConcurrencyError, OperationalError, InterfaceError, psycopg.OperationalError)


class InboundProcessor:
    """One processor; run several at once (``InboundProcessors``) for throughput.

    ``wakeup`` is what ``run`` waits on when there is nothing to do, and pokes when it
    has finished a message (the same patient's next one may go now)."""

    def __init__(
        self,
        pool: ConnectionPool[Any],
        handler: InboundHandler,
        cipher: AtRestCipher,
        wakeup: Wakeup | None = None,
        batch: int = CLAIM_BATCH,
    ) -> None:
        self.pool = pool
        self.handler = handler
        self.cipher = cipher
        self.wakeup = wakeup or Wakeup()
        self.batch = batch

    def _open(
        self, message_id: UUID, stored: Any, raw_format: int
    ) -> tuple[InboundMessage | None, str | None]:
        """The handler's view of a stored row, or why it cannot have one."""
        try:
            raw = open_raw(self.cipher, message_id, bytes(stored), raw_format)
        except UnreadableError:
            return None, UNREADABLE
        return inbound_message(message_id, raw)

    def lane(self, message: InboundMessage | None, problem: str | None) -> str:
        """The lane of a message: a keyed digest of the handler's ordering key (the
        key may be patient data), or the barrier."""
        if message is None or problem is not None:
            return BARRIER  # quarantined as soon as its turn comes
        try:
            key = self.handler.ordering_key(message)
        except Exception:
            # A fault here must not hold the feed up: the message keeps the feed's order,
            # and the handler says what is wrong with it when its turn comes.
            log.exception("hl7_inbound_ordering_key_failed", id=str(message.id))
            return BARRIER
        if key is None:
            return BARRIER
        return self.cipher.digest(b"hl7_inbound.lane/" + key.encode()).hex()

    def sort_lanes(self, batch: int = SORT_BATCH) -> int:
        """Give the oldest waiting messages without a lane theirs; how many got one."""
        with self.pool.connection() as conn, conn.transaction():
            rows = conn.execute(UNSORTED, (batch,)).fetchall()
            lanes = [(self.lane(*self._open(*row)), row[0]) for row in rows]
            if lanes:
                with conn.cursor() as cursor:
                    cursor.executemany(SET_LANE, lanes)
        if lanes:
            self.wakeup.poke()  # other processors of this process may claim them now
        return len(lanes)

    def process_some(self, most: int) -> int:
        """Handle up to ``most`` of the oldest messages whose turn it is, in one
        transaction; how many (0: nothing waits, or everything waiting waits for
        messages in other processors' hands)."""
        handled = self._claim_and_handle(most)
        if not handled and self.sort_lanes():
            handled = self._claim_and_handle(most)
        return handled

    def process_one(self) -> bool:
        """Handle the oldest message whose turn it is; False when none is."""
        return self.process_some(1) == 1

    def _claim_and_handle(self, most: int) -> int:
        """Claim up to ``most`` messages (no two of one lane, as each waits for the
        earlier ones), handle them (together where the handler can, else one by one) and
        mark them in the claim's transaction. A lost race or an outage stops the batch:
        what was handled before it is kept, the rest waits, and the error goes up once
        that is committed."""
        stopped: Exception | None = None
        handled = 0
        with self.pool.connection() as conn, conn.transaction():
            claimed = [
                (row[0], *self._open(*row)) for row in conn.execute(CLAIM, (most,)).fetchall()
            ]
            together = self._handled_together(
                [m for _, m, problem in claimed if m is not None and problem is None]
            )
            for message_id, message, problem in claimed:
                try:
                    mark = together.get(message_id) or self._mark(message_id, message, problem)
                    conn.execute(MARK, mark)
                except PASSING as error:
                    stopped = error
                    break
                handled += 1
        if handled:
            self.wakeup.poke()
        if stopped is not None:
            raise stopped
        return handled

    def _handled_together(self, messages: list[InboundMessage]) -> dict[UUID, Mark]:
        """The marks of the messages the handler applied (or refused) together; the
        others are handled one by one. When the batch fails as a whole, every message
        is (what the batch applied is applied again, which changes nothing)."""
        if len(messages) < 2:
            return {}
        try:
            results = self.handler.handle_batch(messages)
        except PASSING as error:
            log.info("hl7_inbound_batch_passed", error=type(error).__name__)
            return {}
        except Exception:
            log.exception("hl7_inbound_batch_failed", count=len(messages))
            return {}
        return {
            message_id: _result_mark(message_id, result)
            for message_id, result in results.items()
            if not isinstance(result, PASSING)  # the message goes alone
        }

    def _mark(self, message_id: UUID, message: InboundMessage | None, problem: str | None) -> Mark:
        """What to mark a claimed message with, once handled if it can be."""
        if message is None:
            # Another key, or an altered row: kept for the operator, who can replay it
            # once the right key is configured.
            log.warning("hl7_inbound_unreadable", id=str(message_id))
            return "quarantined", None, UNREADABLE, message_id
        if problem is not None:
            log.info("hl7_inbound_quarantined", id=str(message_id), error=problem)
            return "quarantined", None, problem, message_id
        return self._handled(message)

    def _handled(self, message: InboundMessage) -> Mark:
        """What to mark the message with once the handler has had it."""
        try:
            outcome: str | DomainError = self.handler.handle(message)
        except PASSING:
            raise  # the message waits, and ``run`` tries again
        except DomainError as error:
            outcome = error
        except Exception as error:
            log.exception("hl7_inbound_handler_failed", id=str(message.id))
            return "quarantined", None, f"unexpected {type(error).__name__}", message.id
        return _result_mark(message.id, outcome)

    def process_pending(self, limit: int = 1000) -> int:
        """Handle up to ``limit`` waiting messages; how many were handled."""
        done = 0
        while done < limit:
            handled = self.process_some(min(self.batch, limit - done))
            if not handled:
                break
            done += handled
        return done

    def waiting(self) -> bool:
        """Whether any message is still ``received`` (perhaps in another's hands)."""
        with self.pool.connection() as conn:
            row = conn.execute(WAITING).fetchone()
        return bool(row and row[0])

    def run(
        self,
        stop_event: threading.Event,
        idle_seconds: float = 30.0,
        blocked_seconds: float = 0.2,
    ) -> None:
        """Process until ``stop_event`` is set. With nothing to do, wait for ``wakeup``:
        at most ``blocked_seconds`` while messages wait behind ones in other processors'
        hands (a processor in another process does not wake this one), else at most
        ``idle_seconds`` (a safety net: new messages wake it). A lost race with another
        writer is tried again at once; a database outage is logged and retried."""
        while not stop_event.is_set():
            seen = self.wakeup.generation
            try:
                if self.process_pending(100):
                    continue
                pause = blocked_seconds if self.waiting() else idle_seconds
            except ConcurrencyError:
                stop_event.wait(0.01)  # another writer was first: its turn, then ours
                continue
            except Exception:
                log.exception("hl7_processor_error")
                stop_event.wait(1)
                continue
            if not stop_event.is_set():
                self.wakeup.wait(seen, pause)


class InboundProcessors:
    """``count`` processors on threads of this process, with a pool of their own (a
    connection each while it handles a message) and one LISTEN connection that wakes
    them. Safe beside processors of other processes on the same database."""

    def __init__(self, url: str, handler: InboundHandler, cipher: AtRestCipher, count: int) -> None:
        self.url = url
        self.handler = handler
        self.cipher = cipher
        self.count = count

    def run(self, stop_event: threading.Event) -> None:
        """Process until ``stop_event`` is set; this thread listens for wake-ups."""
        pool = reader_pool(self.url, self.count)
        wakeup = Wakeup()
        threads = [
            threading.Thread(
                target=InboundProcessor(pool, self.handler, self.cipher, wakeup).run,
                args=(stop_event,),
                name=f"hl7-inbound-{number}",
                daemon=True,
            )
            for number in range(1, self.count + 1)
        ]
        try:
            for thread in threads:
                thread.start()
            listen(self.url, wakeup, stop_event)
        finally:
            for thread in threads:
                thread.join(timeout=30)
            pool.close()
