"""Turns on a busy calendar across processes: a PostgreSQL advisory lock per calendar key,
held on a connection of its own small pool (a holder never needs a second one from it, so
holders cannot starve one another)."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from psycopg_pool import ConnectionPool

from application.calendar_turns import CalendarGate

MAX_HOLDERS = 4  # calendars in their turn at once in one process; the rest wait for a connection


class AdvisoryLockGate(CalendarGate):
    def __init__(self, url: str) -> None:
        self._pool: ConnectionPool[Any] = ConnectionPool(
            url, min_size=0, max_size=MAX_HOLDERS, kwargs={"autocommit": True}, open=True
        )

    @contextmanager
    def turn(self, key: int) -> Iterator[None]:
        with self._pool.connection() as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (key,))
            try:
                yield
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (key,))

    def close(self) -> None:
        self._pool.close()
