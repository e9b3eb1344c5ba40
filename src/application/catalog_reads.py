"""The catalog's entries for deciding bookings, read once while the catalog's log stands
still.

A booking reads its exam type, its location and the location's resources. Each read of
the catalog application is an event-store query (its cache fast-forwards every entry
before use) and a deep copy. ``SharedCatalog.current()`` asks the log for its head instead
(one indexed row) and answers from entries read at that head: every event up to the head
has committed (the event store's table lock makes ids commit in order), so an entry read
after the head was read is at least as new as the head. When a staff edit moves the head,
the next call starts again from empty. Edits themselves read through ``Catalog``, never
from here: these entries are shared between threads, read them, never change them.
"""

from collections.abc import Callable
from threading import Lock
from typing import TypeVar
from uuid import UUID

from application.catalog import Catalog
from domain.appointment_type import AppointmentType
from domain.catalog_entry import CatalogEntry
from domain.location import Location
from domain.resource import Resource

E = TypeVar("E", bound=CatalogEntry)


class CatalogAtHead:
    """Catalog entries as of one head of the catalog's log."""

    def __init__(self, catalog: Catalog, head: int) -> None:
        self.head = head
        self._catalog = catalog
        self._entries: dict[UUID, CatalogEntry] = {}

    def location(self, location_id: UUID) -> Location:
        return self._entry(location_id, self._catalog.location)

    def resource(self, resource_id: UUID) -> Resource:
        return self._entry(resource_id, self._catalog.resource)

    def appointment_type(self, appointment_type_id: UUID) -> AppointmentType:
        return self._entry(appointment_type_id, self._catalog.appointment_type)

    def _entry(self, entry_id: UUID, read: Callable[[UUID], E]) -> E:
        entry = self._entries.get(entry_id)
        if entry is None:
            entry = read(entry_id)  # NotFoundError when there is none: not kept
            self._entries[entry_id] = entry  # two threads may both read it: either will do
        return entry  # type: ignore[return-value]  # kept by the reader of its kind


class SharedCatalog:
    """The ``CatalogAtHead`` of the catalog's current head, shared by the threads of a
    process."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog
        self._current: CatalogAtHead | None = None
        self._lock = Lock()

    def current(self) -> CatalogAtHead:
        head = self._catalog.recorder.max_notification_id() or 0
        with self._lock:
            if self._current is None or self._current.head != head:
                self._current = CatalogAtHead(self._catalog, head)
            return self._current
