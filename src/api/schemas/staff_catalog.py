"""Staff catalog requests and responses.

The PUT bodies are the catalog file's own entries (``application.catalog_file``), so an
entry copied from the file is a valid request and unknown fields are refused.
"""

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

from api.schemas.catalog import AppointmentTypeOut, LocationOut
from api.schemas.common import Day, Moment, Strict
from api.schemas.staff import PatientBrief
from application.catalog_file import AppointmentTypeEntry, LocationEntry, ResourceEntry

LocationIn = LocationEntry
ResourceIn = ResourceEntry
AppointmentTypeIn = AppointmentTypeEntry

Outcome = Literal["created", "revised", "unchanged"]


class ClosureIn(Strict):
    date: Day
    reason: str = Field(default="", max_length=200)


class BlockIn(Strict):
    start: Moment = Field(description="local wall-clock time at the location, or with an offset")
    end: Moment = Field(description="local wall-clock time at the location, or with an offset")
    reason: str = Field(default="", max_length=200)


class ClosureOut(BaseModel):
    date: date
    reason: str


class BlockOut(BaseModel):
    start: datetime
    end: datetime
    reason: str


class ResourceOut(BaseModel):
    id: str
    code: str
    name: str
    modality: str
    location: str
    location_id: str
    timezone: str
    hours: dict[str, list[str]]
    closures: list[ClosureOut]
    blocks: list[BlockOut] = Field(
        description="in the location's time zone; DELETE .../blocks/{index} counts from 0 here"
    )


class StrandedAppointmentOut(BaseModel):
    id: str
    start: datetime
    end: datetime
    patient: PatientBrief | None = Field(
        default=None, description="who it is for (none when the record cannot be read)"
    )


class StrandRefusalOut(BaseModel):
    code: Literal["would_strand_appointments"]
    detail: str
    appointments: list[StrandedAppointmentOut]


class LocationChangeOut(BaseModel):
    outcome: Outcome
    location: LocationOut
    stranded: list[StrandedAppointmentOut] = Field(
        description="booked appointments the change left outside opening times (force=true)"
    )
    displaced: list[StrandedAppointmentOut] = Field(
        default_factory=list,
        description="the stranded appointments moved to needs_new_time by this change: their"
        " time is freed and their patients must choose a new one (GET /v1/staff/appointments"
        "?status=needs_new_time lists them)",
    )


class ResourceChangeOut(BaseModel):
    outcome: Outcome
    resource: ResourceOut
    stranded: list[StrandedAppointmentOut] = Field(
        description="booked appointments the change left outside opening times (force=true)"
    )
    displaced: list[StrandedAppointmentOut] = Field(
        default_factory=list,
        description="the stranded appointments moved to needs_new_time by this change: their"
        " time is freed and their patients must choose a new one (GET /v1/staff/appointments"
        "?status=needs_new_time lists them)",
    )


class AppointmentTypeChangeOut(BaseModel):
    outcome: Outcome
    appointment_type: AppointmentTypeOut
