"""Waking readers when a read model records tracking, instead of polling for it.

``ReadModelView.apply`` calls ``PROGRESS.advanced(application)`` after its transaction
commits (a projection running in this process) and sends ``NOTIFY read_model_tracking``
inside it (for other processes: the API workers of ``serve --workers N`` hear it through a
``TrackingListener``). ``Projections.wait`` sleeps on ``PROGRESS`` until its tracking
position is reached or its time runs out."""

import os
import select
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence

import psycopg
import structlog
from psycopg.sql import SQL, Identifier

log = structlog.get_logger(__name__)

CHANNEL = "read_model_tracking"


class Progress:
    """A generation count per application name, under one Condition: a waiter notes the
    generation, checks the read model, and sleeps until the generation moves on; a write
    between its check and its sleep moves the generation, so no wake-up is lost."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._generations: defaultdict[str, int] = defaultdict(int)

    def advanced(self, application_name: str) -> None:
        """A read model fed by ``application_name`` recorded more tracking."""
        with self._condition:
            self._generations[application_name] += 1
            self._condition.notify_all()

    def generation(self, application_name: str) -> int:
        """How many times ``application_name``'s read models have advanced here."""
        with self._condition:
            return self._generations[application_name]

    def advanced_all(self) -> None:
        """Something may have been missed (a listener reconnected): wake every waiter."""
        with self._condition:
            for name in list(self._generations):
                self._generations[name] += 1
            self._condition.notify_all()

    def wait_for(
        self,
        application_name: str,
        done: Callable[[], bool],
        timeout: float,
        recheck: float | None = None,
    ) -> bool:
        """Call ``done`` (outside the lock: it may query the database) now and after each
        advance of ``application_name``, at most every ``recheck`` seconds without one,
        until it is true (True) or ``timeout`` seconds have passed (False)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._condition:
                seen = self._generations[application_name]
            if done():
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            pause = remaining if recheck is None else min(remaining, recheck)
            with self._condition:
                self._condition.wait_for(self._moved_on(application_name, seen), pause)

    def _moved_on(self, application_name: str, seen: int) -> Callable[[], bool]:
        return lambda: self._generations[application_name] != seen


PROGRESS = Progress()


class Listener:
    """LISTENs on ``channels`` on a connection of its own and calls ``heard(channel,
    payload)`` for each notification; ``connected()`` after each (re)connect, since a
    notification sent while it was not listening is lost. Sleeps in ``select`` on the
    connection's socket and a pipe of its own, with no timeout: an idle process wakes for
    nothing (psycopg's ``notifies()`` wakes ten times a second to look for Ctrl-C)."""

    def __init__(
        self,
        connect: Callable[[], psycopg.Connection],
        channels: Sequence[str],
        heard: Callable[[str, str], None],
        connected: Callable[[], None] = lambda: None,
        name: str = "listener",
    ) -> None:
        self._connect = connect
        self._channels = list(channels)
        self._heard = heard
        self._connected = connected
        self._stop = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        self.listening = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        os.write(self._wake_w, b"x")
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            os.close(self._wake_r)
            os.close(self._wake_w)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with self._connect() as conn:
                    for channel in self._channels:
                        conn.execute(SQL("LISTEN {}").format(Identifier(channel)))
                    self.listening.set()
                    self._connected()
                    self._listen(conn)
            except psycopg.OperationalError as error:
                self.listening.clear()
                log.warning(
                    "listener_disconnected", listener=self._thread.name, error=type(error).__name__
                )
                self._stop.wait(1.0)

    def _listen(self, conn: psycopg.Connection) -> None:
        while not self._stop.is_set():
            # Whatever has arrived (a closed connection raises OperationalError here),
            # then sleep until more does.
            for notify in conn.notifies(timeout=0):
                self._heard(notify.channel, notify.payload)
            select.select([conn.fileno(), self._wake_r], [], [])


class TrackingListener(Listener):
    """Advances ``progress`` for each notification on ``CHANNEL``, for a process that
    serves reads while another runs the projections (waiters re-check on their own while
    it reconnects)."""

    def __init__(self, connect: Callable[[], psycopg.Connection], progress: Progress) -> None:
        super().__init__(
            connect,
            [CHANNEL],
            lambda _, payload: progress.advanced(payload),
            progress.advanced_all,
            name="tracking-listener",
        )
