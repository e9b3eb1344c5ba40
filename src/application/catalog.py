"""Catalog application: locations, resources and appointment types, changed only here."""

from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError
from eventsourcing.utils import get_topic

from application.base import BaseApplication, Position
from application.catalog_file import CatalogSpecs
from application.errors import NotFoundError
from domain.appointment_type import AppointmentType
from domain.context import Actor
from domain.location import Location
from domain.resource import Resource

A = TypeVar("A")


@dataclass(frozen=True)
class CatalogChange:
    """What applying a catalog description did."""

    created: int
    revised: int
    unchanged: int
    position: Position | None


class Catalog(BaseApplication):
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

    def _get(self, aggregate_id: UUID, kind: type[A], label: str) -> A:
        try:
            aggregate: Any = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            raise NotFoundError(f"no such {label}") from None
        if not isinstance(aggregate, kind):
            raise NotFoundError(f"no such {label}")
        return aggregate

    def apply(self, specs: CatalogSpecs, actor: Actor) -> CatalogChange:
        """Create or revise every entry of ``specs`` in one atomic save; idempotent.

        Entries not mentioned are left as they are (nothing is deleted here).
        """
        meta = actor.meta()
        changed: dict[UUID, Any] = {}
        created = revised = unchanged = 0

        def define(kind: Any, spec: dict[str, Any]) -> Any:
            nonlocal created, revised, unchanged
            aggregate_id = kind.create_id(spec["code"])
            existing = changed.get(aggregate_id) or self._maybe(aggregate_id)
            if existing is None:
                aggregate = kind.define(spec, meta)
                created += 1
            else:
                aggregate = existing
                if aggregate.revise(spec, meta):
                    revised += 1
                else:
                    unchanged += 1
            changed[aggregate_id] = aggregate
            return aggregate

        for spec in specs.locations:
            define(Location, spec)
        for spec in specs.appointment_types:
            define(AppointmentType, spec)
        for spec in specs.resources:
            previous = self._maybe(Resource.create_id(spec["code"]))
            resource = define(Resource, spec)
            if previous is not None and previous.location_id != resource.location_id:
                self._location_for(previous.location_id, changed).detach(resource.id, meta)
            self._location_for(resource.location_id, changed).attach(resource.id, meta)

        recordings = self.save(*changed.values())
        return CatalogChange(created, revised, unchanged, self.position_of(recordings))

    def _location_for(self, location_id: UUID, changed: dict[UUID, Any]) -> Location:
        location = changed.get(location_id) or self.location(location_id)
        changed[location_id] = location
        return location

    def _maybe(self, aggregate_id: UUID) -> Any:
        try:
            return self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None

    def put(
        self,
        kind: type[Location] | type[Resource] | type[AppointmentType],
        spec: dict[str, Any],
        actor: Actor,
        *,
        expected_version: int | None,
    ) -> CatalogChange:
        """Create or revise one entry, provided it is still as the caller last read it:
        at ``expected_version``, or absent when that is None. Otherwise IntegrityError, as
        when a concurrent save wins, so a caller retries both the same way and a change
        decided on what it read is never applied over someone else's. A resource is
        attached to its location (and detached from the one it left)."""
        meta = actor.meta()
        existing = self._maybe(kind.create_id(spec["code"]))
        if (None if existing is None else existing.version) != expected_version:
            raise IntegrityError(f"{spec['code']!r} changed since it was read")
        changed: dict[UUID, Any] = {}
        if existing is None:
            aggregate: Any = kind.define(spec, meta)
            created, revised = 1, 0
        else:
            aggregate = existing
            left = existing.location_id if isinstance(existing, Resource) else None
            created, revised = 0, int(aggregate.revise(spec, meta))
            if left is not None and left != aggregate.location_id:
                self._location_for(left, changed).detach(aggregate.id, meta)
        changed[aggregate.id] = aggregate
        if isinstance(aggregate, Resource):
            self._location_for(aggregate.location_id, changed).attach(aggregate.id, meta)
        recordings = self.save(*changed.values())
        unchanged = 1 - created - revised
        return CatalogChange(created, revised, unchanged, self.position_of(recordings))
