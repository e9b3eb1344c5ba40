"""Waking readers when a read model records tracking, instead of polling for it.

``ReadModelView.apply`` calls ``PROGRESS.advanced(application)`` after its transaction
commits (a projection running in this process) and sends ``NOTIFY read_model_tracking``
inside it (for other processes: the API workers of ``serve --workers N`` hear it through a
``TrackingListener``). ``Projections.wait`` sleeps on ``PROGRESS`` until its tracking
position is reached or its time runs out."""

import threading
import time
from collections import defaultdict
from collections.abc import Callable

import psycopg
import structlog

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


class TrackingListener:
    """LISTENs on ``CHANNEL`` on a connection of its own and advances ``progress`` for each
    notification, for a process that serves reads while another runs the projections.
    Reconnects after a lost connection (waiters re-check on their own meanwhile)."""

    def __init__(self, connect: Callable[[], psycopg.Connection], progress: Progress) -> None:
        self._connect = connect
        self._progress = progress
        self._stop = threading.Event()
        self.listening = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tracking-listener", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with self._connect() as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.listening.set()
                    self._progress.advanced_all()
                    while not self._stop.is_set():
                        # The timeout only lets the thread see stop(): it wakes for a
                        # notification as soon as one arrives.
                        for notify in conn.notifies(timeout=1.0):
                            self._progress.advanced(notify.payload)
            except psycopg.OperationalError as error:
                self.listening.clear()
                log.warning("tracking_listener_disconnected", error=type(error).__name__)
                self._stop.wait(1.0)
