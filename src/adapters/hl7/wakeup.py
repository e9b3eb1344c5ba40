"""Waking the inbound processors instead of polling.

The listener sends ``NOTIFY hl7_inbound`` when it has stored messages (see
``listener.ProcessorWakeup``), and a replay sends it from a trigger (migration 0026).
One thread per process LISTENs and bumps a ``Wakeup``; that process's processors wait
on it when they find nothing to do, and bump it themselves when they finish a message
(that may let the same patient's next message go).
"""

import threading

import psycopg
import structlog

log = structlog.get_logger(__name__)

CHANNEL = "hl7_inbound"


class Wakeup:
    """A counter that goes up whenever there may be new work; waiters wait for it to
    move past the value they saw before they last looked for work, so a wake-up that
    came while they looked is never lost."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._generation = 0

    @property
    def generation(self) -> int:
        with self._changed:
            return self._generation

    def poke(self) -> None:
        with self._changed:
            self._generation += 1
            self._changed.notify_all()

    def wait(self, seen: int, timeout: float) -> bool:
        """Wait until the counter passes ``seen`` or ``timeout`` s pass; whether it did."""
        with self._changed:
            return self._changed.wait_for(lambda: self._generation != seen, timeout)


def listen(url: str, wakeup: Wakeup, stop: threading.Event, *, every: float = 1.0) -> None:
    """LISTEN on ``CHANNEL`` until ``stop`` is set (seen within ``every`` s), poking
    ``wakeup`` for each notification. Each (re)connection pokes too: what was sent
    while nobody listened is then looked for. Poke at the end, so that waiting
    processors see ``stop``."""
    try:
        while not stop.is_set():
            try:
                with psycopg.connect(url, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    wakeup.poke()
                    while not stop.is_set():
                        for _ in conn.notifies(timeout=every):
                            wakeup.poke()
            except psycopg.OperationalError:
                log.warning("hl7_inbound_listen_failed", exc_info=True)
                stop.wait(1.0)
    finally:
        wakeup.poke()
