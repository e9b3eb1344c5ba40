"""Location: a fixed imaging centre or a mobile unit whose site changes by date."""

from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.catalog_entry import CatalogEntry
from domain.errors import InvalidValueError
from domain.identifiers import derived_id
from domain.schedule import WEEKDAYS, zone

KINDS = ("fixed", "mobile")


@dataclass(frozen=True)
class Site:
    """Where a mobile unit parks on a given day."""

    name: str
    address: dict[str, str]


class Location(CatalogEntry):
    """A place patients go to; its time zone governs every wall-clock time shown there."""

    label = "a location"

    class ResourceAttached(Aggregate.Event):
        resource_id: UUID
        meta: dict[str, str]

    class ResourceDetached(Aggregate.Event):
        resource_id: UUID
        meta: dict[str, str]

    @staticmethod
    def create_id(code: str) -> UUID:
        return derived_id("location", code)

    @classmethod
    def checked_spec(cls, spec: dict[str, Any]) -> dict[str, Any]:
        check_spec(spec)
        return spec

    def __init__(self, code: str, spec: dict[str, Any], meta: dict[str, str]) -> None:
        super().__init__(code, spec, meta)
        self.resource_ids: list[UUID] = []

    def attach(self, resource_id: UUID, meta: dict[str, str]) -> None:
        """Record that a resource now belongs to this location (once)."""
        if resource_id not in self.resource_ids:
            self._attached(resource_id=resource_id, meta=meta)

    @event(ResourceAttached)
    def _attached(self, resource_id: UUID, meta: dict[str, str]) -> None:
        self.resource_ids.append(resource_id)

    def detach(self, resource_id: UUID, meta: dict[str, str]) -> None:
        """Record that a resource moved away from this location."""
        if resource_id in self.resource_ids:
            self._detached(resource_id=resource_id, meta=meta)

    @event(ResourceDetached)
    def _detached(self, resource_id: UUID, meta: dict[str, str]) -> None:
        self.resource_ids.remove(resource_id)

    @property
    def name(self) -> str:
        return str(self.spec["name"])

    @property
    def kind(self) -> str:
        return str(self.spec["kind"])

    @property
    def timezone(self) -> str:
        return str(self.spec["timezone"])

    def site_on(self, day: date) -> Site | None:
        """Where the location is on ``day``; a mobile unit is nowhere on days it does not visit."""
        return site_on(self.spec, day)


def site_on(spec: dict[str, Any], day: date) -> Site | None:
    """The site of a location spec on a local day (pure, also used by read models)."""
    if spec["kind"] == "fixed":
        return Site(spec["name"], dict(spec["address"]))
    weekday = WEEKDAYS[day.weekday()]
    for visit in spec.get("visits", []):
        if day.isoformat() in visit.get("dates", []) or weekday in visit.get("weekdays", []):
            return Site(visit["site"], dict(visit["address"]))
    return None


def check_spec(spec: dict[str, Any]) -> None:
    """Refuse a location spec that breaks a rule of the domain."""
    for key in ("code", "name", "kind", "timezone", "address"):
        if not spec.get(key):
            raise InvalidValueError(f"location needs a {key}")
    if spec["kind"] not in KINDS:
        raise InvalidValueError(f"location kind must be one of {', '.join(KINDS)}")
    zone(spec["timezone"])
    if spec["kind"] == "mobile" and not spec.get("visits"):
        raise InvalidValueError(f"mobile unit {spec['code']!r} needs at least one visit")
    for visit in spec.get("visits", []):
        if not visit.get("site") or not visit.get("address"):
            raise InvalidValueError("every visit of a mobile unit needs a site and an address")
        for weekday in visit.get("weekdays", []):
            if weekday not in WEEKDAYS:
                raise InvalidValueError(f"unknown weekday {weekday!r}")
