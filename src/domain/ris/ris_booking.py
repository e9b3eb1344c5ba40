"""RisBooking: a booking the RIS made itself, occupying one of our resources.

Its identity derives from the RIS's filler appointment id, so it remembers where it
sits (to free that time when the RIS moves or cancels it). Saved together with the
ResourceDay calendars it reserves or releases.
"""

from datetime import datetime
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.identifiers import derived_id
from domain.schedule import Interval

OCCUPYING = "occupying"
RELEASED = "released"


class RisBooking(Aggregate):
    """The RIS's appointment ``filler_id`` on ``resource_id`` during [start, end)."""

    class Made(Aggregate.Created):
        filler_id: str
        resource_id: UUID
        start: datetime
        end: datetime
        timezone: str
        message_id: str
        meta: dict[str, str]

    class Moved(Aggregate.Event):
        resource_id: UUID
        start: datetime
        end: datetime
        timezone: str
        message_id: str
        meta: dict[str, str]

    class Released(Aggregate.Event):
        reason: str
        message_id: str
        meta: dict[str, str]

    @staticmethod
    def create_id(filler_id: str) -> UUID:
        return derived_id("ris-booking", filler_id)

    @staticmethod
    def holder_of(filler_id: str) -> str:
        """The key a booking of the RIS holds calendar time under."""
        return f"ris:{filler_id}"

    @property
    def holder(self) -> str:
        return self.holder_of(self.filler_id)

    @event(Made)
    def __init__(
        self,
        filler_id: str,
        resource_id: UUID,
        start: datetime,
        end: datetime,
        timezone: str,
        message_id: str,
        meta: dict[str, str],
    ) -> None:
        self.filler_id = filler_id
        self.resource_id = resource_id
        self.start = start
        self.end = end
        self.timezone = timezone
        self.status = OCCUPYING
        self.applied: set[str] = {message_id}

    @property
    def span(self) -> Interval:
        return Interval(self.start, self.end)

    def has_applied(self, message_id: str) -> bool:
        return message_id in self.applied

    def move(
        self,
        *,
        resource_id: UUID,
        span: Interval,
        timezone: str,
        message_id: str,
        meta: dict[str, str],
    ) -> None:
        """The RIS moved (or re-sent) its booking; it occupies time again if released."""
        if self.has_applied(message_id):
            return
        self._moved(
            resource_id=resource_id,
            start=span.start,
            end=span.end,
            timezone=timezone,
            message_id=message_id,
            meta=meta,
        )

    @event(Moved)
    def _moved(
        self,
        resource_id: UUID,
        start: datetime,
        end: datetime,
        timezone: str,
        message_id: str,
        meta: dict[str, str],
    ) -> None:
        self.resource_id = resource_id
        self.start = start
        self.end = end
        self.timezone = timezone
        self.status = OCCUPYING
        self.applied.add(message_id)

    def release(self, *, reason: str, message_id: str, meta: dict[str, str]) -> None:
        """The RIS cancelled it (or the patient did not come): its time is free."""
        if self.has_applied(message_id) or self.status == RELEASED:
            return
        self._released(reason=reason, message_id=message_id, meta=meta)

    @event(Released)
    def _released(self, reason: str, message_id: str, meta: dict[str, str]) -> None:
        self.status = RELEASED
        self.applied.add(message_id)
