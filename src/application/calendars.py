"""The per-resource-per-day calendars one command reads and changes.

Every command that takes or frees a resource's time (a patient's booking, a move, a
cancellation, a booking of the RIS) collects the ``ResourceDay`` calendars it touched
here, so they are saved in the same atomic write as the appointment or booking.
"""

from collections.abc import Callable
from datetime import date
from uuid import UUID

from domain.appointment import Appointment
from domain.context import Actor
from domain.resource_day import ResourceDay
from domain.schedule import Interval, local_days, zone

Load = Callable[[UUID, date], ResourceDay | None]


class Calendars:
    """The calendars of one command, each loaded (or started) once."""

    def __init__(self, load: Load) -> None:
        self._load = load
        self._days: dict[UUID, ResourceDay] = {}

    def day(self, resource_id: UUID, day: date) -> ResourceDay:
        """The resource's calendar of the local ``day`` (a new one if it has none yet)."""
        calendar_id = ResourceDay.create_id(resource_id, day)
        if calendar_id not in self._days:
            self._days[calendar_id] = self._load(resource_id, day) or ResourceDay(
                resource_id=resource_id, day=day
            )
        return self._days[calendar_id]

    def days_of(self, resource_id: UUID, span: Interval, timezone: str) -> list[ResourceDay]:
        """The resource's calendars of every local day that ``span`` touches."""
        return [
            self.day(resource_id, day) for day in local_days(span.start, span.end, zone(timezone))
        ]

    def free(
        self, resource_id: UUID, span: Interval, timezone: str, holder: str, actor: Actor
    ) -> list[ResourceDay]:
        """Release the time ``holder`` holds on the resource during ``span``."""
        days = self.days_of(resource_id, span, timezone)
        for calendar in days:
            calendar.release(holder, actor.meta())
        return days

    def free_appointment(self, appointment: Appointment, actor: Actor) -> list[ResourceDay]:
        """Release the appointment's time on its resource."""
        return self.free(
            appointment.resource_id,
            appointment.span,
            appointment.timezone,
            str(appointment.id),
            actor,
        )

    def reserve(
        self, resource_id: UUID, span: Interval, timezone: str, holder: str, actor: Actor
    ) -> list[ResourceDay]:
        """Hold ``span`` on the resource for ``holder`` (SlotUnavailableError on a clash)."""
        days = self.days_of(resource_id, span, timezone)
        for calendar in days:
            calendar.reserve(holder, span, actor.meta())
        return days

    def touched(self) -> list[ResourceDay]:
        """Every calendar loaded or started so far, in that order."""
        return list(self._days.values())
