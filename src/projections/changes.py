"""Row changes: what a pure projection function returns for one event."""

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Upsert:
    """Insert the row, or overwrite the given columns of the row with the same key."""

    table: str
    key: dict[str, Any]
    values: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Update:
    """Change columns of the row with this key (nothing if there is none)."""

    table: str
    key: dict[str, Any]
    values: dict[str, Any]


@dataclass(frozen=True)
class Delete:
    table: str
    key: dict[str, Any]


Change = Upsert | Update | Delete
