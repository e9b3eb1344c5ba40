"""Staff find patients: by an identifier (an MRN of one assigning authority), or by
family name and birth date (optionally the given name too). Exact look-ups only, never
a listing: RIS patients who have no appointment yet belong to no centre, and a search
that needs what the patient's own papers say is how the front desk finds them.

Everything shown is read from the Registry's (encrypted) records; the name index holds
keyed digests only. Merged-away records answer as the record they were merged into.
"""

from dataclasses import dataclass
from datetime import date
from uuid import UUID

from application.digests import normalise_name
from application.ports import PatientLookup
from application.registry import Registry
from domain.patient import Patient


@dataclass(frozen=True)
class IdentifierView:
    authority: str
    value: str


@dataclass(frozen=True)
class PatientSummary:
    """Who a patient is, as staff see them."""

    id: UUID
    given_name: str
    family_name: str
    birth_date: date
    administrative_sex: str
    identifiers: list[IdentifierView]
    has_account: bool
    email: str
    phone: str | None

    @property
    def mrn(self) -> IdentifierView | None:
        """The RIS's identifier (the first authority by name when there are several)."""
        return self.identifiers[0] if self.identifiers else None

    @classmethod
    def of(cls, patient: Patient) -> "PatientSummary":
        return cls(
            id=patient.id,
            given_name=patient.given_name,
            family_name=patient.family_name,
            birth_date=patient.birth_date,
            administrative_sex=patient.administrative_sex,
            identifiers=[
                IdentifierView(authority, patient.identifiers[authority])
                for authority in sorted(patient.identifiers)
            ],
            has_account=patient.has_account,
            email=patient.email,
            phone=patient.phone,
        )


class PatientSearch:
    def __init__(self, registry: Registry, lookup: PatientLookup) -> None:
        self._registry = registry
        self._lookup = lookup

    def by_identifier(self, authority: str, value: str) -> list[PatientSummary]:
        patient = self._registry.patient_by_identifier(authority.strip(), value.strip())
        return [] if patient is None else [PatientSummary.of(patient)]

    def by_name(
        self, family_name: str, birth_date: date, given_name: str | None = None
    ) -> list[PatientSummary]:
        """Records with this family name and birth date now (the index may name a record
        whose demographics changed since; each is checked against the record itself)."""
        found: dict[UUID, Patient] = {}
        for patient_id in self._lookup.by_name(family_name, birth_date):
            patient = self._registry.patient_by_id(patient_id)
            if patient is not None:
                found.setdefault(patient.id, patient)
        wanted = normalise_name(family_name)
        given = normalise_name(given_name) if given_name else None
        return [
            PatientSummary.of(patient)
            for patient in found.values()
            if normalise_name(patient.family_name) == wanted
            and patient.birth_date == birth_date
            and (given is None or normalise_name(patient.given_name) == given)
        ]

    def summary(self, patient_id: UUID) -> PatientSummary | None:
        """The patient (the surviving record of a merge), or None."""
        patient = self._registry.patient_by_id(patient_id)
        return None if patient is None else PatientSummary.of(patient)
