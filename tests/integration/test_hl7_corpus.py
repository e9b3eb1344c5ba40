"""Every message of the shared corpus, sent to the listener over MLLP, gets an ACK with
the code ``expected.tsv`` allows and its own MSH-10, and is stored byte for byte; the
listener keeps serving throughout. (``ack-reader:`` rows are ACKs for our outbound side
and are not sent.)"""

import psycopg
import pytest

from adapters.hl7.inbound_store import open_raw
from adapters.hl7.listener import BackgroundListener, ListenerConfig
from application.ris.orders import Orders
from tests.integration.test_hl7_listener import (
    CIPHER,
    RecordingHandler,
    adt,
    connect,
    exchange,
    processor_for,
    read_frame,
    segments,
)
from tests.support import hl7_corpus, needs_corpus

CORPUS = hl7_corpus()


def corpus() -> list[tuple[str, list[str]]]:
    entries = []
    for line in (CORPUS / "expected.tsv").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, codes = line.split("\t")[:2]
        if not codes.startswith("ack-reader:"):
            entries.append((name, codes.split(",")))
    return entries


def control_id(raw: bytes) -> str:
    """MSH-10 read independently of the listener: the first line from MSH, split on the
    field separator that follows ``MSH``."""
    header = raw[raw.index(b"MSH") :].replace(b"\n", b"\r").split(b"\r")[0].decode("latin-1")
    fields = header.split(header[3])
    return fields[9] if len(fields) > 9 else ""


pytestmark = [
    pytest.mark.integration,
    needs_corpus,
]


def test_the_corpus_has_79_messages_of_which_73_are_sent():
    assert len((CORPUS / "expected.tsv").read_text().splitlines()) - 3 == 79
    assert len(corpus()) == 73


def test_every_corpus_message_gets_its_expected_ack_and_is_stored(database_url):
    from adapters.migrations import apply_migrations

    apply_migrations(database_url)
    config = ListenerConfig(host="127.0.0.1", port=0)
    sent: dict[bytes, str] = {}
    problems = []
    with BackgroundListener(database_url, config, cipher=CIPHER) as listener:
        # All over one connection, as an interface engine would send them.
        with connect(listener.port) as sock:
            for name, codes in corpus():
                raw = (CORPUS / name).read_bytes()
                sock.sendall(b"\x0b" + raw + b"\x1c\x0d")
                ack = segments(read_frame(sock))
                if ack["MSA"][1] not in codes:
                    problems.append(f"{name}: {ack['MSA'][1]} not in {codes}")
                if ack["MSA"][2] != control_id(raw):
                    problems.append(f"{name}: MSA-2 {ack['MSA'][2]!r} != {control_id(raw)!r}")
                if ack["MSA"][1] != "AA" and "ERR" not in ack:
                    problems.append(f"{name}: {ack['MSA'][1]} without ERR")
                sent[raw] = ack["MSA"][1]
        # Still serving afterwards, on a new connection.
        assert segments(exchange(listener.port, adt("AFTER-CORPUS")))["MSA"][1] == "AA"
    assert problems == []
    with psycopg.connect(database_url) as conn:
        stored = conn.execute(
            "SELECT id, raw, raw_format, ack_code, status FROM hl7_inbound"
        ).fetchall()
    by_raw = {
        open_raw(CIPHER, id_, bytes(raw), raw_format): (code, status)
        for id_, raw, raw_format, code, status in stored
    }
    for raw, code in sent.items():
        assert raw in by_raw, "a corpus message was not stored byte for byte"
        assert by_raw[raw][0] == code
        assert by_raw[raw][1] == ("received" if code == "AA" else "quarantined")
    # The renalware S14/S26 files reuse a control id with other content: all stored.
    assert len(stored) == len(sent) + 1

    # The processing stage hands every accepted message over as CR-separated segments.
    handler = RecordingHandler()
    accepted = sum(1 for code in sent.values() if code == "AA") + 1
    assert processor_for(database_url, handler).process_pending(200) == accepted
    for message in handler.seen:
        assert message.text.startswith("MSH")
        assert "\n" not in message.text
        assert "\r\r" not in message.text


def test_the_corpus_through_the_listener_and_the_real_processing_stage(runtime):
    """The whole path ``serve`` runs: listener, durable store, processing stage applying
    each message through the applications. Every accepted message ends applied (or with
    a stated outcome) or quarantined with a domain reason; nothing stays unprocessed and
    nothing fails unexpectedly; the effects reach the applications and the read models."""
    from adapters.hl7.processor import InboundProcessor
    from projections.orders_view import PostgresOrderReader
    from tests.integration.test_inbound_effects import sync

    config = ListenerConfig(host="127.0.0.1", port=0)
    with (
        BackgroundListener(runtime.url, config, cipher=runtime.cipher) as listener,
        connect(listener.port) as sock,
    ):
        for name, _ in corpus():
            sock.sendall(b"\x0b" + (CORPUS / name).read_bytes() + b"\x1c\x0d")
            read_frame(sock)
    processor = InboundProcessor(runtime.pool, runtime.inbound, runtime.cipher)
    while processor.process_pending(50):
        pass

    with runtime.pool.connection() as conn:
        rows = conn.execute(
            "SELECT message_type, status, outcome, coalesce(error, '') FROM hl7_inbound"
        ).fetchall()
    assert {status for _, status, _, _ in rows} <= {"processed", "quarantined"}
    assert [error for *_, error in rows if error.startswith("unexpected")] == []
    applied = {kind for kind, status, outcome, _ in rows if outcome == "applied"}
    assert {"ADT", "ORM", "OMI", "ORU"} <= applied
    # The corpus's SIU name resources our demo centres do not have: processed, ignored.
    assert {outcome for kind, _, outcome, _ in rows if kind == "SIU"} >= {"ignored"}
    assert any(outcome == "kept_for_review" for _, _, outcome, _ in rows)

    services = runtime.services
    assert services.registry.patient_by_identifier("ADT1", "583295") is not None
    order = Orders(services.scheduling).find_order("MESA_ORDPLC:A103Z", "MESA_ORDFIL:B103Z")
    assert order is not None
    sync(runtime)
    orders = PostgresOrderReader(runtime.pool)
    assert any(row.id == order.id for row in orders.for_patient(order.patient_id))
    assert orders.unmatched()  # results for accessions nobody ordered, kept for review
