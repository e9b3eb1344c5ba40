"""The catalog description file (YAML or JSON): its shape, checked with clear errors,
and its translation into the specs the catalog aggregates hold."""

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from domain.errors import InvalidValueError
from domain.location import Location
from domain.schedule import zone


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
    dates: list[date] = []


class LocationEntry(_Strict):
    code: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,40}$")
    name: str
    kind: Literal["fixed", "mobile"] = "fixed"
    timezone: str
    address: Address
    phone: str = ""
    visits: list[Visit] = []


class Closure(_Strict):
    date: date
    reason: str = ""


class Block(_Strict):
    start: datetime
    end: datetime
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
        appointment_types=[e.model_dump(mode="json") for e in document.appointment_types],
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
