"""What a person reads about an appointment besides its ids: the exam and how to prepare,
where to go (the location, its address and phone, the time zone's name at that time, and
for a mobile unit the site it visits that day), and the times on the location's clock.

Read from the catalog read model, one query for a whole answer (a list of appointments
names few distinct exams and locations), so that booking and the appointment lists stay
cheap. An entry the read model does not hold yet (it lags a catalog change made a moment
ago) is read from the catalog itself.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from application.catalog import Catalog
from application.ports import CatalogReader
from domain.location import Site, site_on
from domain.schedule import zone


class Scheduled(Protocol):
    """What this module needs of an appointment: a read-model view or the aggregate."""

    @property
    def appointment_type_id(self) -> UUID: ...

    @property
    def location_id(self) -> UUID: ...

    @property
    def start(self) -> datetime: ...

    @property
    def end(self) -> datetime: ...

    @property
    def timezone(self) -> str: ...


@dataclass(frozen=True)
class Exam:
    id: UUID
    name: str
    preparation: str


@dataclass(frozen=True)
class Place:
    """A location as a patient finds it; ``timezone_name`` is the zone's abbreviation at
    the appointment's time (CST or CDT, EST or EDT)."""

    id: UUID
    name: str
    kind: str
    timezone: str
    timezone_name: str
    phone: str
    address: dict[str, str]


@dataclass(frozen=True)
class DescribedAppointment:
    """An appointment with what a person reads about it. Its own attributes (id, status,
    start, …) read through to ``appointment``, so a response model takes this in its
    place."""

    appointment: Scheduled
    exam: Exam
    location: Place
    site: Site | None
    local_start: datetime
    local_end: datetime

    def __getattr__(self, name: str) -> Any:
        if name == "appointment":  # not set yet (copy, unpickling): no endless lookup
            raise AttributeError(name)
        return getattr(self.appointment, name)


def describe(
    appointment: Scheduled, exam_spec: dict[str, Any], location_spec: dict[str, Any]
) -> DescribedAppointment:
    """Pure: the appointment with the catalog specs of its exam type and location."""
    own_zone = zone(appointment.timezone)
    location_zone = zone(location_spec["timezone"])
    local_day = appointment.start.astimezone(location_zone).date()
    mobile = location_spec["kind"] == "mobile"
    return DescribedAppointment(
        appointment=appointment,
        exam=Exam(
            id=appointment.appointment_type_id,
            name=str(exam_spec["name"]),
            preparation=str(exam_spec.get("preparation", "")),
        ),
        location=Place(
            id=appointment.location_id,
            name=str(location_spec["name"]),
            kind=str(location_spec["kind"]),
            timezone=str(location_spec["timezone"]),
            timezone_name=appointment.start.astimezone(location_zone).tzname() or "",
            phone=str(location_spec.get("phone", "")),
            address=dict(location_spec["address"]),
        ),
        site=site_on(location_spec, local_day) if mobile else None,
        local_start=appointment.start.astimezone(own_zone),
        local_end=appointment.end.astimezone(own_zone),
    )


class AppointmentDetails:
    """Describes appointments for answers people read."""

    def __init__(self, catalog_view: CatalogReader, catalog: Catalog) -> None:
        self._catalog_view = catalog_view
        self._catalog = catalog

    def one(self, appointment: Scheduled) -> DescribedAppointment:
        return self.all([appointment])[0]

    def all(self, appointments: Sequence[Scheduled]) -> list[DescribedAppointment]:
        """Each appointment described, in the same order."""
        if not appointments:
            return []
        exams, locations = self._catalog_view.specs(
            {a.appointment_type_id for a in appointments}, {a.location_id for a in appointments}
        )
        for a in appointments:
            if a.appointment_type_id not in exams:
                exams[a.appointment_type_id] = self._catalog.appointment_type(
                    a.appointment_type_id
                ).spec
            if a.location_id not in locations:
                locations[a.location_id] = self._catalog.location(a.location_id).spec
        return [
            describe(a, exams[a.appointment_type_id], locations[a.location_id])
            for a in appointments
        ]
