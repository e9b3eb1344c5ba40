"""PostgreSQL storage of inbound HL7 messages (table ``hl7_inbound``, migrations 0008
and 0016).

``AsyncInboundWriter`` is the listener's: one autocommit INSERT per message, committed
(durable, with ``synchronous_commit`` on) before the ACK leaves. The raw message is
stored sealed (AES-256-GCM with the event key, see ``adapters.at_rest``); a duplicate
(same sender, control id and content, the content compared by its keyed digest) hits
the unique key and gets the ACK stored the first time. ``PostgresInboundStore`` is the
operator's view for the API and the CLI, and seals rows stored in clear before 0016.

The ACK is kept in clear: it holds our MSA/ERR and the sender's MSH-3 to MSH-6, MSH-10,
MSH-11 and MSH-18 echoed, which are kept in clear columns anyway (listing, duplicates),
and never anything of the message's other segments.
"""

from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg
import structlog
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from adapters.at_rest import AtRestCipher
from adapters.hl7.envelope import Envelope, decode, read_envelope
from application.ris.inbound_messages import (
    InboundDetail,
    InboundMessageStore,
    InboundReplay,
    InboundSummary,
)

log = structlog.get_logger(__name__)

CLEAR, SEALED = 0, 1  # hl7_inbound.raw_format

INSERT = """
INSERT INTO hl7_inbound (
    id, peer, sending_application, sending_facility, control_id, message_type, trigger,
    version, charset, content_hmac, raw, raw_format, ack_code, ack, status, error
) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 1, %s, %s, %s, %s)
ON CONFLICT (sending_application, sending_facility, control_id, content_hmac)
DO UPDATE SET duplicates = hl7_inbound.duplicates + 1
RETURNING id, ack, (xmax = 0) AS inserted
"""


def _context(message_id: UUID) -> bytes:
    """What a sealed raw message is bound to: its row."""
    return b"hl7_inbound.raw/" + message_id.bytes


def seal_raw(cipher: AtRestCipher, message_id: UUID, raw: bytes) -> bytes:
    return cipher.seal(raw, _context(message_id))


def open_raw(cipher: AtRestCipher, message_id: UUID, stored: bytes, raw_format: int) -> bytes:
    """The message's bytes as received, from a row in either format. Raises
    ``adapters.at_rest.UnreadableError`` when a sealed row does not open with the key."""
    if raw_format == CLEAR:
        return stored
    return cipher.open(stored, _context(message_id))


def _text(value: str) -> str:
    # PostgreSQL text cannot hold NUL; header fields are latin-1 readings of bytes.
    return value.replace("\x00", "\ufffd")


@dataclass(frozen=True)
class Stored:
    id: UUID
    ack: bytes
    duplicate: bool


class AsyncInboundWriter:
    """Stores a message with the ACK it gets, durably, in one statement."""

    def __init__(self, pool: AsyncConnectionPool[Any], cipher: AtRestCipher) -> None:
        self.pool = pool
        self.cipher = cipher

    async def store(
        self,
        message_id: UUID,
        raw: bytes,
        envelope: Envelope,
        *,
        ack_code: str,
        ack: bytes,
        error: str | None,
        peer: str,
    ) -> Stored:
        status = "received" if ack_code in ("AA", "CA") else "quarantined"
        params = (
            message_id,
            peer,
            _text(envelope.sending_application),
            _text(envelope.sending_facility),
            _text(envelope.control_id),
            _text(envelope.message_type),
            _text(envelope.trigger),
            _text(envelope.version),
            _text(envelope.charset),
            self.cipher.digest(raw),
            seal_raw(self.cipher, message_id, raw),
            ack_code,
            ack,
            status,
            error,
        )
        async with self.pool.connection() as conn:
            cursor = await conn.execute(INSERT, params)
            row = await cursor.fetchone()
        assert row is not None  # INSERT … ON CONFLICT DO UPDATE always returns the row
        return Stored(id=row[0], ack=bytes(row[1]), duplicate=not row[2])


