"""Read-your-writes: a client's next read waits until the read models have caught up
with its last write. Writes answer with ``X-Consistency-Token``; reads wait for the
token they are sent, and for the last write this process saw from the same account.

A token is the client's word, so it is checked before anyone waits on it: one that does
not read, names no log, or lies ahead of its log's head is refused at once (400
``invalid_consistency_token``) rather than holding a worker for the whole wait."""

import threading
from collections import OrderedDict

from api.errors import ApiError
from application.base import Position
from application.ports import ReadModelSync

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


INVALID_TOKEN = "invalid_consistency_token"  # noqa: S105 (an error code, not a secret)


def parse_token(value: str | None) -> Position | None:
    """The position a client sent (None without the header); 400 if it does not read."""
    if not value:
        return None
    try:
        position = Position.parse(value)
    except ValueError:
        position = None
    if position is None or not position.application or position.notification_id < 1:
        raise ApiError(
            400, INVALID_TOKEN, f"{HEADER} must be a value an earlier write answered with"
        )
    return position


def check_token(position: Position, sync: ReadModelSync) -> None:
    """400 for a position no write could have answered: an unknown log, or one past its
    head (waiting for it would only run out the clock)."""
    head = sync.head(position.application)
    if head is None or position.notification_id > head:
        raise ApiError(
            400, INVALID_TOKEN, f"{HEADER} is not a position any write has answered with"
        )
