"""Writers of one busy calendar take turns instead of racing.

A booking decides its resource from the calendar it read and saves it with the calendar's
next version; when another booking of the same resource-day saved first, the event store
refuses the second save (no double booking, ever) and the loser decides again. Twenty
patients booking free slots of one scanner on one day then collide over and over, and
some run out of tries (503 ``try_again``) although free slots remain.

So: the first try goes straight through (an idle calendar pays nothing); a writer that
collided waits its turn for the calendar (one thread at a time per calendar in this
process, and one process at a time through ``CalendarGate``) and tries again from
there. Writers inside their turn still meet only writers on their first try, so they get
through in a few tries. The event store stays the guarantee; the turns only cut the waste.
"""

import hashlib
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TypeVar

from eventsourcing.persistence import IntegrityError

from application.base import retrying

T = TypeVar("T")
STRIPES = 64
TRIES_IN_TURN = 16


class CalendarGate(ABC):
    """One writer at a time per calendar key across processes (a PostgreSQL advisory
    lock in production)."""

    @abstractmethod
    def turn(self, key: int) -> AbstractContextManager[None]:
        """Hold the key's turn for the duration of the block."""

    def close(self) -> None:  # noqa: B027 - most gates hold nothing
        """Let go of what the gate holds (connections)."""


def calendar_key(*parts: object) -> int:
    """A stable signed 64-bit key for a calendar (location and day, say)."""
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class CalendarTurns:
    """Runs a write, and once it collided, again in the calendar's turn."""

    def __init__(self, gate: CalendarGate | None = None, *, busy: str) -> None:
        self._gate = gate
        self._busy = busy
        self._stripes = [threading.Lock() for _ in range(STRIPES)]

    def close(self) -> None:
        if self._gate is not None:
            self._gate.close()

    def write(self, key: int, attempt: Callable[[], T]) -> T:
        try:
            return attempt()
        except IntegrityError:
            pass  # another writer of this calendar got there first: wait for our turn
        with self._turn(key):
            return retrying(attempt, tries=TRIES_IN_TURN, pause=0.002, busy=self._busy)

    @contextmanager
    def _turn(self, key: int) -> Iterator[None]:
        gate = self._gate.turn(key) if self._gate is not None else nullcontext()
        with self._stripes[key % STRIPES], gate:
            yield
