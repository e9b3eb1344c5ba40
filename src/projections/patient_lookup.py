"""Patient lookup read model: which patient records have a family name and birth date,
for the staff search. The row keeps a keyed digest (application.digests) of the two,
never the values (the portal keeps no name or birth date in clear: migration 0016);
given names and merges are checked against the Registry's records when a search reads."""

from datetime import date
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Tracking
from eventsourcing.projection import Projection
from psycopg_pool import ConnectionPool

from application.digests import KeyedDigest, name_key
from application.ports import PatientLookup
from domain.patient import Patient
from projections.changes import Change, Delete, Upsert
from projections.view import ReadModelView

TABLE = "rm_patient_lookup"
PURPOSE = "patient-lookup"


def lookup_changes(event: Any, digest: KeyedDigest) -> list[Change]:
    """Pure (given the key): the row changes one registry event causes."""
    if isinstance(event, Patient.Registered | Patient.DemographicsChanged):
        key = digest.hex(name_key(event.family_name, event.birth_date))
        return [
            Delete(TABLE, {"patient_id": event.originator_id}),
            Upsert(TABLE, {"patient_id": event.originator_id, "lookup_key": key}),
        ]
    return []


class PatientLookupProjection(Projection[ReadModelView]):
    name = "patient_lookup"
    tables = (TABLE,)
    digest: KeyedDigest | None = None

    @classmethod
    def keyed(cls, cipher_key: str) -> type["PatientLookupProjection"]:
        """This projection with its digest key (from the event key in the environment)."""
        digest = KeyedDigest.from_cipher_key(cipher_key, PURPOSE)
        # The name too: a subclass would otherwise be named (and tracked) after itself.
        return type(cls.__name__, (cls,), {"digest": digest, "name": cls.name})

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        if self.digest is None:
            raise RuntimeError("the patient lookup projection runs without its key")
        self.view.apply(lookup_changes(domain_event, self.digest), tracking)


class PostgresPatientLookup(PatientLookup):
    def __init__(self, pool: ConnectionPool[Any], cipher_key: str) -> None:
        self._pool = pool
        self._digest = KeyedDigest.from_cipher_key(cipher_key, PURPOSE)

    def by_name(self, family_name: str, birth_date: date) -> list[UUID]:
        key = self._digest.hex(name_key(family_name, birth_date))
        with self._pool.connection() as conn:
            rows = conn.execute(
                f"SELECT patient_id FROM {TABLE} WHERE lookup_key = %s ORDER BY patient_id",  # noqa: S608
                (key,),
            ).fetchall()
        return [row[0] for row in rows]
