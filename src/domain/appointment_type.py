"""Appointment type: an imaging exam patients can book."""

from typing import Any
from uuid import UUID

from domain.catalog_entry import CatalogEntry
from domain.errors import InvalidValueError
from domain.identifiers import derived_id

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


def check_spec(spec: dict[str, Any]) -> None:
    for key in ("code", "name", "modality", "cpt", "duration_minutes"):
        if not spec.get(key):
            raise InvalidValueError(f"appointment type needs a {key}")
    if spec["modality"] not in MODALITIES:
        raise InvalidValueError(f"modality must be one of {', '.join(MODALITIES)}")
    if not 5 <= int(spec["duration_minutes"]) <= 480:
        raise InvalidValueError("an exam lasts between 5 and 480 minutes")
    cpt = str(spec["cpt"])
    if not (len(cpt) == 5 and cpt[:4].isdigit() and cpt[4].isalnum()):
        raise InvalidValueError(f"CPT code {cpt!r} is not five characters (e.g. 70551)")
