"""Catalog application: locations, resources and appointment types, changed only here."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError
from eventsourcing.utils import get_topic

from application.base import BaseApplication, Position
from application.catalog_file import CatalogSpecs
from application.errors import NotFoundError
from domain.appointment_type import AppointmentType
from domain.catalog_entry import CatalogEntry
from domain.context import Actor
from domain.location import Location
from domain.resource import Resource

E = TypeVar("E", bound=CatalogEntry)
CREATED, REVISED, UNCHANGED = "created", "revised", "unchanged"


@dataclass(frozen=True)
class CatalogChange:
    """What applying a catalog description did."""

    created: int
    revised: int
    unchanged: int
    position: Position | None


class Catalog(BaseApplication):
    """The catalog: every write defines or revises entries, a resource is attached to
    its location (and detached from the one it left) in the same save."""

    name = "catalog"

    def location(self, location_id: UUID) -> Location:
        return self._get(location_id, Location, "location")

    def resource(self, resource_id: UUID) -> Resource:
        return self._get(resource_id, Resource, "resource")

    def appointment_type(self, appointment_type_id: UUID) -> AppointmentType:
        return self._get(appointment_type_id, AppointmentType, "appointment type")

    def is_empty(self) -> bool:
        """Whether nothing was ever defined (the catalog's log holds no event)."""
        return not self.recorder.max_notification_id()

    def codes(self) -> dict[str, list[str]]:
        """The code of every entry defined so far, by kind (``locations``, ``resources``,
        ``appointment_types``), in the order they were defined; read from the log."""
        kinds = {
            get_topic(Location): "locations",
            get_topic(Resource): "resources",
            get_topic(AppointmentType): "appointment_types",
        }
        codes: dict[str, list[str]] = {kind: [] for kind in kinds.values()}
        start, page = 1, 500
        while True:
            batch = self.recorder.select_notifications(start, page)
            for notification in batch:
                event: Any = self.mapper.to_domain_event(notification)
                kind = kinds.get(getattr(event, "originator_topic", ""))
                if isinstance(event, Aggregate.Created) and kind is not None:
                    codes[kind].append(str(getattr(event, "code", "")))
            if len(batch) < page:
                return codes
            start = batch[-1].id + 1

    def location_timezones(self) -> dict[str, str]:
        """Each location's code and time zone."""
        return {
            code: self.location(Location.create_id(code)).timezone
            for code in self.codes()["locations"]
        }

    def _get(self, aggregate_id: UUID, kind: type[E], label: str) -> E:
        aggregate = self.find(aggregate_id, kind)
        if aggregate is None:
            raise NotFoundError(f"no such {label}")
        return aggregate

    def apply(self, specs: CatalogSpecs, actor: Actor) -> CatalogChange:
        """Create or revise every entry of ``specs`` in one atomic save; idempotent.

        Entries not mentioned are left as they are (nothing is deleted here).
        """
        meta = actor.meta()
        changed: dict[UUID, CatalogEntry] = {}
        outcomes: list[str] = []
        for kind, entries in (
            (Location, specs.locations),
            (AppointmentType, specs.appointment_types),
            (Resource, specs.resources),
        ):
            for spec in entries:
                aggregate_id = kind.create_id(spec["code"])
                existing = changed.get(aggregate_id) or self.find(aggregate_id, CatalogEntry)
                outcomes.append(self._enter(kind, existing, spec, meta, changed))
        recordings = self.save(*changed.values())
        return _change(outcomes, self.position_of(recordings))

    def put(
        self,
        kind: type[CatalogEntry],
        spec: dict[str, Any],
        actor: Actor,
        *,
        expected_version: int | None,
        also: Sequence[Aggregate] = (),
    ) -> CatalogChange:
        """Create or revise one entry, provided it is still as the caller last read it:
        at ``expected_version``, or absent when that is None. Otherwise IntegrityError, as
        when a concurrent save wins, so a caller retries both the same way and a change
        decided on what it read is never applied over someone else's. A resource is
        attached to its location (and detached from the one it left). ``also`` are saved in
        the same atomic write (a ``Stranding`` the change makes)."""
        existing = self.find(kind.create_id(spec["code"]), CatalogEntry)
        if (None if existing is None else existing.version) != expected_version:
            raise IntegrityError(f"{spec['code']!r} changed since it was read")
        changed: dict[UUID, CatalogEntry] = {}
        outcome = self._enter(kind, existing, spec, actor.meta(), changed)
        recordings = self.save(*changed.values(), *also)
        return _change([outcome], self.position_of(recordings))

    def _enter(
        self,
        kind: type[CatalogEntry],
        existing: CatalogEntry | None,
        spec: dict[str, Any],
        meta: dict[str, str],
        changed: dict[UUID, CatalogEntry],
    ) -> str:
        """Define the entry or revise ``existing`` (collected in ``changed``, with the
        locations a resource leaves or joins); ``created``, ``revised`` or ``unchanged``."""
        if existing is None:
            aggregate = kind.define(spec, meta)
            outcome = CREATED
        else:
            aggregate = existing
            left = existing.location_id if isinstance(existing, Resource) else None
            outcome = REVISED if aggregate.revise(spec, meta) else UNCHANGED
            if (
                left is not None
                and isinstance(aggregate, Resource)
                and left != aggregate.location_id
            ):
                self._location_for(left, changed).detach(aggregate.id, meta)
        changed[aggregate.id] = aggregate
        if isinstance(aggregate, Resource):
            self._location_for(aggregate.location_id, changed).attach(aggregate.id, meta)
        return outcome

    def _location_for(self, location_id: UUID, changed: dict[UUID, CatalogEntry]) -> Location:
        location = changed.get(location_id)
        if not isinstance(location, Location):
            location = self.location(location_id)
        changed[location_id] = location
        return location


def _change(outcomes: list[str], position: Position | None) -> CatalogChange:
    return CatalogChange(
        created=outcomes.count(CREATED),
        revised=outcomes.count(REVISED),
        unchanged=outcomes.count(UNCHANGED),
        position=position,
    )
