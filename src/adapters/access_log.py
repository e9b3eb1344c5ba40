"""The PHI access log: one append-only row per read of patient data.

Two writers share one table (migrations 0003, 0006):

- ``BatchingAccessLog`` is what the service runs. ``record()`` checks the entry and puts
  it on an in-memory queue (microseconds, no I/O); one background thread writes the queue
  to PostgreSQL in batches (every ``interval`` seconds or ``batch_size`` rows, whichever
  comes first) with COPY, one transaction per batch, in the order entries were recorded.
  A batch that fails to write stays at the head of the queue and is retried with backoff
  until it succeeds: rows are never dropped. While the queue is full ``record()`` waits
  (back-pressure), and gives up with a 503-mapped error after ``put_timeout`` rather than
  hold a request thread for ever. ``close()`` writes everything still queued and stops,
  so a clean shutdown loses nothing; a crash (SIGKILL, power loss) can lose what was
  queued but not yet written, at most about ``interval`` seconds of reads.
- ``PostgresAccessLog`` writes each entry in its own INSERT before returning: simple, for
  tools and tests that want no thread.

Both answer the compliance officer's queries (``search``): newest first, keyset pages.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from itertools import islice
from typing import Any
from uuid import UUID

import structlog
from psycopg import sql
from psycopg_pool import ConnectionPool

from application.ports import AccessLog, AccessRecord
from domain.errors import DomainError

log = structlog.get_logger(__name__)

COLUMNS = (
    "at",
    "actor_id",
    "role",
    "patient_id",
    "resource",
    "resource_id",
    "action",
    "outcome",
    "request_id",
    "client_address",
    "reason",
)
_COLUMN_LIST = ", ".join(COLUMNS)
_INSERT = (
    f"INSERT INTO phi_access_log ({_COLUMN_LIST})"  # noqa: S608 - constant column names
    f" VALUES ({', '.join(['%s'] * len(COLUMNS))})"
)
_COPY = f"COPY phi_access_log ({_COLUMN_LIST}) FROM STDIN"
_TEXT_FIELDS = (
    "actor_id",
    "role",
    "resource",
    "resource_id",
    "action",
    "outcome",
    "request_id",
    "client_address",
    "reason",
)


class AccessLogUnavailableError(DomainError):
    """The access log cannot take the entry now (closed, or its queue stayed full): the
    read must not be served unlogged, so the caller is told to try again."""

    code = "try_again"


def checked(entry: AccessRecord) -> AccessRecord:
    """The entry as it will be stored, or ValueError in the caller's thread.

    Everything the database could refuse is caught here, so that a queued entry can
    always be written: an aware time, a UUID (or None) for the patient, and no NUL
    characters (PostgreSQL text cannot hold them; they are stored as U+FFFD).
    """
    if not isinstance(entry.at, datetime) or entry.at.tzinfo is None:
        raise ValueError("access log entries need a timezone-aware time")
    changes: dict[str, Any] = {}
    if entry.patient_id is not None and not isinstance(entry.patient_id, UUID):
        changes["patient_id"] = UUID(str(entry.patient_id))
    for name in _TEXT_FIELDS:
        value = getattr(entry, name)
        if not isinstance(value, str):
            raise ValueError(f"access log field {name} must be text")
        if "\x00" in value:
            changes[name] = value.replace("\x00", "\ufffd")
    if not changes:
        return entry
    return replace(entry, **changes)


def _row(entry: AccessRecord) -> tuple[Any, ...]:
    return tuple(getattr(entry, name) for name in COLUMNS)


def search_query(
    *,
    patient_id: UUID | None = None,
    actor_id: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    after: tuple[datetime, int] | None = None,
    limit: int = 100,
) -> tuple[sql.Composed, list[Any]]:
    """The SELECT behind ``search`` and its parameters (``after``: the (at, id) of the
    entry a page continues from). Public so that benchmarks can EXPLAIN it."""
    conditions: list[sql.Composable] = []
    params: list[Any] = []
    for condition, value in (
        ("patient_id = %s", patient_id),
        ("actor_id = %s", actor_id),
        ("at >= %s", start),
        ("at < %s", end),
    ):
        if value is not None:
            conditions.append(sql.SQL(condition))
            params.append(value)
    if after is not None:
        conditions.append(sql.SQL("(at, id) < (%s, %s)"))
        params.extend(after)
    where = sql.SQL(" AND ").join(conditions) if conditions else sql.SQL("true")
    query = sql.SQL(
        "SELECT id, {columns} FROM phi_access_log WHERE {where} ORDER BY at DESC, id DESC LIMIT %s"
    ).format(columns=sql.SQL(_COLUMN_LIST), where=where)
    return query, [*params, limit]


class AccessLogSearch:
    """The compliance officer's queries over ``phi_access_log``."""

    def __init__(self, pool: ConnectionPool[Any]) -> None:
        self._pool = pool

    def search(
        self,
        *,
        patient_id: UUID | None = None,
        actor_id: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        before_id: int | None = None,
        limit: int = 100,
    ) -> list[tuple[int, AccessRecord]]:
        """Entries matching every filter given, newest first (by time, then id), at most
        ``limit``; ``start`` inclusive, ``end`` exclusive; ``before_id`` continues after
        that entry (keyset pagination: stable while new rows arrive). The indexes of
        migration 0006 serve each filter with one index range scan and no sort."""
        with self._pool.connection() as conn:
            after = None
            if before_id is not None:
                anchor = conn.execute(
                    "SELECT at FROM phi_access_log WHERE id = %s", (before_id,)
                ).fetchone()
                if anchor is None:
                    return []
                after = (anchor[0], before_id)
            query, params = search_query(
                patient_id=patient_id,
                actor_id=actor_id,
                start=start,
                end=end,
                after=after,
                limit=limit,
            )
            rows = conn.execute(query, params).fetchall()
        return [(row[0], AccessRecord(**dict(zip(COLUMNS, row[1:], strict=True)))) for row in rows]


