"""Patient phones read model: which patient records have a phone number, so an SMS
opt-out (STOP) from a number reaches every record with it. The row keeps a keyed digest
(application.digests) of the number in E.164, never the number; the Registry's records
are checked when the index is read (application.preferences)."""

from typing import Any
from uuid import UUID

from eventsourcing.persistence import Tracking
from eventsourcing.projection import Projection
from psycopg_pool import ConnectionPool

from application.digests import KeyedDigest
from application.preferences import PhoneIndex
from domain.contact_preferences import e164
from domain.patient import Patient
from projections.changes import Change, Delete, Upsert
from projections.view import ReadModelView

TABLE = "rm_patient_phones"
PURPOSE = "patient-phones"


def phone_changes(event: Any, digest: KeyedDigest) -> list[Change]:
    """Pure (given the key): the row changes one registry event causes."""
    match event:
        case Patient.Registered() | Patient.DemographicsChanged():
            number = e164(event.phone) if event.phone else None
            if number is None:
                return [Delete(TABLE, {"patient_id": event.originator_id})]
            return [
                Upsert(
                    TABLE, {"patient_id": event.originator_id}, {"phone_key": digest.hex(number)}
                )
            ]
    return []


class PatientPhonesProjection(Projection[ReadModelView]):
    name = "patient_phones"
    tables = (TABLE,)
    digest: KeyedDigest | None = None

    @classmethod
    def keyed(cls, cipher_key: str) -> type["PatientPhonesProjection"]:
        """This projection with its digest key (from the event key in the environment)."""
        digest = KeyedDigest.from_cipher_key(cipher_key, PURPOSE)
        return type(cls.__name__, (cls,), {"digest": digest, "name": cls.name})

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        if self.digest is None:
            raise RuntimeError("the patient phones projection runs without its key")
        self.view.apply(phone_changes(domain_event, self.digest), tracking)


class PostgresPhoneIndex(PhoneIndex):
    def __init__(self, pool: ConnectionPool[Any], cipher_key: str) -> None:
        self._pool = pool
        self._digest = KeyedDigest.from_cipher_key(cipher_key, PURPOSE)

    def by_phone(self, phone_e164: str) -> list[UUID]:
        key = self._digest.hex(phone_e164)
        with self._pool.connection() as conn:
            rows = conn.execute(
                f"SELECT patient_id FROM {TABLE} WHERE phone_key = %s ORDER BY patient_id",  # noqa: S608
                (key,),
            ).fetchall()
        return [row[0] for row in rows]
