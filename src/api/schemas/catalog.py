from pydantic import BaseModel, Field

from domain.appointment_type import DEFAULT_BOOKING_HORIZON_DAYS


class AddressOut(BaseModel):
    line1: str
    line2: str = ""
    city: str
    region: str = ""
    postal_code: str = ""
    country: str = ""


class VisitOut(BaseModel):
    site: str
    address: AddressOut
    weekdays: list[str] = []
    dates: list[str] = []


class LocationOut(BaseModel):
    id: str
    code: str
    name: str
    kind: str
    timezone: str
    address: AddressOut
    phone: str = ""
    visits: list[VisitOut] = []


class AppointmentTypeOut(BaseModel):
    id: str
    code: str
    name: str
    modality: str
    cpt: str
    duration_minutes: int
    preparation: str = ""
    booking_horizon_days: int = Field(
        default=DEFAULT_BOOKING_HORIZON_DAYS, description="how many days ahead it can be booked"
    )
    procedure_codes: list[str] = Field(
        default=[], description="the RIS procedure codes it performs (orders it can be booked for)"
    )