LIST_ALL = """
SELECT id, received_at, status, message_type, trigger, control_id, sending_application,
    sending_facility, version, ack_code, error, outcome
FROM hl7_inbound ORDER BY seq DESC LIMIT %s
"""
LIST_BY_STATUS = """
SELECT id, received_at, status, message_type, trigger, control_id, sending_application,
    sending_facility, version, ack_code, error, outcome
FROM hl7_inbound WHERE status = %s ORDER BY seq DESC LIMIT %s
"""
GET = """
SELECT id, received_at, status, message_type, trigger, control_id, sending_application,
    sending_facility, version, ack_code, error, outcome,
    peer, charset, processed_at, duplicates, ack, raw, raw_format
FROM hl7_inbound WHERE id = %s
"""
IN_CLEAR = """
SELECT id, raw FROM hl7_inbound WHERE raw_format = 0
ORDER BY seq LIMIT %s FOR UPDATE SKIP LOCKED
"""
# A row in clear gets its keyed digest unless a row stored since holds that content
# already (it answers the duplicates from then on).
SEAL = """
UPDATE hl7_inbound AS h SET raw = %(raw)s, raw_format = 1, content_sha256 = NULL,
    content_hmac = CASE WHEN EXISTS (
        SELECT 1 FROM hl7_inbound AS o
        WHERE o.sending_application = h.sending_application
            AND o.sending_facility = h.sending_facility
            AND o.control_id = h.control_id AND o.content_hmac = %(hmac)s
    ) THEN NULL ELSE %(hmac)s END
WHERE id = %(id)s
"""


def _summary(row: dict[str, Any]) -> InboundSummary:
    return InboundSummary(**{key: row[key] for key in InboundSummary.__dataclass_fields__})


class PostgresInboundStore(InboundMessageStore):
    def __init__(self, pool: ConnectionPool[Any], cipher: AtRestCipher) -> None:
        self.pool = pool
        self.cipher = cipher

    def seal_rows_in_clear(self, batch: int = 200) -> int:
        """Seal the raw messages stored in clear (before migration 0016), a batch per
        transaction, so that none stays readable without the key. Safe to run from
        several processes at once, and beside a listener. Returns how many it sealed."""
        sealed, collisions = 0, 0
        while True:
            try:
                done = self._seal_batch(batch)
            except psycopg.errors.UniqueViolation:
                # A duplicate of a row in this batch was being stored at that moment: the
                # batch rolled back; next time the stored duplicate is seen and kept.
                collisions += 1
                if collisions > 3:
                    raise
                continue
            sealed += done
            if done < batch:
                break
        if sealed:
            log.info("hl7_inbound_sealed", rows=sealed)
        return sealed

    def _seal_batch(self, batch: int) -> int:
        with self.pool.connection() as conn, conn.transaction():
            rows = conn.execute(IN_CLEAR, (batch,)).fetchall()
            for message_id, stored in rows:
                raw = bytes(stored)
                params = {
                    "id": message_id,
                    "raw": seal_raw(self.cipher, message_id, raw),
                    "hmac": self.cipher.digest(raw),
                }
                conn.execute(SEAL, params)
        return len(rows)

    def list(self, status: str | None, limit: int) -> list[InboundSummary]:
        with self.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            if status is None:
                cur.execute(LIST_ALL, (limit,))
            else:
                cur.execute(LIST_BY_STATUS, (status, limit))
            return [_summary(row) for row in cur.fetchall()]

    def get(self, message_id: UUID) -> InboundDetail | None:
        with self.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute(GET, (message_id,))
            row = cur.fetchone()
            if row is None:
                return None
            cur.execute(
                "SELECT replayed_at, actor_id, actor_role, reason, previous_status,"
                " previous_error FROM hl7_inbound_replays WHERE inbound_id = %s ORDER BY id",
                (message_id,),
            )
            replays = [InboundReplay(**r) for r in cur.fetchall()]
        return InboundDetail(
            summary=_summary(row),
            peer=row["peer"],
            charset=row["charset"],
            processed_at=row["processed_at"],
            duplicates=row["duplicates"],
            ack=bytes(row["ack"]).decode("latin-1"),
            raw=self._text_of(row),
            replays=replays,
        )

    def _text_of(self, row: dict[str, Any]) -> str:
        raw = open_raw(self.cipher, row["id"], bytes(row["raw"]), row["raw_format"])
        return decode(raw, read_envelope(raw))[0]

    def replay(
        self,
        message_id: UUID,
        allowed_from: tuple[str, ...],
        replay: InboundReplay,
        request_id: str,
    ) -> str | None:
        with self.pool.connection() as conn, conn.transaction():
            row = conn.execute(
                "SELECT status, error FROM hl7_inbound WHERE id = %s FOR UPDATE", (message_id,)
            ).fetchone()
            if row is None:
                return None
            status, error = row
            if status not in allowed_from:
                return str(status)
            conn.execute(
                "INSERT INTO hl7_inbound_replays (inbound_id, replayed_at, actor_id, actor_role,"
                " request_id, reason, previous_status, previous_error)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    message_id,
                    replay.replayed_at,
                    replay.actor_id,
                    replay.actor_role,
                    request_id,
                    replay.reason,
                    status,
                    error,
                ),
            )
            conn.execute(
                "UPDATE hl7_inbound SET status = 'received', processed_at = NULL WHERE id = %s",
                (message_id,),
            )
            return str(status)
