"""Patient merges read model: which patient record was merged into which (ADT^A40), so
that a patient's orders and results include those the RIS placed under a record merged
into theirs."""

from typing import Any

from eventsourcing.persistence import Tracking
from eventsourcing.projection import Projection

from domain.patient import Patient
from projections.changes import Change, Upsert
from projections.view import ReadModelView

MERGES = "rm_patient_merges"


def merge_changes(event: Any) -> list[Change]:
    """Pure: the row change one registry event causes (only merges cause any)."""
    if isinstance(event, Patient.MergedInto):
        values = {"survivor_id": event.survivor_id, "merged_at": event.timestamp}
        return [Upsert(MERGES, {"merged_id": event.originator_id}, values)]
    return []


class PatientMergesProjection(Projection[ReadModelView]):
    name = "patient_merges"
    tables = (MERGES,)

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        self.view.apply(merge_changes(domain_event), tracking)
