"""Patient data at rest: the event tables hold no patient data in clear, and the PHI
access log refuses changes in PostgreSQL itself."""

import psycopg
import pytest
from psycopg import sql

from tests.integration import test_outbound_hl7 as outbound
from tests.integration.mllp_peer import wait_until
from tests.integration.test_outbound_hl7 import deliveries, outbound_settings
from tests.support import post_booking, register_patient

pytestmark = pytest.mark.integration
peer, outbound_factory = outbound.peer, outbound.outbound_factory  # the fixtures

PATIENT = {
    "email": "zebulon.quillfeather@example.org",
    "password": "correct horse battery staple",
    "given_name": "Zebulon",
    "family_name": "Quillfeather",
    "birth_date": "1977-03-14",
    "phone": "+1 555 0199",
}
NOTES = "Claustrophobic; needs a Welsh interpreter"
# Every way the data could show in clear: as typed, and as HL7 writes it.
NEEDLES = ("Zebulon", "Quillfeather", "zebulon.quillfeather", "1977-03-14", "19770314", "Welsh")


def event_tables(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema = 'public' AND (table_name LIKE '%%\\_events'"
            " OR table_name LIKE '%%\\_snapshots') ORDER BY 1"
        ).fetchall()
    return [name for (name,) in rows]


def clear_text_in(url: str, table: str) -> list[str]:
    """The needles found in any column of any row of ``table``, bytes read as bytes."""
    found = []
    with psycopg.connect(url) as conn:
        cursor = conn.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier(table)))
        for row in cursor:
            for value in row:
                raw = bytes(value) if isinstance(value, bytes | memoryview) else str(value).encode()
                found += [n for n in NEEDLES if n.encode() in raw or n.lower().encode() in raw]
    return found


def row_count(url: str, table: str) -> int:
    with psycopg.connect(url) as conn:
        query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
        return int(conn.execute(query).fetchone()[0])


def decrypted(app) -> str:
    """Every event of an application, read back through its mapper (with the key)."""
    return repr(
        [
            vars(app.mapper.to_domain_event(item))
            for item in app.recorder.select_notifications(1, 10_000)
        ]
    )


def patient_books_with_notes(client, patient: dict[str, str], notes: str) -> tuple[dict, str]:
    """``patient`` registers through the API, books a CT and gives notes: its auth
    header and the appointment id."""
    headers = register_patient(client, patient)
    booked = post_booking(client, headers, "2026-12-02T14:00:00Z")
    assert booked.status_code == 201, booked.text
    appointment_id = booked.json()["id"]
    changed = client.patch(
        f"/v1/appointments/{appointment_id}", headers=headers, json={"notes": notes}
    )
    assert changed.status_code == 200, changed.text
    return headers, appointment_id


def all_acknowledged(ob, count: int) -> bool:
    found = deliveries(ob)
    return len(found) == count and all(d.status == "acknowledged" for d in found)


def test_no_patient_data_in_clear_in_any_event_table(client, runtime, peer, outbound_factory):
    # Given a patient who registered, booked with notes, and whose messages reached the RIS
    ob = outbound_factory(outbound_settings(runtime, peer))
    patient_books_with_notes(client, PATIENT, NOTES)
    wait_until(lambda: all_acknowledged(ob, 3))
    # The data is in the logs: readable with the key ...
    services = runtime.services
    assert "Quillfeather" in decrypted(services.registry)
    assert "zebulon.quillfeather" in decrypted(services.registry)
    assert "Welsh" in decrypted(services.scheduling)
    assert "Quillfeather" in decrypted(ob.deliveries)

    # When the raw rows of every event table are read without the key
    tables = event_tables(runtime.url)

    # Then none of them shows any of it
    assert {"registry_events", "scheduling_events", "deliveries_events"} <= set(tables)
    for table in tables:
        assert clear_text_in(runtime.url, table) == [], table
    assert all(row_count(runtime.url, t) for t in ("registry_events", "deliveries_events"))


def test_the_access_log_refuses_update_delete_and_truncate(runtime):
    # Given an entry in the PHI access log
    with psycopg.connect(runtime.url, autocommit=True) as conn:
        (entry,) = conn.execute(
            "INSERT INTO phi_access_log (at, actor_id, role, resource, action, outcome)"
            " VALUES (now(), 'a1', 'scheduler', 'patient', 'read', 'allowed') RETURNING id"
        ).fetchone()

        # When anyone (even the owner of the table) changes or deletes it, it is refused
        with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
            conn.execute(
                "UPDATE phi_access_log SET actor_id = 'someone else' WHERE id = %s", (entry,)
            )
        with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
            conn.execute("DELETE FROM phi_access_log WHERE id = %s", (entry,))
        with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
            conn.execute("DELETE FROM phi_access_log")
        with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
            conn.execute("TRUNCATE phi_access_log")

        # Then the entry is as it was written, and new entries are still taken
        assert conn.execute(
            "SELECT actor_id, action FROM phi_access_log WHERE id = %s", (entry,)
        ).fetchall() == [("a1", "read")]
        conn.execute(
            "INSERT INTO phi_access_log (at, actor_id, role, resource, action, outcome)"
            " VALUES (now(), 'a2', 'admin', 'patient', 'read', 'allowed')"
        )
        assert conn.execute("SELECT count(*) FROM phi_access_log").fetchone()[0] >= 2
