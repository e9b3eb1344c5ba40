"""Saving the attempts of a process's sending threads together.

The deliveries event store takes one table lock per write, so one write for every
attempt that finished meanwhile instead of one each. A thread's task ends only once
its attempts are saved.
"""

import queue
import threading
from collections.abc import Sequence
from uuid import UUID

import structlog

from application.ris.deliveries import Deliveries
from domain.ris.message_delivery import MessageDelivery

log = structlog.get_logger(__name__)

# What one thread hands over: its recorded deliveries, where the answer goes, and the
# event that tells it the answer is there.
Handed = tuple[list[MessageDelivery], list[dict[UUID, bool]], threading.Event]


class AttemptWriter:
    """Saves the attempts that the sending threads of one process record, several in
    one write. ``save_many`` blocks until the attempts are in the event store (True
    each), or lost to another sender of the same attempt, or not saved within ``wait``
    seconds (False: the delivery is handed out again once its lease ends, and a resend
    keeps its MSH-10). ``wait`` plus a send's timeouts stays inside the pump's 30-second
    lease, so a second sender never starts on a version whose first send is still being
    saved."""

    def __init__(self, deliveries: Deliveries, *, most: int = 64, wait: float = 10.0) -> None:
        self.deliveries = deliveries
        self.most = most
        self.wait = wait
        self._queue: queue.Queue[Handed] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def save(self, delivery: MessageDelivery) -> bool:
        return self.save_many([delivery])[0]

    def save_many(self, recorded: Sequence[MessageDelivery]) -> list[bool]:
        """Whether each of ``recorded`` was saved (in the order given)."""
        if not recorded:
            return []
        self._start()
        answer: list[dict[UUID, bool]] = []
        done = threading.Event()
        self._queue.put((list(recorded), answer, done))
        done.wait(self.wait)
        saved = answer[0] if answer else {}
        return [saved.get(delivery.id, False) for delivery in recorded]

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
            count = len(batch[0][0])
            while count < self.most:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
                count += len(batch[-1][0])
            recorded = [delivery for handed, _, _ in batch for delivery in handed]
            try:
                lost = set(self.deliveries.save_attempts(recorded))
            except Exception:
                log.exception("delivery_attempts_not_saved", count=len(recorded))
                lost = {delivery.id for delivery in recorded}  # handed out after the lease
            for handed, answer, done in batch:
                answer.append({delivery.id: delivery.id not in lost for delivery in handed})
                done.set()
