"""Read-your-writes: a client's next read waits until the read models have caught up
with its last write. Writes answer with ``X-Consistency-Token``; reads wait for the
token they are sent, and for the last write this process saw from the same account."""

import threading
from collections import OrderedDict

from application.base import Position

HEADER = "X-Consistency-Token"


class LastWrites:
    """The position of each account's latest write in this process (bounded LRU)."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._positions: OrderedDict[str, Position] = OrderedDict()
        self._lock = threading.Lock()
        self._capacity = capacity

    def note(self, account_id: str, position: Position | None) -> None:
        if position is None:
            return
        with self._lock:
            self._positions[account_id] = position
            self._positions.move_to_end(account_id)
            while len(self._positions) > self._capacity:
                self._positions.popitem(last=False)

    def last(self, account_id: str) -> Position | None:
        with self._lock:
            return self._positions.get(account_id)


def parse_token(value: str | None) -> Position | None:
    if not value:
        return None
    try:
        return Position.parse(value)
    except ValueError:
        return None
