"""Request budgets and failure lockouts kept in PostgreSQL, so every process shares them.

Tables ``rate_limit_windows`` and ``throttle_failures`` (see migrations/0004_limits.sql).
Keys may be e-mail addresses: only their SHA-256 digests are stored.
"""

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg_pool import ConnectionPool

from application.ports import RateLimiter, Throttle

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def key_digest(key: str) -> str:
    """What the tables store instead of a key: its SHA-256, hex."""
    return hashlib.sha256(key.encode()).hexdigest()


class PostgresRateLimiter(RateLimiter):
    """Fixed windows aligned to the Unix epoch; one atomic upsert per hit."""

    def __init__(self, pool: ConnectionPool[Any]) -> None:
        self._pool = pool

    def hit(self, bucket: str, key: str, limit: int, window_seconds: int, now: datetime) -> float:
        if window_seconds <= 0:
            raise ValueError("window_seconds must be positive")
        window = timedelta(seconds=window_seconds)
        into_window = (now - EPOCH) % window
        window_start = now - into_window
        with self._pool.connection() as conn:
            row = conn.execute(
                "INSERT INTO rate_limit_windows AS w"
                " (bucket, key_hash, window_start, window_end, count)"
                " VALUES (%s, %s, %s, %s, 1)"
                " ON CONFLICT (bucket, key_hash, window_start)"
                " DO UPDATE SET count = w.count + 1"
                " RETURNING count",
                (bucket, key_digest(key), window_start, window_start + window),
            ).fetchone()
        assert row is not None  # an upsert with RETURNING always returns its row
        count: int = row[0]
        if count <= limit:
            return 0.0
        return (window - into_window).total_seconds()

    def purge(self, before: datetime) -> int:
        """Delete the windows that ended by ``before``; how many there were."""
        with self._pool.connection() as conn:
            deleted: int = conn.execute(
                "DELETE FROM rate_limit_windows WHERE window_end <= %s", (before,)
            ).rowcount
        return deleted


class PostgresThrottle(Throttle):
    """The first ``free_failures`` failures cost nothing; each further one locks the key for
    ``base_delay``, then twice that, and so on up to ``max_delay``. Counting restarts after
    ``forget_after`` without failures; a success forgets the key at once."""

    FREE_FAILURES = 5
    BASE_DELAY = timedelta(seconds=1)
    MAX_DELAY = timedelta(minutes=15)
    FORGET_AFTER = timedelta(hours=1)

    def __init__(
        self,
        pool: ConnectionPool[Any],
        *,
        free_failures: int | None = None,
        base_delay: timedelta | None = None,
        max_delay: timedelta | None = None,
        forget_after: timedelta | None = None,
    ) -> None:
        self._pool = pool
        self.free_failures = self.FREE_FAILURES if free_failures is None else free_failures
        self.base_delay = self.BASE_DELAY if base_delay is None else base_delay
        self.max_delay = self.MAX_DELAY if max_delay is None else max_delay
        self.forget_after = self.FORGET_AFTER if forget_after is None else forget_after

    def delay(self, failures: int) -> timedelta:
        """How long the ``failures``-th failure in a row locks its key."""
        extra = failures - self.free_failures
        if extra <= 0:
            return timedelta(0)
        # Past 2**40 any sane cap has long been reached; bounding the power keeps it cheap.
        return min(self.base_delay * (1 << min(extra - 1, 40)), self.max_delay)

    def retry_after(self, key: str, now: datetime) -> float:
        with self._pool.connection() as conn:
            row = conn.execute(
                "SELECT locked_until FROM throttle_failures WHERE key_hash = %s",
                (key_digest(key),),
            ).fetchone()
        locked_until: datetime | None = row[0] if row else None
        if locked_until is None:
            return 0.0
        return max(0.0, (locked_until - now).total_seconds())

    def failure(self, key: str, now: datetime) -> None:
        digest = key_digest(key)
        with self._pool.connection() as conn, conn.transaction():
            # The upsert locks the row until commit, so concurrent failures of one key queue
            # up here and each sees the count the previous one left.
            row = conn.execute(
                "INSERT INTO throttle_failures AS t (key_hash, failures, last_failure_at)"
                " VALUES (%(key)s, 1, %(now)s)"
                " ON CONFLICT (key_hash) DO UPDATE SET"
                "  failures = CASE WHEN t.last_failure_at <= %(forgotten)s"
                "   THEN 1 ELSE t.failures + 1 END,"
                "  locked_until = CASE WHEN t.last_failure_at <= %(forgotten)s"
                "   THEN NULL ELSE t.locked_until END,"
                "  last_failure_at = GREATEST(t.last_failure_at, %(now)s)"
                " RETURNING failures",
                {"key": digest, "now": now, "forgotten": now - self.forget_after},
            ).fetchone()
            assert row is not None  # an upsert with RETURNING always returns its row
            delay = self.delay(int(row[0]))
            if delay:
                # GREATEST: a failure never shortens a lock already in place.
                conn.execute(
                    "UPDATE throttle_failures"
                    " SET locked_until = GREATEST(locked_until, %s) WHERE key_hash = %s",
                    (now + delay, digest),
                )

    def success(self, key: str) -> None:
        with self._pool.connection() as conn:
            conn.execute("DELETE FROM throttle_failures WHERE key_hash = %s", (key_digest(key),))

    def purge(self, before: datetime) -> int:
        """Delete the keys whose failures are forgotten and whose lock is over by ``before``."""
        with self._pool.connection() as conn:
            deleted: int = conn.execute(
                "DELETE FROM throttle_failures WHERE last_failure_at <= %s"
                " AND (locked_until IS NULL OR locked_until <= %s)",
                (before - self.forget_after, before),
            ).rowcount
        return deleted
