from datetime import datetime
from typing import Self
from uuid import UUID
from zoneinfo import ZoneInfo

from pydantic import Field, model_validator

from api.schemas.common import FromView, Instant, Strict


class BookAppointment(Strict):
    appointment_type_id: UUID
    location_id: UUID
    start: Instant
    order_id: UUID | None = Field(
        default=None,
        description="one of my orders waiting to be booked (GET /v1/me/orders): the exam"
        " type must be one of its appointment_type_ids; the order becomes scheduled",
    )


class RescheduleAppointment(Strict):
    start: Instant
    location_id: UUID | None = None
    reason: str = Field(default="", max_length=500)


class ChangeAppointment(Strict):
    notes: str = Field(
        max_length=500,
        description="what the centre should know for the exam (access needs, an interpreter, …)",
    )


class CancelAppointment(Strict):
    reason: str = Field(min_length=1, max_length=500)


class AppointmentOut(FromView):
    """Start and end are shown in the location's time zone."""

    id: UUID
    status: str
    start: datetime
    end: datetime
    timezone: str
    location_id: UUID
    resource_id: UUID
    appointment_type_id: UUID
    reason: str = ""
    notes: str = ""
    version: int

    @model_validator(mode="after")
    def _local_times(self) -> Self:
        tz = ZoneInfo(self.timezone)
        self.start, self.end = self.start.astimezone(tz), self.end.astimezone(tz)
        return self
