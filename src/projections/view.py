"""A PostgreSQL read-model view: applies row changes and the tracking record together."""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from eventsourcing.persistence import Tracking
from eventsourcing.postgres import PostgresTrackingRecorder
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composable, Composed, Identifier, Placeholder
from psycopg.types.json import Jsonb

from projections.changes import Change, Delete, Lookup, Update, Upsert
from projections.parked import PARK_ALERT, PARK_EVENT, Parked
from projections.progress import CHANNEL, PROGRESS

SYNC_EVERY = 100


class ReadModelView(PostgresTrackingRecorder):
    """The tracking recorder of one projection, which also owns its read-model tables."""

    _batch: list[Sequence[Change]] | None = None
    _batch_tracking: Tracking | None = None

    def apply(self, changes: Sequence[Change], tracking: Tracking) -> None:
        """Apply ``changes`` and record ``tracking`` in one transaction (inside
        ``batch()``: keep them for the batch's transaction).

        An event that was already tracked makes the tracking insert fail, which
        rolls the changes back: re-processing changes nothing.
        """
        if self._batch is not None:
            self._batch.append(changes)
            self._batch_tracking = tracking
            return
        self._write([changes], tracking)

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Collect what ``apply`` is given meanwhile and write it all, with the last
        tracking record only, in one transaction when the block ends (nothing when it
        raises). Tracking is a high-water mark (``has_tracking_id`` compares with the
        greatest id), so the batch's last id stands for every event in it; the events
        are still applied in order, and all or none of them are. One thread only: the
        thread that follows this view's log."""
        self._batch, self._batch_tracking = [], None
        try:
            yield
            changes, tracking = self._batch, self._batch_tracking
        finally:
            self._batch, self._batch_tracking = None, None
        if tracking is not None:
            self._write(changes, tracking)

    def _write(self, changes: Sequence[Sequence[Change]], tracking: Tracking) -> None:
        with self.datastore.transaction(commit=True) as curs:
            _without_flush_wait(curs)
            # Pipelined: a batch's statements go out without waiting for each answer (an
            # error still fails the transaction, at the latest when the tracking is read).
            # A sync every SYNC_EVERY statements bounds what is in flight (benchmarks/
            # RESULTS.md saw the library's long pipelines stall on a Unix socket).
            with curs.connection.pipeline() as pipeline:
                for n, change in enumerate((c for event in changes for c in event), 1):
                    self._execute(curs, change)
                    if n % SYNC_EVERY == 0:
                        pipeline.sync()
            self._insert_tracking(curs, tracking)
            self._notify(curs, tracking)
        PROGRESS.advanced(tracking.application_name)

    @staticmethod
    def _notify(curs: Cursor[DictRow], tracking: Tracking) -> None:
        """Wake readers waiting for this position (projections.progress): other processes
        hear the NOTIFY when the transaction commits; this one is told after it."""
        curs.execute("SELECT pg_notify(%s, %s)", (CHANNEL, tracking.application_name))

    # --- parking: an event this read model cannot apply (projections/parked.py) ---

    def park(self, parked: Parked, tracking: Tracking) -> None:
        """Record ``parked`` (and an alert for it) with ``tracking``, in one transaction:
        the read model moves past the event it could not apply. An event already tracked
        makes the tracking insert fail, which rolls the parked row back."""
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(PARK_EVENT, parked.row())
            curs.execute(PARK_ALERT, parked.row())
            self._insert_tracking(curs, tracking)
            self._notify(curs, tracking)
        PROGRESS.advanced(tracking.application_name)

    # --- end of parking ---

    def truncate(self, tables: Sequence[str], application_name: str) -> None:
        """Empty the tables and forget how far the projection had got."""
        with self.datastore.transaction(commit=True) as curs:
            for table in tables:
                curs.execute(SQL("DELETE FROM {}").format(Identifier(table)))
            curs.execute(
                SQL("DELETE FROM {} WHERE application_name = %s").format(
                    Identifier(self.tracking_table_name)
                ),
                (application_name,),
            )

    @staticmethod
    def _execute(curs: Cursor[DictRow], change: Change) -> None:
        params = {**change.key, **getattr(change, "values", {})}
        params = {k: _parameter(v) for k, v in params.items()}
        shape = _shape(change)
        text = _TEXTS.get(shape)
        if text is None:  # composed once per shape: a batch repeats a few shapes
            text = _TEXTS[shape] = statement(change).as_string(curs)
        curs.execute(text, params)


_TEXTS: dict[tuple[Any, ...], str] = {}
"""The SQL text of each shape of row change seen (a handful per read model)."""


def _shape(change: Change) -> tuple[Any, ...]:
    """What the SQL of ``change`` depends on: its kind, table, and column names (and,
    for a looked-up value, where it is looked up), not the values."""
    values = getattr(change, "values", {})
    return (
        type(change),
        change.table,
        tuple(change.key),
        tuple(
            (k, (v.table, v.column) if isinstance(v, Lookup) else None) for k, v in values.items()
        ),
    )


def _without_flush_wait(curs: Cursor[DictRow]) -> None:
    """Commit without waiting for the WAL flush. A read model is derived: its rows and its
    tracking record commit together, so a crash that loses the last of them loses both,
    and the follower applies those events again from the log (whose saves keep waiting
    for the flush). Waiting is what costs: PostgreSQL serialises the commits of every
    transaction that NOTIFYs, each with its flush (benchmarks/RESULTS.md)."""
    curs.execute("SET LOCAL synchronous_commit = off")


def _parameter(value: object) -> object:
    if isinstance(value, dict):
        return Jsonb(value)
    if isinstance(value, Lookup):
        return value.id  # the key of the row it is read from (see ``_value``)
    return value


def _value(name: str, value: object) -> Composable:
    """Where a column's new value comes from: its parameter, or a row it is looked up in."""
    if isinstance(value, Lookup):
        return SQL("(SELECT {} FROM {} WHERE id = {})").format(
            Identifier(value.column), Identifier(value.table), Placeholder(name)
        )
    return Placeholder(name)


def statement(change: Change) -> Composed:
    """The SQL for one row change (names are identifiers, values are parameters)."""
    table = Identifier(change.table)
    where = SQL(" AND ").join(
        SQL("{} = {}").format(Identifier(k), Placeholder(k)) for k in change.key
    )
    if isinstance(change, Delete):
        return SQL("DELETE FROM {} WHERE {}").format(table, where)
    assignments = SQL(", ").join(
        SQL("{} = {}").format(Identifier(k), _value(k, v)) for k, v in change.values.items()
    )
    if isinstance(change, Update):
        return SQL("UPDATE {} SET {} WHERE {}").format(table, assignments, where)
    assert isinstance(change, Upsert)
    columns = {**change.key, **change.values}
    insert = SQL("INSERT INTO {} ({}) VALUES ({}) ON CONFLICT ({}) ").format(
        table,
        SQL(", ").join(map(Identifier, columns)),
        SQL(", ").join(_value(k, v) for k, v in columns.items()),
        SQL(", ").join(map(Identifier, change.key)),
    )
    if not change.values:
        return insert + SQL("DO NOTHING")
    excluded = SQL(", ").join(
        SQL("{} = EXCLUDED.{}").format(Identifier(k), Identifier(k)) for k in change.values
    )
    return insert + SQL("DO UPDATE SET ") + excluded
