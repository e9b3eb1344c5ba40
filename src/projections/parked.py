"""Parked events: what a read model does with an event it cannot apply.

A projection whose pure function raises, or whose row change PostgreSQL refuses, would
otherwise stop its runner for good (the eventsourcing runner ends on the first error), and
every later event would wait behind it. Instead the event is parked: a ``parked_events``
row (migrations/0018_parked_events.sql) and a ``projection_event_parked`` alert are
written with the event's tracking record in one transaction, a structlog error line is
logged, and the projection moves on. The operator sees parked events in
``imaging-bridge projections status``, ``/readyz`` and the ``imaging_bridge_parked_events``
metric, fixes the cause, and rebuilds the read model.

What is kept names the event (projection, application, notification id, topic) and the
error (class and a message that holds no event data: PostgreSQL's SQLSTATE and the
constraint, table and column it names, or the place in the code that raised), never the
event's state, which may name a patient; the event itself stays in the encrypted log.
"""

import traceback
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import psycopg
import structlog
from eventsourcing import persistence
from eventsourcing.persistence import Tracking
from eventsourcing.projection import Projection
from eventsourcing.utils import get_topic
from psycopg.sql import SQL

if TYPE_CHECKING:  # pragma: no cover - the view imports this module
    from projections.view import ReadModelView

log = structlog.get_logger(__name__)

ALERT_KIND = "projection_event_parked"
PARK_EVENT = SQL(
    "INSERT INTO parked_events (projection, application_name, notification_id, topic,"
    " error_class, error_message, parked_at) VALUES (%(projection)s, %(application_name)s,"
    " %(notification_id)s, %(topic)s, %(error_class)s, %(error_message)s, now())"
)
PARK_ALERT = SQL(
    "INSERT INTO alerts (at, kind, subject_id, detail) VALUES (now(), %(kind)s,"
    " %(projection)s || ':' || %(application_name)s || ':' || %(notification_id)s,"
    " %(error_class)s || ': ' || %(error_message)s)"
)
MESSAGE_LIMIT = 500
# The database, not the event: parking could not be written either, so the runner stops
# as before (and /readyz says not ready) until the process is restarted.
UNREACHABLE = (
    psycopg.OperationalError,
    psycopg.InterfaceError,
    persistence.OperationalError,
    persistence.InterfaceError,
)


@dataclass(frozen=True)
class Parked:
    """One event a read model could not apply, and why (no event data)."""

    projection: str
    application_name: str
    notification_id: int
    topic: str
    error_class: str
    error_message: str

    def row(self) -> dict[str, Any]:
        return {**asdict(self), "kind": ALERT_KIND}


@dataclass(frozen=True)
class ParkedRow(Parked):
    parked_at: datetime


def cause(error: BaseException) -> BaseException:
    """The psycopg error behind an eventsourcing persistence error (which copies the
    psycopg message, DETAIL lines with row values included), else ``error``."""
    if isinstance(error, persistence.PersistenceError) and isinstance(
        error.__cause__, psycopg.Error
    ):
        return error.__cause__
    return error


def describe(error: BaseException) -> str:
    """A message for ``error`` that holds no event data.

    PostgreSQL's own messages may quote the refused value ("invalid input syntax for type
    uuid: ...", "Failing row contains (...)"), and so may Python's (``int('...')``), so
    neither is kept: a server error is described by its SQLSTATE and the objects it
    names, a client-side psycopg error by its fixed text (e.g. "PostgreSQL text fields
    cannot contain NUL (0x00) bytes"), anything else by where it was raised.
    """
    if isinstance(error, psycopg.Error):
        diag = error.diag
        if error.sqlstate:
            named = (
                ("constraint", diag.constraint_name),
                ("table", diag.table_name),
                ("column", diag.column_name),
            )
            parts = [f"sqlstate {error.sqlstate}"] + [f"{k} {v}" for k, v in named if v]
            return ", ".join(parts)[:MESSAGE_LIMIT]
        return str(error).splitlines()[0][:MESSAGE_LIMIT] if str(error) else "psycopg error"
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return "raised outside a traceback"
    last = frames[-1]
    return f"raised in {last.name} at {_short(last.filename)}:{last.lineno}"[:MESSAGE_LIMIT]


def _short(filename: str) -> str:
    """The path from the package folder on (``projections/orders_view.py``)."""
    parts = filename.replace("\\", "/").split("/")
    return "/".join(parts[-2:])


def parking(
    projection_class: type[Projection["ReadModelView"]],
) -> type[Projection["ReadModelView"]]:
    """``projection_class``, changed so that an event it cannot apply is parked."""

    class Parking(projection_class):  # type: ignore[valid-type,misc]
        name = projection_class.name

        def process_event(self, domain_event: Any, tracking: Tracking) -> None:
            try:
                super().process_event(domain_event, tracking)
            except UNREACHABLE:
                raise
            # A catch-all on purpose: whatever one event makes the projection raise
            # (its pure function or PostgreSQL refusing the row change), the read model
            # must move on; the error is kept (without event data) for the operator.
            except Exception as error:  # noqa: BLE001
                if self.view.has_tracking_id(tracking.application_name, tracking.notification_id):
                    return  # processed before (its tracking insert failed): nothing changes
                park(self.view, self.name, domain_event, tracking, error)

    Parking.__name__ = Parking.__qualname__ = projection_class.__name__
    return Parking


def park(
    view: "ReadModelView",
    projection: str,
    domain_event: Any,
    tracking: Tracking,
    error: BaseException,
) -> None:
    parked = Parked(
        projection=projection,
        application_name=tracking.application_name,
        notification_id=tracking.notification_id,
        topic=get_topic(type(domain_event)),
        error_class=type(cause(error)).__name__,
        error_message=describe(cause(error)),
    )
    view.park(parked, tracking)
    log.error(
        "projection_event_parked",
        projection=parked.projection,
        application=parked.application_name,
        notification_id=parked.notification_id,
        topic=parked.topic,
        error_class=parked.error_class,
        error_message=parked.error_message,
    )


def parked_events(view: "ReadModelView", projection: str) -> list[ParkedRow]:
    """The events ``projection`` has parked, oldest first."""
    with view.datastore.transaction(commit=False) as curs:
        curs.execute(
            "SELECT projection, application_name, notification_id, topic, error_class,"
            " error_message, parked_at FROM parked_events WHERE projection = %s"
            " ORDER BY application_name, notification_id",
            (projection,),
        )
        rows = curs.fetchall()
    return [ParkedRow(**row) for row in rows]


def status_lines(parked: dict[str, list[ParkedRow]]) -> list[str]:
    """What ``projections status`` prints about parked events, one line each."""
    return [
        f"{name}: parked {row.application_name} #{row.notification_id} {row.topic}"
        f" ({row.error_class}: {row.error_message}) at {row.parked_at.isoformat()}"
        for name, rows in sorted(parked.items())
        for row in rows
    ]
