"""UnmatchedResult: a result reference for an accession we do not know, kept for review.

Identified by the inbound message that carried it, so it is kept once however
often that message is handled. Like an order's results, it holds no report text.
"""

from dataclasses import asdict
from datetime import datetime
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.identifiers import derived_id
from domain.ris.order import ResultReference


class UnmatchedResult(Aggregate):
    """A result nobody's order claimed (yet): someone has to look at it."""

    class Kept(Aggregate.Created):
        message_id: str
        accession_number: str
        placer_number: str
        filler_number: str
        patient_identifier: str
        procedure_code: str
        procedure_text: str
        result_status: str
        observed_at: datetime | None
        viewer_link: str
        meta: dict[str, str]

    class Resolved(Aggregate.Event):
        note: str
        meta: dict[str, str]

    @staticmethod
    def create_id(message_id: str) -> UUID:
        return derived_id("unmatched-result", message_id)

    @classmethod
    def keep(
        cls,
        result: ResultReference,
        *,
        message_id: str,
        placer_number: str,
        filler_number: str,
        patient_identifier: str,
        meta: dict[str, str],
    ) -> "UnmatchedResult":
        return cls(
            message_id=message_id,
            placer_number=placer_number,
            filler_number=filler_number,
            patient_identifier=patient_identifier,
            meta=meta,
            **asdict(result),
        )

    @event(Kept)
    def __init__(
        self,
        message_id: str,
        accession_number: str,
        placer_number: str,
        filler_number: str,
        patient_identifier: str,
        procedure_code: str,
        procedure_text: str,
        result_status: str,
        observed_at: datetime | None,
        viewer_link: str,
        meta: dict[str, str],
    ) -> None:
        self.message_id = message_id
        self.accession_number = accession_number
        self.placer_number = placer_number
        self.filler_number = filler_number
        self.patient_identifier = patient_identifier
        self.procedure_code = procedure_code
        self.procedure_text = procedure_text
        self.result_status = result_status
        self.observed_at = observed_at
        self.viewer_link = viewer_link
        self.resolved = False
        self.note = ""

    def resolve(self, note: str, meta: dict[str, str]) -> None:
        """Someone dealt with it (attached it by hand, or decided it is not ours)."""
        if not self.resolved:
            self._resolved(note=note, meta=meta)

    @event(Resolved)
    def _resolved(self, note: str, meta: dict[str, str]) -> None:
        self.resolved = True
        self.note = note
