"""Deliveries read model: every outbound delivery with its state and attempts, for the
operator view and for the pump's "what is due" query."""

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Tracking
from eventsourcing.projection import Projection
from psycopg_pool import ConnectionPool

from application.ris.delivery_views import AttemptView, DeliveryReader, DeliveryView
from domain.ris.message_delivery import MessageDelivery, control_id
from projections.changes import Change, Update, Upsert
from projections.view import ReadModelView

TABLE = "rm_deliveries"
ATTEMPTS = "rm_delivery_attempts"
PENDING = ("queued", "retrying", "ambiguous")
# In the SQL text, not a parameter: the partial indexes on pending rows (migrations 0009,
# 0027d) are used only when the planner sees the same list, also in generic plans.
PENDING_SQL = ", ".join(f"'{status}'" for status in PENDING)
PATIENT_CHANNELS = ("email", "sms", "push")


def delivery_changes(event: Any, position: int) -> list[Change]:
    """Pure: the row changes one delivery event causes."""
    match event:
        case MessageDelivery.Queued():
            return [_queued(event, position)]
        case MessageDelivery.Attempted():
            return _attempted(event)
        case MessageDelivery.DeadLettered():
            return [
                _delivery(
                    event, status="dead_lettered", dead_reason=event.reason, next_attempt_at=None
                ),
                _history(event, kind="dead_lettered", detail=event.reason, at=event.timestamp),
            ]
        case MessageDelivery.Withdrawn():
            return [
                _delivery(
                    event, status="withdrawn", dead_reason=event.reason, next_attempt_at=None
                ),
                _history(event, kind="withdrawn", detail=event.reason, at=event.timestamp),
            ]
        case MessageDelivery.Held():
            return [
                _delivery(event, next_attempt_at=event.until, held_until=event.until),
                _history(event, kind="held", detail=event.reason, at=event.timestamp),
            ]
        case MessageDelivery.FoundUndeliverable():
            return [
                _delivery(
                    event, status="undeliverable", dead_reason=event.reason, next_attempt_at=None
                ),
                _history(event, kind="undeliverable", detail=event.reason, at=event.timestamp),
            ]
        case MessageDelivery.ReceiptRecorded():
            detail = f"{event.status} {event.code}".strip()
            return [
                _history(
                    event,
                    kind="receipt",
                    code=event.code,
                    detail=detail,
                    outcome=event.status,
                    at=event.at,
                )
            ]
        case MessageDelivery.Redriven():
            return [
                _delivery(
                    event, status="queued", attempts=0, next_attempt_at=event.at, dead_reason=""
                ),
                _history(event, kind="redriven", detail=event.reason, at=event.at),
            ]
    return []


def _queued(event: Any, position: int) -> Change:
    return Upsert(
        TABLE,
        {"id": event.originator_id},
        {
            "channel": event.channel,
            "recipient": event.recipient,
            "message_type": event.message_type,
            "cause": event.cause,
            "cause_at": event.cause_at,
            "ordering_key": event.ordering_key,
            "position": position,
            "control_id": control_id(event.originator_id),
            "status": "queued",
            "attempts": 0,
            "next_attempt_at": event.due_at,
            "due_at": event.due_at,
            "patient_id": _patient_of(event),
            "created_at": event.timestamp,
            "version": event.originator_version,
            "updated_at": event.timestamp,
        },
    )


def _patient_of(event: Any) -> UUID | None:
    """The patient a notice delivery is for (its payload's ``patient_id``); None for
    other deliveries (HL7, a password reset without a patient record)."""
    if event.channel not in PATIENT_CHANNELS:
        return None
    try:
        return UUID(str(event.payload.get("patient_id", "")))
    except ValueError:
        return None


def _attempted(event: Any) -> list[Change]:
    status = {"accepted": "acknowledged", "no_answer": "ambiguous"}.get(event.outcome, "retrying")
    sent = {"sent_at": event.at} if event.outcome == "accepted" else {}
    return [
        _delivery(
            event,
            status=status,
            attempts=event.number,
            next_attempt_at=event.next_attempt_at,
            last_code=event.code,
            last_detail=event.detail,
            **sent,
        ),
        _history(
            event,
            kind="attempt",
            number=event.number,
            outcome=event.outcome,
            code=event.code,
            detail=event.detail,
            at=event.at,
            next_attempt_at=event.next_attempt_at,
        ),
    ]


def _delivery(event: Any, **values: Any) -> Change:
    """The delivery's row as ``event`` leaves it."""
    stamp = {"version": event.originator_version, "updated_at": event.timestamp}
    return Update(TABLE, {"id": event.originator_id}, {**values, **stamp})


def _history(event: Any, **values: Any) -> Change:
    """The entry ``event`` adds to the delivery's history."""
    key = {"delivery_id": event.originator_id, "version": event.originator_version}
    return Upsert(ATTEMPTS, key, {**values, "actor_id": event.meta.get("actor_id", "")})


class DeliveriesViewProjection(Projection[ReadModelView]):
    name = "deliveries_view"
    tables = (TABLE, ATTEMPTS)

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        self.view.apply(delivery_changes(domain_event, tracking.notification_id), tracking)


