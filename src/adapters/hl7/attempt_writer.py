"""Saving the attempts of a process's sending threads together.

The deliveries event store takes one table lock per write, so one write for every
attempt that finished meanwhile instead of one each. A thread's task ends only once
its attempt is saved.
"""

import queue
import threading

import structlog

from application.ris.deliveries import Deliveries
from domain.ris.message_delivery import MessageDelivery

log = structlog.get_logger(__name__)


class AttemptWriter:
    """Saves the attempts that the sending threads of one process record, several in
    one write. ``save`` blocks until the attempt is in the event store (True), or lost
    to another sender of the same attempt, or not saved within ``wait`` seconds (False:
    the delivery is handed out again once its lease ends, and a resend keeps its MSH-10).
    ``wait`` plus a send's timeouts stays inside the pump's 30-second lease, so a second
    sender never starts on a version whose first send is still being saved."""

    def __init__(self, deliveries: Deliveries, *, most: int = 64, wait: float = 10.0) -> None:
        self.deliveries = deliveries
        self.most = most
        self.wait = wait
        self._queue: queue.Queue[tuple[MessageDelivery, list[bool], threading.Event]] = (
            queue.Queue()
        )
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def save(self, delivery: MessageDelivery) -> bool:
        self._start()
        outcome: list[bool] = []
        done = threading.Event()
        self._queue.put((delivery, outcome, done))
        done.wait(self.wait)
        return bool(outcome and outcome[0])

    def _start(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="attempt-writer", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < self.most:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                lost = set(self.deliveries.save_attempts([item[0] for item in batch]))
            except Exception:
                log.exception("delivery_attempts_not_saved", count=len(batch))
                lost = {item[0].id for item in batch}  # handed out again after the lease
            for delivery, outcome, done in batch:
                outcome.append(delivery.id not in lost)
                done.set()
