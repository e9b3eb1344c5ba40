"""CatalogEntry: what every catalog aggregate (Location, Resource, AppointmentType)
shares: a code that never changes and a spec that is defined, then revised.

Each subclass gets its own ``Defined`` and ``Revised`` event classes (the library
redefines inherited events on every aggregate class), so stored events keep their
topics (``domain.location:Location.Defined`` …).
"""

from typing import Any, Self

from eventsourcing.domain import Aggregate, event

from domain.errors import InvalidValueError


class CatalogEntry(Aggregate):
    """A catalog entry with a code and a spec; subclasses say how a spec is checked."""

    # How errors name the kind of entry ("a location's code cannot change").
    label = "a catalog entry"

    class Defined(Aggregate.Created):
        code: str
        spec: dict[str, Any]
        meta: dict[str, str]

    class Revised(Aggregate.Event):
        spec: dict[str, Any]
        meta: dict[str, str]

        def apply(self, aggregate: Any) -> None:
            aggregate.spec = self.spec

    @classmethod
    def checked_spec(cls, spec: dict[str, Any]) -> dict[str, Any]:
        """The spec as stored (validated, maybe normalised); InvalidValueError if bad."""
        return spec

    @classmethod
    def define(cls, spec: dict[str, Any], meta: dict[str, str]) -> Self:
        """A new entry from a spec (see ``checked_spec``)."""
        spec = cls.checked_spec(spec)
        return cls(code=spec["code"], spec=spec, meta=meta)

    @event(Defined)
    def __init__(self, code: str, spec: dict[str, Any], meta: dict[str, str]) -> None:
        self.code = code
        self.spec = spec

    def revise(self, spec: dict[str, Any], meta: dict[str, str]) -> bool:
        """Apply a new spec; records nothing and returns False when nothing changed."""
        spec = self.checked_spec(spec)
        if spec["code"] != self.code:
            raise InvalidValueError(f"{self.label}'s code cannot change")
        if spec == self.spec:
            return False
        # ``self.Revised`` is this class's own event class, with its own topic.
        self.trigger_event(self.Revised, spec=spec, meta=meta)
        return True
