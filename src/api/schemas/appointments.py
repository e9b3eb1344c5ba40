from datetime import datetime
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, Field

from api.schemas.common import Strict


class BookAppointment(Strict):
    appointment_type_id: UUID
    location_id: UUID
    start: AwareDatetime


class RescheduleAppointment(Strict):
    start: AwareDatetime
    location_id: UUID | None = None
    reason: str = Field(default="", max_length=500)


class ChangeAppointment(Strict):
    notes: str = Field(
        max_length=500,
        description="what the centre should know for the exam (access needs, an interpreter, …)",
    )


class CancelAppointment(Strict):
    reason: str = Field(min_length=1, max_length=500)


class AppointmentOut(BaseModel):
    id: str
    status: str
    start: datetime
    end: datetime
    timezone: str
    location_id: str
    resource_id: str
    appointment_type_id: str
    reason: str = ""
    notes: str = ""
    version: int
