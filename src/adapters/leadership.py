"""One leader among the instances on one database, for the work that must run once: the
read models' followers and the outbound policies track their position in the database,
and two instances following the same log would race for every position.

Each instance asks PostgreSQL for a session advisory lock on a connection of its own.
The one that gets it runs the work (``start``) until it stops or loses the connection;
the others ask again every ``retry`` seconds. The lock goes with the connection: when
the leader's process dies, or its connection is cut, PostgreSQL releases it and the next
instance to ask takes over. A leader that finds its connection gone stops the work
(``stop``) before it asks again, so two leaders overlap for at most ``retry`` seconds,
and the tracking records (unique per position) keep even that overlap exactly-once.
"""

import contextlib
import hashlib
import threading
from collections.abc import Callable

import psycopg
import structlog

log = structlog.get_logger("leadership")

RETRY_SECONDS = 5.0


def lock_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for ``name``."""
    digest = hashlib.sha256(f"imaging-bridge/leader/{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class Leadership:
    """Runs ``start`` while this instance leads ``name``; ``stop`` when it no longer does."""

    def __init__(
        self,
        url: str,
        name: str,
        start: Callable[[], object],
        stop: Callable[[], object],
        *,
        retry: float = RETRY_SECONDS,
    ) -> None:
        self.url = url
        self.name = name
        self._start = start
        self._stop_work = stop
        self.retry = retry
        self.leading = threading.Event()
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: psycopg.Connection | None = None

    def begin(self) -> "Leadership":
        """Lead at once when no other instance does (the work started when this returns),
        else keep asking in the background."""
        self._attempt()
        self._thread = threading.Thread(target=self._run, name=f"leader-{self.name}", daemon=True)
        self._thread.start()
        return self

    def end(self) -> None:
        """Stop the work if leading, and let another instance lead."""
        self._closing.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self._resign()

    def _run(self) -> None:
        while not self._closing.wait(self.retry):
            if self.leading.is_set():
                if not self._still_connected():
                    log.warning("leadership_lost", name=self.name)
                    self._resign()
            else:
                try:
                    self._attempt()
                except Exception:  # the work failed to start: ask again later
                    log.exception("leadership_start_failed", name=self.name)

    def _attempt(self) -> None:
        try:
            conn = psycopg.connect(
                self.url, autocommit=True, application_name=f"leader:{self.name}"
            )
        except psycopg.Error as error:
            log.warning("leadership_unreachable", name=self.name, error=str(error))
            return
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (lock_key(self.name),)).fetchone()
        if not row or not row[0]:
            conn.close()
            return
        self._conn = conn
        log.info("leadership_taken", name=self.name)
        try:
            self._start()
        except BaseException:
            self._conn = None
            conn.close()
            raise
        self.leading.set()

    def _still_connected(self) -> bool:
        conn = self._conn
        if conn is None:
            return False
        try:
            conn.execute("SELECT 1")
        except psycopg.Error:
            return False
        return True

    def _resign(self) -> None:
        was_leading = self.leading.is_set()
        self.leading.clear()
        if was_leading:
            self._stop_work()
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                conn.close()
