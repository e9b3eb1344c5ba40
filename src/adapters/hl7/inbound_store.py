"""PostgreSQL storage of inbound HL7 messages (table ``hl7_inbound``, migration 0008).

``AsyncInboundWriter`` is the listener's: one autocommit INSERT per message, committed
(durable, with ``synchronous_commit`` on) before the ACK leaves. A duplicate (same
sender, control id and content) hits the unique key and gets the ACK stored the first
time. ``PostgresInboundStore`` is the operator's view for the API and the CLI.
"""

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from adapters.hl7.envelope import Envelope, decode, read_envelope
from application.ris.inbound_messages import (
    InboundDetail,
    InboundMessageStore,
    InboundReplay,
    InboundSummary,
)

INSERT = """
INSERT INTO hl7_inbound (
    id, peer, sending_application, sending_facility, control_id, message_type, trigger,
    version, charset, content_sha256, raw, ack_code, ack, status, error
) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (sending_application, sending_facility, control_id, content_sha256)
DO UPDATE SET duplicates = hl7_inbound.duplicates + 1
RETURNING id, ack, (xmax = 0) AS inserted
"""


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

    def __init__(self, pool: AsyncConnectionPool[Any]) -> None:
        self.pool = pool

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
            envelope.content_sha256,
            raw,
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
    peer, charset, processed_at, duplicates, ack, raw
FROM hl7_inbound WHERE id = %s
"""


def _summary(row: dict[str, Any]) -> InboundSummary:
    return InboundSummary(**{key: row[key] for key in InboundSummary.__dataclass_fields__})


class PostgresInboundStore(InboundMessageStore):
    def __init__(self, pool: ConnectionPool[Any]) -> None:
        self.pool = pool

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
            raw=decode(bytes(row["raw"]), read_envelope(bytes(row["raw"])))[0],
            replays=replays,
        )

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
