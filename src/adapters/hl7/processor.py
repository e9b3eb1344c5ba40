"""The processing stage: stored messages (status ``received``) go to the
``InboundHandler`` one at a time in order of arrival, off the ACK path.

Each message is claimed (``FOR UPDATE SKIP LOCKED``) and marked ``processed`` or
``quarantined`` in the same transaction, so a crash leaves it ``received`` and it is
handled again; the handler is idempotent per message id, so it applies once. The stored
message is opened (decrypted) here, in memory, for the handler only.
"""

import threading
from typing import Any
from uuid import UUID

import psycopg
import structlog
from eventsourcing.persistence import InterfaceError, OperationalError
from psycopg_pool import ConnectionPool

from adapters.at_rest import AtRestCipher, UnreadableError
from adapters.hl7.acks import acceptance
from adapters.hl7.envelope import read_envelope, segments_text
from adapters.hl7.inbound_store import open_raw
from application.errors import ConcurrencyError
from application.ris.inbound_ports import InboundHandler, InboundMessage
from domain.errors import DomainError

log = structlog.get_logger(__name__)

CLAIM = """
SELECT id, raw, raw_format FROM hl7_inbound WHERE status = 'received'
ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED
"""
MARK = """
UPDATE hl7_inbound SET status = %s, outcome = %s, error = %s, processed_at = now()
WHERE id = %s
"""


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


UNREADABLE = "stored_unreadable: the stored message does not open with the configured key"

# Failures that say nothing about the message: another writer got there first, or the
# database is away for a moment. The message is not quarantined for them.
PASSING = (ConcurrencyError, OperationalError, InterfaceError, psycopg.OperationalError)


class InboundProcessor:
    def __init__(
        self, pool: ConnectionPool[Any], handler: InboundHandler, cipher: AtRestCipher
    ) -> None:
        self.pool = pool
        self.handler = handler
        self.cipher = cipher

    def process_one(self) -> bool:
        """Handle the oldest waiting message; False when none is waiting."""
        with self.pool.connection() as conn, conn.transaction():
            row = conn.execute(CLAIM).fetchone()
            if row is None:
                return False
            message_id = row[0]
            try:
                raw = open_raw(self.cipher, message_id, bytes(row[1]), row[2])
            except UnreadableError:
                # Another key, or an altered row: kept for the operator, who can replay
                # it once the right key is configured.
                conn.execute(MARK, ("quarantined", None, UNREADABLE, message_id))
                log.warning("hl7_inbound_unreadable", id=str(message_id))
                return True
            message, problem = inbound_message(message_id, raw)
            if problem is not None:
                conn.execute(MARK, ("quarantined", None, problem, message_id))
                log.info("hl7_inbound_quarantined", id=str(message_id), error=problem)
                return True
            try:
                outcome = self.handler.handle(message)
            except PASSING:
                raise  # the claim rolls back: the message waits, and ``run`` tries again
            except DomainError as error:
                conn.execute(
                    MARK, ("quarantined", None, f"{error.code}: {error.detail}", message_id)
                )
                log.info("hl7_inbound_quarantined", id=str(message_id), error=error.code)
                return True
            except Exception as error:
                log.exception("hl7_inbound_handler_failed", id=str(message_id))
                detail = f"unexpected {type(error).__name__}"
                conn.execute(MARK, ("quarantined", None, detail, message_id))
                return True
            conn.execute(MARK, ("processed", outcome, None, message_id))
            return True

    def process_pending(self, limit: int = 1000) -> int:
        """Handle up to ``limit`` waiting messages; how many were handled."""
        done = 0
        while done < limit and self.process_one():
            done += 1
        return done

    def run(self, stop_event: threading.Event, idle_seconds: float = 0.2) -> None:
        """Process until ``stop_event`` is set, polling when there is nothing to do.
        A database outage is logged and retried."""
        while not stop_event.is_set():
            try:
                busy = self.process_pending(100)
            except Exception:
                log.exception("hl7_processor_error")
                busy = 0
                stop_event.wait(1)
            if not busy:
                stop_event.wait(idle_seconds)