COLUMNS = (
    "id, channel, recipient, message_type, cause, cause_at, ordering_key, control_id, status,"
    " attempts, next_attempt_at, last_code, last_detail, dead_reason, version, created_at,"
    " updated_at"
)


def _utc(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC) if value is not None else None


def _row(row: tuple[Any, ...]) -> DeliveryView:
    values = list(row)
    for i in (5, 10, 15, 16):
        values[i] = _utc(values[i])
    return DeliveryView(*values)


class PostgresDeliveryReader(DeliveryReader):
    """Queries of ``rm_deliveries``: the operator's list and the pump's due heads."""

    def __init__(self, pool: ConnectionPool[Any]) -> None:
        self._pool = pool

    def search(
        self, *, status: str | None = None, channel: str | None = None, limit: int = 100
    ) -> list[DeliveryView]:
        with self._pool.connection() as conn:
            rows = conn.execute(
                f"SELECT {COLUMNS} FROM {TABLE}"  # noqa: S608
                " WHERE (%(status)s::text IS NULL OR status = %(status)s)"
                " AND (%(channel)s::text IS NULL OR channel = %(channel)s)"
                " ORDER BY created_at DESC, position DESC LIMIT %(limit)s",
                {"status": status, "channel": channel, "limit": limit},
            ).fetchall()
        return [_row(r) for r in rows]

    def get(self, delivery_id: UUID) -> DeliveryView | None:
        with self._pool.connection() as conn:
            row = conn.execute(
                f"SELECT {COLUMNS} FROM {TABLE} WHERE id = %s",  # noqa: S608
                (delivery_id,),
            ).fetchone()
        return _row(row) if row else None

    def history(self, delivery_id: UUID) -> list[AttemptView]:
        with self._pool.connection() as conn:
            rows = conn.execute(
                "SELECT version, kind, number, outcome, code, detail, at, next_attempt_at,"  # noqa: S608
                f" actor_id FROM {ATTEMPTS} WHERE delivery_id = %s ORDER BY version",
                (delivery_id,),
            ).fetchall()
        return [
            AttemptView(
                version=r[0],
                kind=r[1],
                number=r[2],
                outcome=r[3],
                code=r[4],
                detail=r[5],
                at=r[6].astimezone(UTC),
                next_attempt_at=_utc(r[7]),
                actor_id=r[8],
            )
            for r in rows
        ]

    def due(
        self,
        now: datetime,
        *,
        channel: str = "hl7",
        limit: int = 500,
        unleased_since: datetime | None = None,
    ) -> list[DeliveryView]:
        """The earliest pending delivery of each (recipient, ordering key), if it is due
        (and, with ``unleased_since``, not handed out in its current version since then).

        A later delivery of one ordering key never comes before an earlier pending one.
        Two ordered parts, merged (migration 0028): the deliveries due at once, read in
        (cause_at, position) order (index ``rm_deliveries_due_now``) until ``limit`` heads
        are found, and those given a time that has come (``rm_deliveries_due_later``). A
        round costs what it hands out and skips, not the reminders booked for later.
        """
        with self._pool.connection() as conn:
            rows = conn.execute(
                DUE_SQL,
                {"channel": channel, "now": now, "limit": limit, "since": unleased_since},
            ).fetchall()
        return [_row(r) for r in rows]


def _due_part(when: str) -> str:
    """One ordered part of ``due``: the heads among the pending deliveries ``when`` says
    are due, oldest cause first."""
    return (
        f"SELECT r.* FROM {TABLE} AS r"  # noqa: S608
        f" WHERE r.channel = %(channel)s AND r.status IN ({PENDING_SQL}) AND {when}"
        f" AND NOT EXISTS (SELECT 1 FROM {TABLE} AS earlier"
        "  WHERE earlier.recipient = r.recipient"
        "  AND earlier.ordering_key = r.ordering_key"
        f"  AND earlier.status IN ({PENDING_SQL})"
        # Not "=": the probe then can only use rm_deliveries_pending (recipient,
        # ordering key), even before the table has statistics (channel is NOT NULL).
        "  AND earlier.channel IS NOT DISTINCT FROM r.channel"
        "  AND (earlier.cause_at, earlier.position) < (r.cause_at, r.position))"
        " AND (%(since)s::timestamptz IS NULL OR NOT EXISTS ("
        "  SELECT 1 FROM delivery_dispatch AS d WHERE d.delivery_id = r.id"
        "  AND d.attempts = r.version AND d.dispatched_at >= %(since)s))"
        " ORDER BY r.cause_at, r.position LIMIT %(limit)s"
    )


DUE_SQL = (
    f"SELECT {COLUMNS} FROM ("  # noqa: S608
    f"({_due_part('r.next_attempt_at IS NULL')})"
    " UNION ALL "
    f"({_due_part('r.next_attempt_at <= %(now)s')})"
    ") AS r ORDER BY r.cause_at, r.position LIMIT %(limit)s"
)
