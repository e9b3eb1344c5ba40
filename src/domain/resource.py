"""Resource: a scanner, room or mobile unit with a modality and weekly hours."""

from datetime import date, datetime
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from domain.appointment_type import MODALITIES
from domain.catalog_entry import CatalogEntry
from domain.errors import InvalidValueError
from domain.identifiers import derived_id
from domain.schedule import Interval, opening_windows, parse_weekly_hours


class Resource(CatalogEntry):
    """Something an appointment occupies; two active appointments never overlap on one."""

    label = "a resource"

    @staticmethod
    def create_id(code: str) -> UUID:
        return derived_id("resource", code)

    @classmethod
    def checked_spec(cls, spec: dict[str, Any]) -> dict[str, Any]:
        return normalise_spec(spec)

    @property
    def modality(self) -> str:
        return str(self.spec["modality"])

    @property
    def location_id(self) -> UUID:
        return UUID(self.spec["location_id"])

    def windows_on(self, day: date, tz: ZoneInfo, *, operating: bool = True) -> list[Interval]:
        """UTC windows this resource is open on the local ``day`` (see ``windows_on``)."""
        return windows_on(self.spec, day, tz, operating=operating)


def windows_on(spec: dict[str, Any], day: date, tz: ZoneInfo, *, operating: bool) -> list[Interval]:
    """Open windows of a resource spec on a local day (pure, also used by read models)."""
    closed = not operating or any(c["date"] == day.isoformat() for c in spec.get("closures", []))
    blocks = [
        Interval(datetime.fromisoformat(b["start"]), datetime.fromisoformat(b["end"]))
        for b in spec.get("blocks", [])
    ]
    return opening_windows(day, tz, spec["hours"], closed=closed, blocks=blocks)


def normalise_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """Validate a resource spec and put it in canonical form (blocks as UTC ISO instants).

    Block times arrive either timezone-aware or already converted by the caller.
    """
    for key in ("code", "name", "modality", "location_id", "hours"):
        if not spec.get(key):
            raise InvalidValueError(f"resource needs a {key}")
    if spec["modality"] not in MODALITIES:
        raise InvalidValueError(f"modality must be one of {', '.join(MODALITIES)}")
    closures = []
    for closure in spec.get("closures", []):
        try:
            day = date.fromisoformat(str(closure["date"]))
        except (KeyError, ValueError) as error:
            raise InvalidValueError(f"closure {closure!r} needs a date YYYY-MM-DD") from error
        closures.append({"date": day.isoformat(), "reason": str(closure.get("reason", ""))})
    blocks = []
    for block in spec.get("blocks", []):
        try:
            start, end = (
                datetime.fromisoformat(block["start"]),
                datetime.fromisoformat(block["end"]),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise InvalidValueError(f"block {block!r} needs ISO start and end") from error
        if start.tzinfo is None or end.tzinfo is None:
            raise InvalidValueError(f"block {block!r} needs times with a UTC offset")
        if not start < end:
            raise InvalidValueError(f"block {block!r} must start before it ends")
        blocks.append(
            {"start": start.isoformat(), "end": end.isoformat(), "reason": block.get("reason", "")}
        )
    return {
        "code": str(spec["code"]),
        "name": str(spec["name"]),
        "modality": str(spec["modality"]),
        "location_id": str(spec["location_id"]),
        "hours": parse_weekly_hours(spec["hours"]),
        "closures": sorted(closures, key=lambda c: c["date"]),
        "blocks": sorted(blocks, key=lambda b: b["start"]),
    }
