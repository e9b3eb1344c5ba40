from datetime import datetime
from typing import Self
from uuid import UUID
from zoneinfo import ZoneInfo

from pydantic import Field, model_validator

from api.schemas.catalog import AddressOut
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


class ExamOut(FromView):
    id: UUID
    name: str
    preparation: str = Field(description="what the patient does before the exam")


class PlaceOut(FromView):
    id: UUID
    name: str
    kind: str = Field(description="`fixed` or `mobile`")
    timezone: str = Field(description="IANA time zone, e.g. America/Chicago")
    timezone_name: str = Field(
        description="the zone's abbreviation at the appointment's time, e.g. CST or CDT"
    )
    phone: str
    address: AddressOut


class SiteOut(FromView):
    name: str
    address: AddressOut


class AppointmentOut(FromView):
    """Start and end are shown in the location's time zone; ``exam``, ``location`` and
    ``site`` say what a person reads (take a ``DescribedAppointment``)."""

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
    exam: ExamOut
    location: PlaceOut
    site: SiteOut | None = Field(
        description="for a mobile unit, the site it visits on the appointment's local day;"
        " null at a fixed location"
    )
    local_start: datetime = Field(description="the start on the location's clock, with offset")
    local_end: datetime = Field(description="the end on the location's clock, with offset")

    @model_validator(mode="after")
    def _local_times(self) -> Self:
        tz = ZoneInfo(self.timezone)
        self.start, self.end = self.start.astimezone(tz), self.end.astimezone(tz)
        return self
