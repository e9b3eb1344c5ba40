"""Appointment type: an imaging exam patients can book."""

from typing import Any
from uuid import UUID

from domain.catalog_entry import CatalogEntry
from domain.errors import InvalidValueError
from domain.identifiers import derived_id
from domain.reminders import parse_offsets

# How many days ahead an exam may be booked when its spec names no ``booking_horizon_days``
# (specs written before horizons existed have none).
DEFAULT_BOOKING_HORIZON_DAYS = 365
MAX_BOOKING_HORIZON_DAYS = 3650

MODALITIES = ("MR", "CT", "DX", "US", "MG", "NM", "PT", "RF", "XA")
# The RIS's procedure codes (OBR-4.1 of its orders) an exam type can perform.
MAX_PROCEDURE_CODES = 50
MAX_PROCEDURE_CODE_LENGTH = 64


class AppointmentType(CatalogEntry):
    """Name, modality, CPT procedure code, duration and preparation of an exam, and the
    RIS procedure codes it performs (what lets a patient book it for an order)."""

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

    @property
    def procedure_codes(self) -> list[str]:
        return procedure_codes(self.spec)

    def performs(self, procedure_code: str) -> bool:
        """Whether an order for ``procedure_code`` can be booked as this exam."""
        return bool(procedure_code) and procedure_code in self.procedure_codes


def procedure_codes(spec: dict[str, Any]) -> list[str]:
    """The procedure codes of ``spec``; none for specs written before exams had them
    (stored ``Defined``/``Revised`` events keep their spec as it was)."""
    return [str(code) for code in spec.get("procedure_codes") or []]


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
    _check_procedure_codes(spec.get("procedure_codes"))
    offsets = spec.get("reminder_offsets")
    if offsets is not None:
        parse_offsets(str(offsets))  # InvalidValueError naming a bad one
    cpt = str(spec["cpt"])
    if not (len(cpt) == 5 and cpt[:4].isdigit() and cpt[4].isalnum()):
        raise InvalidValueError(f"CPT code {cpt!r} is not five characters (e.g. 70551)")


def _check_procedure_codes(codes: object) -> None:
    if codes is None:
        return
    if not isinstance(codes, list) or not all(isinstance(code, str) for code in codes):
        raise InvalidValueError("procedure_codes is a list of the RIS's procedure codes")
    if len(codes) > MAX_PROCEDURE_CODES:
        raise InvalidValueError(f"an exam type lists at most {MAX_PROCEDURE_CODES} procedure codes")
    for code in codes:
        if not code.strip() or code != code.strip() or len(code) > MAX_PROCEDURE_CODE_LENGTH:
            raise InvalidValueError(
                f"procedure code {code!r} must be 1 to {MAX_PROCEDURE_CODE_LENGTH} characters"
                " without surrounding spaces"
            )
    if len(set(codes)) != len(codes):
        raise InvalidValueError("procedure_codes lists a code more than once")
