"""An event-store recorder whose subscriptions sleep until their log grows.

The eventsourcing library's ``PostgresSubscription`` LISTENs in a loop of
``notifies(timeout=0.1)`` (and psycopg wakes every 0.1 s inside it too), so every runner
of the library (the outbound policies) costs an idle process some 10-20 wake-ups a second.
``QuietSubscription`` sleeps in ``select`` on the LISTEN connection's socket and a pipe
that ``stop()`` writes to, with no timeout. ``bootstrap`` names the recorder in
``APPLICATION_RECORDER_TOPIC``, the library's own setting for it, so every application a
process makes (and every library runner's upstream application) uses it.
"""

import contextlib
import os
import select
import threading
from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import Subscription
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresSubscription
from psycopg.sql import SQL, Identifier

TOPIC = "adapters.quiet_subscription:QuietApplicationRecorder"


class QuietSubscription(PostgresSubscription):
    """The library's subscription, listening without a timeout (see the module)."""

    def __init__(
        self,
        recorder: PostgresApplicationRecorder,
        gt: int | None = None,
        topics: Sequence[str] = (),
    ) -> None:
        self._wake_r, self._wake_w = os.pipe()
        self._pipe_lock = threading.Lock()
        self._pipe_open = True
        super().__init__(recorder=recorder, gt=gt, topics=topics)

    def stop(self) -> None:
        super().stop()
        self._poke()

    def __exit__(self, *args: object, **kwargs: Any) -> None:
        try:
            super().__exit__(*args, **kwargs)  # joins the listening thread
        finally:
            with self._pipe_lock:
                if self._pipe_open:
                    self._pipe_open = False
                    os.close(self._wake_r)
                    os.close(self._wake_w)

    def _poke(self) -> None:
        with self._pipe_lock, contextlib.suppress(OSError):
            if getattr(self, "_pipe_open", False):
                os.write(self._wake_w, b"x")

    def _listen(self) -> None:
        try:
            with self._recorder.datastore.get_connection() as conn:
                conn.execute(SQL("LISTEN {0}").format(Identifier(self._recorder.channel_name)))
                while not self._has_been_stopped and not self._thread_error:
                    # Whatever has arrived, then sleep until more does or stop() pokes.
                    if any(True for _ in conn.notifies(timeout=0)):
                        self._has_been_notified.set()
                    select.select([conn.fileno(), self._wake_r], [], [])
        # As the library does: any error ends the subscription, which its runner reports.
        except BaseException as error:  # noqa: BLE001 - handed to the runner, as the library does
            if self._thread_error is None:
                self._thread_error = error
            self.stop()


class QuietApplicationRecorder(PostgresApplicationRecorder):
    """The library's PostgreSQL application recorder, with quiet subscriptions."""

    def subscribe(self, gt: int | None = None, topics: Sequence[str] = ()) -> Subscription[Any]:
        return QuietSubscription(recorder=self, gt=gt, topics=topics)
