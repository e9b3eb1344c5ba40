"""What the MLLP listener lets peers hold: connection slots (overall and per address)
and the bytes of unfinished frames across all connections.

Used from the listener's one event loop only, so plain counters suffice.
"""

from collections import Counter
from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    max_connections: int = 200
    max_connections_per_address: int = 20
    max_buffered: int = 64 * 1024 * 1024  # bytes of unfinished frames, all connections


class Admission:
    """Counts open connections and buffered bytes against ``Limits``."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.connections = 0
        self.buffered = 0
        self._per_address: Counter[str] = Counter()

    def admit(self, address: str) -> str | None:
        """Take a connection slot for ``address``; or the reason there is none."""
        if self.connections >= self.limits.max_connections:
            return "too_many_connections"
        if self._per_address[address] >= self.limits.max_connections_per_address:
            return "too_many_connections_from_address"
        self.connections += 1
        self._per_address[address] += 1
        return None

    def release(self, address: str) -> None:
        self.connections -= 1
        self._per_address[address] -= 1
        if self._per_address[address] <= 0:
            del self._per_address[address]

    def rebuffer(self, held: int, holding: int) -> bool:
        """A connection that held ``held`` bytes now holds ``holding``: False, and
        nothing changed, when the growth would pass the total bound."""
        if holding > held and self.buffered + holding - held > self.limits.max_buffered:
            return False
        self.buffered += holding - held
        return True
