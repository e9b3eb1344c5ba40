"""Handing leased deliveries straight to this process's sending threads: HL7 deliveries
to the ``Sender``'s, patient notices (e-mail, SMS, push) to the ``ChannelWorker``'s, each
kind through a hand-off of its own.

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
pump may hand that version out again, and only the holder of a lease should send. A
thread takes up to ``batch`` hand-outs at once (read in one query, their attempts saved
in one write: ``Sender.send_many``, ``ChannelWorker.send_many``) and sends none of them
past that half-lease.
"""

import queue
import threading
import time
from collections.abc import Sequence
from typing import Protocol
from uuid import UUID

import structlog

log = structlog.get_logger(__name__)

Item = tuple[UUID, int, float]  # a hand-out: delivery id, version, when it was queued


class SendMany(Protocol):
    """Sends hand-outs (delivery id, version), none after ``until`` (monotonic)."""

    def __call__(self, handed: Sequence[tuple[UUID, int]], *, until: float | None) -> object:
        """What happened to each (logged by the sender)."""


class LocalHandoff:
    """A bounded in-process queue of (delivery id, version) and the threads that send
    them. ``dispatch`` is the pump's dispatch; ``wanting`` is set whenever the queue has
    drained to half its size, so the pump can lease more at once instead of on its next
    round."""

    def __init__(
        self,
        send: SendMany,
        threads: int,
        *,
        lease: float,
        depth: int = 32,
        batch: int = 16,
        name: str = "hl7-send",
    ) -> None:
        if threads < 1:
            raise ValueError("a hand-off needs at least one sending thread")
        self.send = send
        self.threads = threads
        self.batch = batch
        self.name = name  # its threads': "{name}-{number}"
        self.size = threads * depth
        self.patience = lease / 2  # seconds a hand-out may wait for a thread
        self.wanting = threading.Event()
        self._queue: queue.Queue[Item | None] = queue.Queue()
        self._workers: list[threading.Thread] = []

    def start(self) -> "LocalHandoff":
        for number in range(self.threads):
            thread = threading.Thread(target=self._run, name=f"{self.name}-{number}", daemon=True)
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
        while (taken := self._take()) is not None:
            now = time.monotonic()
            fresh = [item for item in taken if now - item[2] < self.patience]
            for delivery_id, _, handed_at in taken:
                if now - handed_at >= self.patience:
                    log.warning("delivery_handout_expired", delivery_id=str(delivery_id))
            try:
                if fresh:
                    until = min(handed_at for _, _, handed_at in fresh) + self.patience
                    self.send([(item[0], item[1]) for item in fresh], until=until)
            except Exception:  # logged; the lease hands them out again
                log.exception("delivery_send_failed", count=len(fresh))
            if self._queue.qsize() <= self.size // 2:
                self.wanting.set()

    def _take(self) -> list[Item] | None:
        """The next hand-out and up to ``batch - 1`` more already queued; None: stop."""
        first = self._queue.get()
        if first is None:
            return None
        taken = [first]
        while len(taken) < self.batch:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                self._queue.put(None)  # stop after this batch
                break
            taken.append(item)
        return taken
