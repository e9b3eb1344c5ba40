"""PatientIdentifier: which patient an identifier (an MRN of an assigning authority)
names. Its identity derives from the identifier, so one MRN can name one patient
only, and a lookup by MRN is a single read of the event store."""

from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.identifiers import derived_id


class PatientIdentifier(Aggregate):
    """The MRN ``value`` issued by ``authority`` belongs to ``patient_id``."""

    class Assigned(Aggregate.Created):
        authority: str
        value: str
        patient_id: UUID
        meta: dict[str, str]

    @staticmethod
    def create_id(authority: str, value: str) -> UUID:
        return derived_id("patient-identifier", authority, value)

    @event(Assigned)
    def __init__(self, authority: str, value: str, patient_id: UUID, meta: dict[str, str]) -> None:
        self.authority = authority
        self.value = value
        self.patient_id = patient_id
