"""What a person reads about the catalog: an exam's name in plain words, a place with its
address, and where a mobile unit is on a given day."""

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from api.web.i18n import N_
from application.ports import AppointmentView
from application.services import Services
from domain.appointment_type import booking_horizon_days
from domain.location import site_on

# Plain words for modality codes: an exam is a "scan" or an "X-ray", not "MR".
PLAIN_KIND = {
    "MR": N_("MRI scan"),
    "CT": N_("CT scan"),
    "DX": N_("X-ray"),
    "CR": N_("X-ray"),
    "US": N_("Ultrasound scan"),
    "MG": N_("Mammogram"),
}
STATUS_WORDS = {
    "booked": N_("Booked"),
    "checked_in": N_("Checked in"),
    "completed": N_("Done"),
    "cancelled": N_("Cancelled"),
    "no_show": N_("Missed"),
    "needs_new_time": N_("Needs a new time"),
}
UPCOMING = frozenset({"booked", "checked_in", "needs_new_time"})
CHANGEABLE = frozenset({"booked", "needs_new_time"})


@dataclass(frozen=True)
class Exam:
    id: UUID
    name: str
    kind: str
    modality: str
    duration_minutes: int
    preparation: str
    horizon_days: int


@dataclass(frozen=True)
class Place:
    id: UUID
    name: str
    mobile: bool
    timezone: str
    address: str
    phone: str
    spec: dict[str, Any]

    def site(self, day: date) -> tuple[str, str] | None:
        """Where the place is on a local day: (name, address); a mobile unit that does not
        visit anywhere that day: None."""
        found = site_on(self.spec, day)
        if found is None:
            return None
        return found.name, address_line(found.address)

    def visits(self) -> list[tuple[list[str], str, str]]:
        """A mobile unit's rounds: (weekday codes, site name, address) of each visit."""
        return [
            (list(visit.get("weekdays", [])), str(visit["site"]), address_line(visit["address"]))
            for visit in self.spec.get("visits", [])
        ]


def address_line(address: dict[str, Any]) -> str:
    """ "100 Example Avenue, Philadelphia, PA 19000"."""
    region = " ".join(
        part
        for part in (str(address.get("region", "")), str(address.get("postal_code", "")))
        if part
    )
    parts = [
        str(address.get("line1", "")),
        str(address.get("line2", "")),
        str(address.get("city", "")),
    ]
    return ", ".join(part for part in [*parts, region] if part)


def exam_of(type_id: UUID, spec: dict[str, Any]) -> Exam:
    modality = str(spec.get("modality", ""))
    return Exam(
        id=type_id,
        name=str(spec.get("name", "")),
        kind=PLAIN_KIND.get(modality, N_("Scan")),
        modality=modality,
        duration_minutes=int(spec.get("duration_minutes", 0)),
        preparation=str(spec.get("preparation", "")),
        horizon_days=booking_horizon_days(spec),
    )


def place_of(location_id: UUID, spec: dict[str, Any]) -> Place:
    return Place(
        id=location_id,
        name=str(spec.get("name", "")),
        mobile=spec.get("kind") == "mobile",
        timezone=str(spec.get("timezone", "UTC")),
        address=address_line(spec.get("address", {})),
        phone=str(spec.get("phone", "")),
        spec=spec,
    )


class CatalogWords:
    """The catalog read model, as exams and places (one read of each per page)."""

    def __init__(self, services: Services) -> None:
        self._services = services
        self._exams: dict[UUID, Exam] | None = None
        self._places: dict[UUID, Place] | None = None

    def exams(self) -> dict[UUID, Exam]:
        if self._exams is None:
            self._exams = {
                type_id: exam_of(type_id, spec)
                for type_id, spec in self._services.catalog_view.appointment_types()
            }
        return self._exams

    def places(self) -> dict[UUID, Place]:
        if self._places is None:
            self._places = {
                location_id: place_of(location_id, spec)
                for location_id, spec in self._services.catalog_view.locations()
            }
        return self._places

    def places_for(self, exam: Exam) -> list[Place]:
        """The places with a machine for the exam, by name."""
        ids = {
            entry.location_id
            for entry in self._services.catalog_view.resources(exam.modality, None)
        }
        return sorted((p for i, p in self.places().items() if i in ids), key=lambda p: p.name)

    def appointment(self, view: AppointmentView) -> "AppointmentWords":
        exam = self.exams().get(view.appointment_type_id)
        place = self.places().get(view.location_id)
        return AppointmentWords(view, exam, place)


@dataclass(frozen=True)
class AppointmentWords:
    """An appointment with its exam and place, for a page."""

    view: AppointmentView
    exam: Exam | None
    place: Place | None

    @property
    def local_day(self) -> date:
        return self.view.start.astimezone(ZoneInfo(self.view.timezone)).date()

    @property
    def site(self) -> tuple[str, str] | None:
        """Where to go: the place (or the mobile unit's site that day) and its address."""
        if self.place is None:
            return None
        if self.place.mobile:
            return self.place.site(self.local_day)
        return self.place.name, self.place.address

    def upcoming(self, now: datetime) -> bool:
        return self.view.status in UPCOMING and self.view.end > now

    def changeable(self, now: datetime) -> bool:
        return self.view.status in CHANGEABLE and (
            self.view.status == "needs_new_time" or self.view.start > now
        )

    @property
    def status_words(self) -> str:
        return STATUS_WORDS.get(self.view.status, self.view.status)
