"""The event store's saves in one round trip to PostgreSQL.

The eventsourcing library saves by taking ``LOCK TABLE <app>_events IN EXCLUSIVE MODE``
(so that notification ids commit in the order they were given out, and followers never
pass a gap that fills in later), then NOTIFY, INSERT and COMMIT, each sent after the
previous one's answer came back. Between answers the saving thread must win the GIL back,
so in a busy process the table lock stays held while Python threads take turns: 20-23 ms
per save under booking load, against 0.83 ms for PostgreSQL alone (benchmarks/RESULTS.md),
and the lock, not PostgreSQL, capped the bookings.

Here a save without tracking is one simple-protocol query: ``SET LOCAL lock_timeout;
LOCK TABLE; NOTIFY; INSERT … RETURNING notification_id``. PostgreSQL runs the statements
of one query string as one transaction and commits at its end, so the lock is held only
while the server works, whatever the process is doing. A duplicate (aggregate, version)
rolls the whole string back and raises the library's ``IntegrityError`` as before. Saves
with a tracking record (process applications) keep the library's path: its single-row
tracking check decides in Python whether to commit.

``bootstrap`` names ``OneTripRecorder`` in ``APPLICATION_RECORDER_TOPIC``, the library's
own setting, so every application a process makes saves this way (and subscribes quietly,
``adapters.quiet_subscription``).
"""

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.utils import retry
from psycopg import ClientCursor
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Composed, Identifier

from adapters.quiet_subscription import QuietApplicationRecorder

TOPIC = f"{__name__}:OneTripRecorder"
ROW = SQL("(%s, %s, %s, %s)")


class OneTripRecorder(QuietApplicationRecorder):
    """The application recorder: saves without tracking take one round trip."""

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        if kwargs.get("tracking") is not None or not stored_events:
            ids: Sequence[int] | None = super().insert_events(stored_events, **kwargs)
            return ids
        saved: list[int] = self._insert_in_one_trip(stored_events)
        return saved

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def _insert_in_one_trip(self, stored_events: Sequence[StoredEvent]) -> list[int]:
        statement = self._one_trip_statement(len(stored_events))
        params = [
            value
            for event in stored_events
            for value in (
                event.originator_id,
                event.originator_version,
                event.topic,
                event.state,
            )
        ]
        with (
            self.datastore.get_connection() as conn,
            ClientCursor(conn, row_factory=tuple_row) as cursor,
        ):
            cursor.execute(statement, params)
            while cursor.description is None and cursor.nextset():
                pass  # SET, LOCK and NOTIFY answer with no rows: the INSERT's come last
            return [row[0] for row in cursor.fetchall()]

    def _one_trip_statement(self, count: int) -> Composed:
        insert = SQL(
            "INSERT INTO {schema}.{table} (originator_id, originator_version, topic, state) "
            "VALUES {rows} RETURNING notification_id"
        ).format(
            schema=Identifier(self.datastore.schema),
            table=Identifier(self.events_table_name),
            rows=SQL(", ").join([ROW] * count),
        )
        notify = SQL("NOTIFY {0}").format(Identifier(self.channel_name))
        return SQL("; ").join([*self.lock_table_statements, notify, insert])
