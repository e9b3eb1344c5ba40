"""Row changes: what a pure projection function returns for one event."""

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Lookup:
    """A column value read from another read-model row as the change is applied (e.g. a
    result's patient, from its order's row): ``column`` of the ``table`` row whose ``id``
    is ``id``. The row is one the same projection wrote earlier."""

    table: str
    column: str
    id: Any


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
