"""Every message of the HL7 corpus (``tests/hl7_corpus``, a copy of the team's shared
corpus kept in the repository) is exercised and its ACK code compared with
``expected.tsv``: the 73 messages a RIS would send us go to the listener over MLLP and get
an allowed ACK with their own MSH-10 and are stored byte for byte, the listener serving
throughout; the 6 ``ack-reader:`` rows are ACKs a RIS might answer our outbound messages
with, and our MLLP client must read each one's MSA-1 as the row says."""

import socket
import threading
from collections.abc import Iterator

import psycopg
import pytest

from adapters.hl7.inbound_store import open_raw
from adapters.hl7.listener import BackgroundListener, ListenerConfig
from adapters.hl7.mllp_client import MllpClient
from application.ris.orders import Orders
from domain.ris.message_delivery import ACCEPTED, REJECTED_PERMANENT, REJECTED_RETRYABLE
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
from tests.support import hl7_corpus

CORPUS = hl7_corpus()
ACK_READER = "ack-reader:"


def expected_rows() -> list[tuple[str, str]]:
    """(file, expected codes) of every row of ``expected.tsv``."""
    rows = []
    for line in (CORPUS / "expected.tsv").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, codes = line.split("\t")[:2]
        rows.append((name, codes))
    return rows


def corpus() -> list[tuple[str, list[str]]]:
    """The messages sent to the listener, with the ACK codes each may get."""
    return [
        (name, codes.split(","))
        for name, codes in expected_rows()
        if not codes.startswith(ACK_READER)
    ]


def acks() -> list[tuple[str, str]]:
    """The ACKs our outbound side must read, with the MSA-1 it must read from each."""
    return [
        (name, codes.removeprefix(ACK_READER))
        for name, codes in expected_rows()
        if codes.startswith(ACK_READER)
    ]


def control_id(raw: bytes) -> str:
    """MSH-10 read independently of the listener: the first line from MSH, split on the
    field separator that follows ``MSH``."""
    header = raw[raw.index(b"MSH") :].replace(b"\n", b"\r").split(b"\r")[0].decode("latin-1")
    fields = header.split(header[3])
    return fields[9] if len(fields) > 9 else ""


def acknowledged_id(raw: bytes) -> str:
    """MSA-2 of an ACK (the control id it answers), read independently of the client."""
    text = raw.decode("utf-8").replace("\n", "\r")
    separator = text[text.index("MSH") + 3]
    for line in text.split("\r"):
        fields = line.split(separator)
        if fields[0] == "MSA":
            return fields[2] if len(fields) > 2 else ""
    raise AssertionError("the corpus ACK has no MSA segment")


pytestmark = pytest.mark.integration


def test_expected_tsv_lists_every_corpus_file_once_and_nothing_else():
    listed = [name for name, _ in expected_rows()]
    on_disk = sorted(str(path.relative_to(CORPUS)) for path in CORPUS.rglob("*.hl7"))
    assert sorted(listed) == on_disk
    assert len(set(listed)) == len(listed) == 79
    assert (CORPUS / "SOURCES.md").is_file()
    for name in listed:
        assert f"`{name}`" in (CORPUS / "SOURCES.md").read_text(), f"{name} has no source"


def test_the_corpus_has_79_messages_of_which_73_are_sent_and_6_are_acks():
    assert len(corpus()) == 73
    assert len(acks()) == 6
    assert {code for _, codes in corpus() for code in codes} <= {"AA", "CA", "AE", "AR"}
    assert {code for _, code in acks()} == {"AA", "AE", "AR"}


class AnsweringPeer:
    """A real MLLP peer on loopback (the RIS): it reads one message per connection and
    answers it with the next bytes put in ``answers``, framed."""

    def __init__(self) -> None:
        self.answers: list[bytes] = []
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.2)
        self.port: int = self.server.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)

    def serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(10)
                received = b""
                while not received.endswith(b"\x1c\x0d"):
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    received += chunk
                conn.sendall(b"\x0b" + self.answers.pop(0) + b"\x1c\x0d")


@pytest.fixture
def ris() -> Iterator[AnsweringPeer]:
    peer = AnsweringPeer()
    peer.thread.start()
    yield peer
    peer.stop.set()
    peer.thread.join(5)
    peer.server.close()


OUTCOMES = {"AA": ACCEPTED, "AE": REJECTED_RETRYABLE, "AR": REJECTED_PERMANENT}


@pytest.mark.parametrize(("name", "code"), acks(), ids=[name for name, _ in acks()])
def test_our_mllp_client_reads_each_corpus_ack_as_expected(ris, name, code):
    """Given a RIS that answers with a corpus ACK, when our client sends it a message,
    then the client reads the ACK's MSA-1 as ``expected.tsv`` says, with its outcome."""
    raw = (CORPUS / name).read_bytes()
    ris.answers.append(raw)
    answered = acknowledged_id(raw)
    message = (
        "MSH|^~\\&|IMGBRIDGE|IMGBRIDGE|RIS|RIS|20261130120000||ADT^A08^ADT_A01|"
        f"{answered}|P|2.5.1\rEVN|A08|20261130120000"
    )
    result = MllpClient("127.0.0.1", ris.port, timeout=10).send(message, answered)
    assert (result.code, result.outcome) == (code, OUTCOMES[code]), result.detail
    assert ris.answers == []


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
