"""Stranding: a staff change of the catalog, forced over booked appointments, and the
appointments it left outside their resource's opening times.

It is saved in the catalog's log in the same atomic write as the change itself, so the
appointments to move to ``needs_new_time`` are never lost between the catalog and the
scheduling log (they are two event stores): whoever follows the catalog's log finds
every stranding and can settle it, again and again without harm.
"""

from datetime import datetime
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.appointment import CATALOG_CAUSES
from domain.errors import InvalidValueError


class Stranding(Aggregate):
    """What a forced change stranded. Each booking is kept with the time it held
    (``id``, ``resource_id``, ``start``, ``end`` as ISO text), so that a booking moved
    since is recognised and left alone."""

    class Recorded(Aggregate.Created):
        cause: str
        reason: str
        bookings: list[dict[str, str]]
        meta: dict[str, str]

    @classmethod
    def record(
        cls,
        *,
        id: UUID,
        cause: str,
        reason: str,
        bookings: list[dict[str, str]],
        meta: dict[str, str],
    ) -> "Stranding":
        if cause not in CATALOG_CAUSES:
            raise InvalidValueError(f"unknown kind of catalog change: {cause!r}")
        if not bookings:
            raise InvalidValueError("a stranding lists at least one booking")
        return cls(id=id, cause=cause, reason=reason, bookings=bookings, meta=meta)

    @event(Recorded)
    def __init__(
        self,
        id: UUID,
        cause: str,
        reason: str,
        bookings: list[dict[str, str]],
        meta: dict[str, str],
    ) -> None:
        self.cause = cause
        self.reason = reason
        self.bookings = bookings
        self.meta = meta

    @staticmethod
    def booking(
        appointment_id: UUID, resource_id: UUID, start: datetime, end: datetime
    ) -> dict[str, str]:
        """One stranded booking as the stranding keeps it."""
        return {
            "id": str(appointment_id),
            "resource_id": str(resource_id),
            "start": start.isoformat(),
            "end": end.isoformat(),
        }
