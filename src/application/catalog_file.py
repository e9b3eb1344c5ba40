"""The catalog description file (YAML or JSON): its shape, checked with clear errors,
and its translation into the specs the catalog aggregates hold."""

from collections.abc import Mapping
from datetime import date, datetime
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import PydanticCustomError

from domain.appointment_type import (
    DEFAULT_BOOKING_HORIZON_DAYS,
    MAX_BOOKING_HORIZON_DAYS,
    MAX_PROCEDURE_CODE_LENGTH,
    MAX_PROCEDURE_CODES,
)
from domain.errors import InvalidValueError
from domain.location import Location
from domain.schedule import out_of_range_problem, zone

D = TypeVar("D", bound=date)


def _in_range(value: D) -> D:
    problem = out_of_range_problem(value)
    if problem is not None:
        raise PydanticCustomError("out_of_range", problem)
    return value


Day = Annotated[date, AfterValidator(_in_range)]
Moment = Annotated[datetime, AfterValidator(_in_range)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Address(_Strict):
    line1: str
    line2: str = ""
    city: str
    region: str = ""
    postal_code: str = ""
    country: str = "US"


class Visit(_Strict):
    site: str
    address: Address
    weekdays: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = []
    dates: list[Day] = []


class LocationEntry(_Strict):
    code: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,40}$")
    name: str
    kind: Literal["fixed", "mobile"] = "fixed"
    timezone: str
    address: Address
    phone: str = ""
    visits: list[Visit] = []


class Closure(_Strict):
    date: Day
    reason: str = ""


class Block(_Strict):
    start: Moment
    end: Moment
    reason: str = ""


class ResourceEntry(_Strict):
    code: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,40}$")
    name: str
    modality: str
    location: str
    hours: dict[str, list[str]]
    closures: list[Closure] = []
    blocks: list[Block] = []


class AppointmentTypeEntry(_Strict):
    code: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,40}$")
    name: str
    modality: str
    cpt: str
    duration_minutes: int
    preparation: str = ""
    booking_horizon_days: int | None = Field(
        default=None,
        ge=1,
        le=MAX_BOOKING_HORIZON_DAYS,
        description="how many days ahead patients may book it; unset:"
        f" {DEFAULT_BOOKING_HORIZON_DAYS}",
    )
    procedure_codes: (
        list[Annotated[str, Field(min_length=1, max_length=MAX_PROCEDURE_CODE_LENGTH)]] | None
    ) = Field(
        default=None,
        max_length=MAX_PROCEDURE_CODES,
        description="the RIS's procedure codes (OBR-4.1 of its orders) this exam performs:"
        " a patient with such an order may book it; unset: none",
    )
    reminder_offsets: str | None = Field(
        default=None,
        max_length=100,
        description="reminders before this exam, e.g. 72h,24h,2h (empty: none); unset:"
        " the centre's REMINDER_OFFSETS",
    )


class CatalogFile(_Strict):
    locations: list[LocationEntry] = []
    resources: list[ResourceEntry] = []
    appointment_types: list[AppointmentTypeEntry] = []


class CatalogSpecs(BaseModel):
    locations: list[dict[str, Any]]
    resources: list[dict[str, Any]]
    appointment_types: list[dict[str, Any]]


def parse_catalog(raw: object, known_locations: Mapping[str, str] | None = None) -> CatalogSpecs:
    """Check a decoded catalog document and turn it into aggregate specs. A resource may
    name a location of the document or one of ``known_locations`` (code -> time zone:
    those already in the catalog).

    Raises InvalidValueError naming the first problem found (with its path).
    """
    try:
        document = CatalogFile.model_validate(raw)
    except ValidationError as error:
        raise InvalidValueError(_problem(error)) from error
    _check_unique(document)
    timezones = {**(known_locations or {})}
    timezones.update({entry.code: entry.timezone for entry in document.locations})
    resources = []
    for entry in document.resources:
        if entry.location not in timezones:
            raise InvalidValueError(
                f"resource {entry.code!r} names unknown location {entry.location!r}"
            )
        tz = zone(timezones[entry.location])
        resources.append(
            {
                "code": entry.code,
                "name": entry.name,
                "modality": entry.modality,
                "location_id": str(Location.create_id(entry.location)),
                "hours": entry.hours,
                "closures": [c.model_dump(mode="json") for c in entry.closures],
                "blocks": [
                    {
                        "start": _aware(b.start, tz).isoformat(),
                        "end": _aware(b.end, tz).isoformat(),
                        "reason": b.reason,
                    }
                    for b in entry.blocks
                ],
            }
        )
    return CatalogSpecs(
        locations=[_location_spec(entry) for entry in document.locations],
        resources=resources,
        # An entry without a horizon or procedure codes keeps the spec it always had (so
        # that a catalog written before they existed loads unchanged, with no new revision).
        appointment_types=[
            e.model_dump(mode="json", exclude_none=True) for e in document.appointment_types
        ],
    )


def _problem(error: ValidationError) -> str:
    """The first problem, with where it is (``locations.0.name``); an unknown key named."""
    first = error.errors()[0]
    loc = [str(part) for part in first["loc"]]
    if first["type"] == "extra_forbidden" and loc:
        where = ".".join(loc[:-1]) or "top level"
        return f"catalog {where}: unknown key {loc[-1]!r}"
    return f"catalog {'.'.join(loc)}: {first['msg']}"


def _location_spec(entry: LocationEntry) -> dict[str, Any]:
    spec = entry.model_dump(mode="json")
    if entry.kind == "fixed":
        spec.pop("visits")
    return spec


def _aware(moment: datetime, tz: Any) -> datetime:
    """A block written in local wall-clock time is in the location's time zone."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=tz)


def _check_unique(document: CatalogFile) -> None:
    for kind, entries in (
        ("location", document.locations),
        ("resource", document.resources),
        ("appointment type", document.appointment_types),
    ):
        codes = [entry.code for entry in entries]
        for code in codes:
            if codes.count(code) > 1:
                raise InvalidValueError(f"{kind} code {code!r} appears more than once")
