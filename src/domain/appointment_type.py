"""Appointment type: an imaging exam patients can book."""

from typing import Any
from uuid import UUID

from domain.catalog_entry import CatalogEntry
from domain.errors import InvalidValueError
from domain.identifiers import derived_id

# How many days ahead an exam may be booked when its spec names no ``booking_horizon_days``
# (specs written before horizons existed have none).
DEFAULT_BOOKING_HORIZON_DAYS = 365
MAX_BOOKING_HORIZON_DAYS = 3650

MODALITIES = ("MR", "CT", "DX", "US", "MG", "NM", "PT", "RF", "XA")


class AppointmentType(CatalogEntry):
    """Name, modality, CPT procedure code, duration and preparation of an exam."""

    label = "an appointment type"

    @staticmethod
    def create_id(code: str) -> UUID:
        return derived_id("appointment-type", code)

    @classmethod
    def checked_spec(cls, spec: dict[str, Any]) -> dict[str, Any]:
        check_spec(spec)
        return spec

    @property
    def modality(self) -> str:
        return str(self.spec["modality"])

    @property
    def duration_minutes(self) -> int:
        return int(self.spec["duration_minutes"])

    @property
    def booking_horizon_days(self) -> int:
        return booking_horizon_days(self.spec)


def booking_horizon_days(spec: dict[str, Any]) -> int:
    """How many days ahead the exam of ``spec`` may be booked."""
    return int(spec.get("booking_horizon_days") or DEFAULT_BOOKING_HORIZON_DAYS)


def check_spec(spec: dict[str, Any]) -> None:
    for key in ("code", "name", "modality", "cpt", "duration_minutes"):
        if not spec.get(key):
            raise InvalidValueError(f"appointment type needs a {key}")
    if spec["modality"] not in MODALITIES:
        raise InvalidValueError(f"modality must be one of {', '.join(MODALITIES)}")
    if not 5 <= int(spec["duration_minutes"]) <= 480:
        raise InvalidValueError("an exam lasts between 5 and 480 minutes")
    horizon = spec.get("booking_horizon_days")
    if horizon is not None and not 1 <= int(horizon) <= MAX_BOOKING_HORIZON_DAYS:
        raise InvalidValueError(
            f"a booking horizon is between 1 and {MAX_BOOKING_HORIZON_DAYS} days"
        )
    cpt = str(spec["cpt"])
    if not (len(cpt) == 5 and cpt[:4].isdigit() and cpt[4].isalnum()):
        raise InvalidValueError(f"CPT code {cpt!r} is not five characters (e.g. 70551)")
