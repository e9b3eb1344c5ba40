"""Stored inbound HL7 sealed at rest (issue 9, finding 13): the raw message is kept
encrypted with the event key, bound to its row, and duplicates are found by a keyed
digest; rows stored in clear before migration 0016 stay readable and are sealed at the
next start. Real MLLP over loopback, real PostgreSQL."""

import hashlib
import shutil
import uuid
from pathlib import Path

import psycopg
import pytest
from eventsourcing.cryptography import AESCipher

from adapters.at_rest import AtRestCipher, UnreadableError
from adapters.database import reader_pool
from adapters.hl7.inbound_store import PostgresInboundStore, open_raw
from adapters.hl7.listener import BackgroundListener, ListenerConfig
from adapters.migrations import apply_migrations, migrations_dir
from imaging_bridge.bootstrap import Parts
from tests.conftest import make_runtime
from tests.integration.test_hl7_listener import (
    CIPHER,
    RecordingHandler,
    adt,
    exchange,
    listener,
    migrated,
    processor_for,
    segments,
)

pytestmark = pytest.mark.integration
__all__ = ["listener", "migrated"]  # the listener tests' fixtures, used here too


def stored(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT id, raw, raw_format, content_sha256, content_hmac, status, duplicates"
            " FROM hl7_inbound ORDER BY seq"
        ).fetchall()


def test_a_stored_message_is_sealed_and_opens_only_with_its_key_on_its_row(listener, migrated):
    # Given a message naming a patient
    message = adt("SEAL1", family="QUILLFEATHER")

    # When it is received
    assert segments(exchange(listener.port, message))["MSA"][1] == "AA"

    # Then what is stored is not the message: it is sealed, and the duplicate key is a
    # keyed digest, not a plain hash anyone could check a guess against
    [(message_id, raw, raw_format, sha256, hmac, _, _)] = stored(migrated)
    raw = bytes(raw)
    assert raw_format == 1
    assert b"QUILLFEATHER" not in raw
    assert b"MRN123" not in raw
    assert sha256 is None
    assert bytes(hmac) == CIPHER.digest(message) != hashlib.sha256(message).digest()
    # ... it opens to the exact bytes received with the key, on its own row only
    assert open_raw(CIPHER, message_id, raw, raw_format) == message
    other_key = AtRestCipher(AESCipher.create_key(32))
    with pytest.raises(UnreadableError):
        open_raw(other_key, message_id, raw, raw_format)
    with pytest.raises(UnreadableError):
        open_raw(CIPHER, uuid.uuid4(), raw, raw_format)


def test_a_message_that_does_not_open_is_quarantined_not_handed_over(listener, migrated):
    # Given a stored message, and a processing stage configured with another key
    exchange(listener.port, adt("WRONGKEY1"))
    handler = RecordingHandler()
    wrong = processor_for(migrated, handler, AtRestCipher(AESCipher.create_key(32)))

    # When it runs
    assert wrong.process_pending(10) == 1

    # Then nothing reaches the handler, and the operator sees why
    assert handler.seen == []
    [(_, _, _, _, _, status, _)] = stored(migrated)
    assert status == "quarantined"
    with psycopg.connect(migrated) as conn:
        [(error,)] = conn.execute("SELECT error FROM hl7_inbound").fetchall()
    assert error.startswith("stored_unreadable:")


def test_duplicates_are_still_found_and_get_the_same_ack(listener, migrated):
    # Given a message stored once
    first = exchange(listener.port, adt("DUPSEAL", family="ROE"))

    # When the same content comes again, and other content under the same control id
    again = exchange(listener.port, adt("DUPSEAL", family="ROE"))
    other = exchange(listener.port, adt("DUPSEAL", family="POE"))

    # Then the duplicate gets the same ACK and is stored once; the other is new
    assert again == first
    assert other != first
    assert [row[6] for row in stored(migrated)] == [1, 0]


@pytest.fixture
def before_0016(database_url: str, tmp_path: Path) -> str:
    """A database as it was before migration 0016."""
    older = tmp_path / "migrations"
    older.mkdir()
    for path in sorted(migrations_dir().glob("*.sql")):
        if path.name < "0016_patient_data_at_rest.sql":
            shutil.copy(path, older / path.name)
    apply_migrations(database_url, older)
    return database_url


def store_in_clear(url: str, message: bytes, status: str) -> uuid.UUID:
    """What the listener stored before 0016: the raw bytes and a plain SHA-256."""
    message_id = uuid.uuid4()
    ack = b"MSH|^~\\&|BRIDGE|US|RIS|CENTRE|20261127120000||ACK^A08^ACK|OLDACK|P|2.5.1\rMSA|AA|X\r"
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO hl7_inbound (id, sending_application, sending_facility, control_id,"
            " message_type, trigger, version, charset, content_sha256, raw, ack_code, ack,"
            " status) VALUES (%s, 'RIS', 'CENTRE', %s, 'ADT', 'A08', '2.5.1', '', %s, %s,"
            " 'AA', %s, %s)",
            (
                message_id,
                message.split(b"|")[9].decode(),
                hashlib.sha256(message).digest(),
                message,
                ack,
                status,
            ),
        )
    return message_id


def test_rows_stored_in_clear_stay_readable_and_are_sealed_at_the_next_start(
    before_0016, tmp_path, clock
):
    url = before_0016
    # Given messages stored in clear by the listener before the upgrade
    processed = store_in_clear(url, adt("OLD1", family="WEXBRIDGE"), "processed")
    waiting = store_in_clear(url, adt("OLD2", family="TALLOW"), "received")

    # When migration 0016 is applied, they are still readable as they are
    apply_migrations(url)
    assert [row[2] for row in stored(url)] == [0, 0]
    with reader_pool(url, 1) as pool:
        detail = PostgresInboundStore(pool, CIPHER).get(processed)
    assert detail is not None
    assert "WEXBRIDGE^JANE" in detail.raw

    # When the service starts (the composition root seals what is still in clear)
    runtime = make_runtime(url, tmp_path, clock, parts=Parts(projections=False))
    try:
        cipher = runtime.cipher
        rows = {row[0]: row for row in stored(url)}

        # Then every row is sealed, with its keyed digest and no plain hash
        for message_id, family in ((processed, b"WEXBRIDGE"), (waiting, b"TALLOW")):
            _, raw, raw_format, sha256, hmac, _, _ = rows[message_id]
            assert (raw_format, sha256) == (1, None)
            assert family not in bytes(raw)
            assert bytes(hmac) == cipher.digest(open_raw(cipher, message_id, bytes(raw), 1))
        # ... the operator still reads them, and the waiting one is processed as before
        shown = runtime.services.hl7_inbound.store.get(processed)
        assert shown is not None
        assert shown.raw == detail.raw
        handler = RecordingHandler()
        assert processor_for(url, handler, cipher).process_pending(10) == 1
        assert [m.control_id for m in handler.seen] == ["OLD2"]
        assert "TALLOW^JANE" in handler.seen[0].text

        # ... and the old message sent again is still a duplicate: it gets its first ACK
        config = ListenerConfig(host="127.0.0.1", port=0)
        with BackgroundListener(url, config, cipher=cipher) as listener:
            again = exchange(listener.port, adt("OLD1", family="WEXBRIDGE"))
        assert segments(again)["MSH"][9] == "OLDACK"
        assert rows[processed][6] == 0
        assert {row[0]: row[6] for row in stored(url)}[processed] == 1
        # ... and a second start has nothing left to seal
        assert PostgresInboundStore(runtime.pool, cipher).seal_rows_in_clear() == 0
    finally:
        runtime.close()
