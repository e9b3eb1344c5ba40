"""Handing leased deliveries straight to this process's sending threads.

When one process both pumps and sends (``serve``, ``imaging-bridge worker``), a trip
through the task queue costs three transactions per message (enqueue, claim, and an
acknowledgement that dramatiq makes one at a time on its consumer thread) only to reach a
thread of the same process. The pump's lease (``delivery_dispatch``, one row per handed-out
version) already makes a hand-out exclusive across processes and hands a version out again
once its lease ends, so an in-memory queue loses nothing a crash could not lose from the
broker: what a dead process held is handed out again after the lease, and a second sender
of one version loses on the version (``Sender``).

The queue is kept short (``depth`` per thread; the pump asks ``room()`` before it leases),
and a hand-out that waited in it for half its lease is dropped unsent: by then another
pump may hand that version out again, and only the holder of a lease should send.
"""

import queue
import threading
import time
from collections.abc import Callable
from uuid import UUID

import structlog

log = structlog.get_logger(__name__)

Send = Callable[[UUID, int], object]


class LocalHandoff:
    """A bounded in-process queue of (delivery id, version) and the threads that send
    them. ``dispatch`` is the pump's dispatch; ``wanting`` is set whenever the queue has
    drained to half its size, so the pump can lease more at once instead of on its next
    round."""

    def __init__(self, send: Send, threads: int, *, lease: float, depth: int = 32) -> None:
        if threads < 1:
            raise ValueError("a hand-off needs at least one sending thread")
        self.send = send
        self.threads = threads
        self.size = threads * depth
        self.patience = lease / 2  # seconds a hand-out may wait for a thread
        self.wanting = threading.Event()
        self._queue: queue.Queue[tuple[UUID, int, float] | None] = queue.Queue()
        self._workers: list[threading.Thread] = []

    def start(self) -> "LocalHandoff":
        for number in range(self.threads):
            thread = threading.Thread(target=self._run, name=f"hl7-send-{number}", daemon=True)
            thread.start()
            self._workers.append(thread)
        return self

    def room(self) -> int:
        """How many more hand-outs the queue takes now."""
        return max(0, self.size - self._queue.qsize())

    def dispatch(self, handed_out: list[tuple[UUID, int]]) -> None:
        now = time.monotonic()
        for delivery_id, version in handed_out:
            self._queue.put((delivery_id, version, now))

    def stop(self, timeout: float = 10.0) -> None:
        """Let each thread finish its send; what is still queued is dropped (its lease
        ends and some pump hands it out again)."""
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        for _ in self._workers:
            self._queue.put(None)
        for thread in self._workers:
            thread.join(timeout=timeout)
        self._workers.clear()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            delivery_id, version, handed_at = item
            try:
                if time.monotonic() - handed_at < self.patience:
                    self.send(delivery_id, version)
                else:
                    log.warning("delivery_handout_expired", delivery_id=str(delivery_id))
            except Exception:  # logged; the lease hands it out again
                log.exception("delivery_send_failed", delivery_id=str(delivery_id))
            if self._queue.qsize() <= self.size // 2:
                self.wanting.set()
