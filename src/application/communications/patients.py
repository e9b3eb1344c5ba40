"""The patients the communication policy writes to, read from the registry's log: one at
a time, or the patients of a whole batch of upstream events in one query."""

from collections.abc import Iterable
from uuid import UUID

from application.registry import RegistryLog
from domain.patient import Patient

MERGE_CHAIN = 10  # a merge chain is short; a longer one would be a bug upstream


class Patients:
    """Patient records by id (the surviving record when one was merged into another)."""

    def __init__(self, registry: RegistryLog) -> None:
        self._registry = registry
        self._batch: dict[UUID, Patient] = {}

    def prefetch(self, patient_ids: Iterable[UUID]) -> None:
        """Read these patients in one query, for the batch being processed (``clear``
        after it: a record is not kept beyond the batch)."""
        wanted = list(set(patient_ids))
        if len(wanted) < 2:
            return
        self._batch = self._registry.find_many(wanted, Patient)

    def clear(self) -> None:
        self._batch = {}

    def get(self, patient_id: UUID) -> Patient | None:
        patient = self._one(patient_id)
        for _ in range(MERGE_CHAIN):
            if patient is None or patient.merged_into is None:
                break
            patient = self._one(patient.merged_into)
        return patient

    def _one(self, patient_id: UUID) -> Patient | None:
        return self._batch.get(patient_id) or self._registry.find(patient_id, Patient)