class PostgresAccessLog(AccessLogSearch, AccessLog):
    """Writes each entry before returning (one INSERT, one round trip)."""

    def record(self, entry: AccessRecord) -> None:
        entry = checked(entry)
        with self._pool.connection() as conn:
            conn.execute(_INSERT, _row(entry))


class BatchingAccessLog(AccessLogSearch, AccessLog):
    """Queues entries and writes them in batches from a background thread (see the module
    docstring). Thread-safe: ``record`` may be called from any number of threads."""

    def __init__(
        self,
        pool: ConnectionPool[Any],
        *,
        batch_size: int = 500,
        interval: float = 0.05,
        max_pending: int = 20_000,
        put_timeout: float | None = 30.0,
        retry_initial: float = 0.1,
        retry_max: float = 5.0,
    ) -> None:
        if batch_size < 1 or max_pending < batch_size:
            raise ValueError("need 1 <= batch_size <= max_pending")
        super().__init__(pool)
        self.batch_size = batch_size
        self.interval = interval
        self.max_pending = max_pending
        self.put_timeout = put_timeout
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self._queue: deque[AccessRecord] = deque()
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)  # the writer waits on it
        self._progress = threading.Condition(self._lock)  # record() and flush() wait on it
        self._recorded = 0  # entries ever accepted
        self._written = 0  # entries ever committed
        self._flush_to = 0  # write without waiting for a full batch up to this count
        self._closing = False
        self._give_up = threading.Event()  # close() timed out: stop retrying
        self._batches = 0
        self._failures = 0
        self._blocked = 0  # record() calls that had to wait for room
        self._thread = threading.Thread(target=self._run, name="access-log-writer", daemon=True)
        self._thread.start()

    # --- the callers' side -------------------------------------------------------------

    def record(self, entry: AccessRecord) -> None:
        """Queue one entry; waits while the queue is full (the database is behind)."""
        entry = checked(entry)
        with self._lock:
            if self._closing:
                raise AccessLogUnavailableError("the access log is shutting down")
            if len(self._queue) >= self.max_pending:
                self._blocked += 1
                if not self._progress.wait_for(
                    lambda: len(self._queue) < self.max_pending or self._closing,
                    timeout=self.put_timeout,
                ):
                    log.error("access_log_full", pending=len(self._queue))
                    raise AccessLogUnavailableError("the access log is not keeping up")
                if self._closing:
                    raise AccessLogUnavailableError("the access log is shutting down")
            self._queue.append(entry)
            self._recorded += 1
            # Wake the writer when the queue stops being empty (it starts its interval)
            # and when a batch is full; not on every entry.
            if len(self._queue) in (1, self.batch_size):
                self._work.notify()

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Write everything recorded before this call now; True once it is committed,
        False if that did not happen within ``timeout`` seconds."""
        with self._lock:
            target = self._recorded
            self._flush_to = max(self._flush_to, target)
            self._work.notify()
            return self._progress.wait_for(lambda: self._written >= target, timeout=timeout)

    def wait_written(self, timeout: float | None = 10.0) -> bool:
        """Wait, without hurrying the writer, until everything recorded before this call is
        committed; False if that took longer than ``timeout`` seconds."""
        with self._lock:
            target = self._recorded
            return self._progress.wait_for(lambda: self._written >= target, timeout=timeout)

    def close(self, timeout: float | None = 30.0) -> bool:
        """Refuse new entries, write every queued one, stop the thread. False (and an
        error log with the count) if the database did not take them within ``timeout``."""
        with self._lock:
            self._closing = True
            self._work.notify()
            self._progress.notify_all()
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._give_up.set()
            with self._lock:
                pending = len(self._queue)
            log.error("access_log_closed_with_unwritten_entries", unwritten=pending)
            return False
        return True

    def stats(self) -> dict[str, int]:
        """Counters for monitoring and benchmarks."""
        with self._lock:
            return {
                "recorded": self._recorded,
                "written": self._written,
                "pending": len(self._queue),
                "batches": self._batches,
                "failed_writes": self._failures,
                "blocked_records": self._blocked,
            }

    # --- the writer thread -------------------------------------------------------------

    def _urgent(self) -> bool:
        return (
            len(self._queue) >= self.batch_size or self._written < self._flush_to or self._closing
        )

    def _next_batch(self) -> list[AccessRecord] | None:
        """The oldest entries to write next (left on the queue until written); None when
        closing with nothing left."""
        with self._lock:
            while not self._queue and not self._closing:
                self._work.wait()
            if self._queue and not self._urgent():
                # Let a batch gather for up to one interval.
                self._work.wait_for(self._urgent, timeout=self.interval)
            if not self._queue:
                return None
            return list(islice(self._queue, self.batch_size))

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            if not self._write_with_retries(batch):
                return
            with self._lock:
                for _ in batch:
                    self._queue.popleft()
                self._written += len(batch)
                self._batches += 1
                self._progress.notify_all()

    def _write_with_retries(self, batch: Sequence[AccessRecord]) -> bool:
        attempt = 0
        while True:
            try:
                self._write(batch)
            except Exception as error:  # noqa: BLE001 - any failure: keep the rows, retry
                attempt += 1
                delay = min(self.retry_max, self.retry_initial * 2 ** (attempt - 1))
                with self._lock:
                    self._failures += 1
                    pending = len(self._queue)
                # Only the kind of error: its text can quote the rows (patient data).
                log.error(
                    "access_log_write_failed",
                    error=type(error).__name__,
                    sqlstate=getattr(error, "sqlstate", None),
                    rows=len(batch),
                    pending=pending,
                    attempt=attempt,
                    retry_in=delay,
                )
                if self._give_up.wait(delay):
                    return False
            else:
                if attempt:
                    log.info("access_log_write_recovered", rows=len(batch), attempts=attempt + 1)
                return True

    def _write(self, batch: Sequence[AccessRecord]) -> None:
        with (
            self._pool.connection() as conn,
            conn.transaction(),
            conn.cursor() as cursor,
            cursor.copy(_COPY) as copy,
        ):
            for entry in batch:
                copy.write_row(_row(entry))
