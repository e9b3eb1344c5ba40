"""The inbound MLLP listener against a real PostgreSQL: stored before ACKed, duplicates
ACKed again and applied once, garbage and half frames survived, many peers at once;
then the processing stage, the operator endpoints and the CLI."""

import contextlib
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from eventsourcing.cryptography import AESCipher

from adapters.at_rest import AtRestCipher
from adapters.hl7.framing import END, START, frame
from adapters.hl7.inbound_store import open_raw
from adapters.hl7.listener import BackgroundListener, ListenerConfig
from adapters.hl7.processor import InboundProcessor
from adapters.migrations import apply_migrations
from application.ris.inbound_ports import InboundHandler, InboundMessage
from domain.errors import DomainError
from tests.support import audit_rows, staff_headers

pytestmark = pytest.mark.integration
TIMEOUT = 10.0
# The event key of these tests' listeners and processors (stored messages are sealed).
KEY = AESCipher.create_key(32)
CIPHER = AtRestCipher(KEY)


def adt(control_id: str = "MSG0001", family: str = "DOE", version: str = "2.5.1") -> bytes:
    return (
        f"MSH|^~\\&|RIS|CENTRE|BRIDGE|US|20261127120000||ADT^A08^ADT_A01|{control_id}|P|{version}\r"
        "EVN|A08|20261127120000\r"
        f"PID|1||MRN123^^^CENTRE^MR||{family}^JANE||19800101|F\r"
    ).encode()


@pytest.fixture
def migrated(database_url: str) -> str:
    apply_migrations(database_url)
    return database_url


@pytest.fixture
def listener(migrated: str) -> Iterator[BackgroundListener]:
    config = ListenerConfig(host="127.0.0.1", port=0, idle_timeout=5.0, max_frame=64 * 1024)
    with BackgroundListener(migrated, config, cipher=CIPHER) as running:
        yield running


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    sock.settimeout(TIMEOUT)
    return sock


def read_frame(sock: socket.socket) -> bytes:
    """One MLLP frame's payload from the socket (bounded by the socket timeout)."""
    data = b""
    while END not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed after {data!r}")
        data += chunk
    start = data.index(START)
    return data[start + 1 : data.index(END)]


def exchange(port: int, payload: bytes) -> bytes:
    with connect(port) as sock:
        sock.sendall(frame(payload))
        return read_frame(sock)


def segments(ack: bytes) -> dict[str, list[str]]:
    """ACK segments by name, split on the field separator the ACK itself declares."""
    text = ack.decode("latin-1")
    separator = text[3]
    return {line[:3]: line.split(separator) for line in text.split("\r") if line}


def rows(url: str, where: str = "true", cipher: AtRestCipher = CIPHER) -> list[tuple]:
    """The stored messages, their raw bytes opened with the key."""
    with psycopg.connect(url) as conn:
        found = conn.execute(
            "SELECT id, status, raw, ack, control_id, duplicates, error, outcome, raw_format"
            f" FROM hl7_inbound WHERE {where} ORDER BY seq"
        ).fetchall()
    return [
        (row[0], row[1], open_raw(cipher, row[0], bytes(row[2]), row[8]), *row[3:8])
        for row in found
    ]


class RecordingHandler(InboundHandler):
    """Records what it is given; refuses messages whose PID names REFUSE."""

    def __init__(self) -> None:
        self.seen: list[InboundMessage] = []

    def handle(self, message: InboundMessage) -> str:
        if "REFUSE^" in message.text:
            raise DomainError("patient record locked")
        self.seen.append(message)
        return "applied"


# --- storing and acknowledging ----------------------------------------------------------


def test_a_message_is_stored_byte_for_byte_before_its_ack(listener, migrated):
    message = adt("STORE1")
    ack = segments(exchange(listener.port, message))
    assert ack["MSA"][1:3] == ["AA", "STORE1"]
    assert ack["MSH"][2:6] == ["BRIDGE", "US", "RIS", "CENTRE"]  # sender and receiver swapped
    assert ack["MSH"][8] == "ACK^A08^ACK"
    assert ack["MSH"][11] == "2.5.1"
    # The ACK was sent, so the row is already committed: no waiting.
    (row,) = rows(migrated)
    assert row[1] == "received"
    assert bytes(row[2]) == message


def test_a_duplicate_gets_the_same_ack_again_and_is_applied_once(listener, migrated):
    first = exchange(listener.port, adt("DUP1"))
    second = exchange(listener.port, adt("DUP1"))
    assert first == second
    (row,) = rows(migrated)
    assert row[5] == 1  # one duplicate seen
    handler = RecordingHandler()
    processor = processor_for(migrated, handler)
    assert processor.process_pending(10) == 1
    assert [m.control_id for m in handler.seen] == ["DUP1"]
    assert exchange(listener.port, adt("DUP1")) == first  # still the same ACK afterwards
    assert processor.process_pending(10) == 0


def test_a_reused_control_id_with_other_content_is_a_new_message(listener, migrated):
    first = segments(exchange(listener.port, adt("REUSED", family="DOE")))
    second = segments(exchange(listener.port, adt("REUSED", family="ROE")))
    assert first["MSA"][1:3] == second["MSA"][1:3] == ["AA", "REUSED"]
    assert first["MSH"][9] != second["MSH"][9]  # two ACKs, two control ids
    assert len(rows(migrated)) == 2
    handler = RecordingHandler()
    assert processor_for(migrated, handler).process_pending(10) == 2
    assert ["DOE" in m.text for m in handler.seen] == [True, False]


def test_garbage_is_answered_quarantined_and_the_connection_still_serves(listener, migrated):
    with connect(listener.port) as sock:
        sock.sendall(b"\x00\xff junk outside any frame \r\n")
        sock.sendall(frame(b"this is not HL7 at all"))
        garbage = segments(read_frame(sock))
        sock.sendall(b"more junk" + frame(adt("AFTER1")))
        after = segments(read_frame(sock))
    assert garbage["MSA"][1] == "AR"
    assert "ERR" in garbage
    assert after["MSA"][1:3] == ["AA", "AFTER1"]
    stored = rows(migrated)
    assert [r[1] for r in stored] == ["quarantined", "received"]
    assert bytes(stored[0][2]) == b"this is not HL7 at all"
    assert "no MSH" in stored[0][6]


def test_an_unsupported_type_gets_ar_with_err_and_is_quarantined(listener, migrated):
    message = adt("UNSUP1").replace(b"ADT^A08^ADT_A01", b"MDM^T02")
    ack = segments(exchange(listener.port, message))
    assert ack["MSA"][1:3] == ["AR", "UNSUP1"]
    assert ack["ERR"][3].startswith("200^")  # v2.5 ERR-3 with table 0357 code
    assert ack["ERR"][4] == "E"
    (row,) = rows(migrated)
    assert row[1] == "quarantined"


def test_a_half_frame_neither_stalls_its_connection_nor_others(listener, migrated):
    with connect(listener.port) as stuck, connect(listener.port) as other:
        stuck.sendall(START + adt("HALF1")[:40])  # never finished
        assert segments(exchange(listener.port, adt("OTHER1")))["MSA"][1] == "AA"
        other.sendall(frame(adt("OTHER2")))
        assert segments(read_frame(other))["MSA"][1] == "AA"
        # A new start byte gives the half frame up; the full one after it is answered.
        stuck.sendall(frame(adt("WHOLE1")))
        assert segments(read_frame(stuck))["MSA"][1:3] == ["AA", "WHOLE1"]
    assert [r[4] for r in rows(migrated)] == ["OTHER1", "OTHER2", "WHOLE1"]


def test_a_slow_client_does_not_hold_up_the_others(listener, migrated):
    message = frame(adt("SLOW1"))
    answers: list[bytes] = []
    first_bytes_sent = threading.Event()

    def slow() -> None:
        with connect(listener.port) as sock:
            for i in range(0, len(message), 8):
                sock.sendall(message[i : i + 8])
                first_bytes_sent.set()
                time.sleep(0.1)  # a peer trickling its bytes over ~2 s, not a wait for us
            answers.append(read_frame(sock))

    trickle = threading.Thread(target=slow)
    trickle.start()
    assert first_bytes_sent.wait(TIMEOUT)
    fast = segments(exchange(listener.port, adt("FAST1")))
    assert fast["MSA"][1] == "AA"
    assert trickle.is_alive()  # answered while the slow peer is still sending
    trickle.join(TIMEOUT)
    assert segments(answers[0])["MSA"][1:3] == ["AA", "SLOW1"]


def test_an_idle_connection_is_closed(migrated):
    config = ListenerConfig(host="127.0.0.1", port=0, idle_timeout=0.3)
    with (
        BackgroundListener(migrated, config, cipher=CIPHER) as running,
        connect(running.port) as sock,
    ):
        sock.sendall(START + b"MSH|^~\\&|")
        assert sock.recv(100) == b""  # closed by the listener, within the socket timeout


def test_an_oversize_frame_is_refused_and_the_connection_still_serves(listener, migrated):
    with connect(listener.port) as sock:
        sock.sendall(frame(adt("BIG1") + b"OBX|1|TX|||" + b"x" * 100_000 + b"\r"))
        assert segments(read_frame(sock))["MSA"][1:3] == ["AR", "BIG1"]
        sock.sendall(frame(adt("SMALL1")))
        assert segments(read_frame(sock))["MSA"][1:3] == ["AA", "SMALL1"]


def test_twenty_peers_at_once(listener, migrated):
    def peer(n: int) -> list[str]:
        codes = []
        with connect(listener.port) as sock:
            for i in range(5):
                sock.sendall(frame(adt(f"P{n}-{i}")))
                ack = segments(read_frame(sock))
                assert ack["MSA"][2] == f"P{n}-{i}"
                codes.append(ack["MSA"][1])
        return codes

    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(peer, range(20)))
    assert all(code == "AA" for codes in results for code in codes)
    assert len(rows(migrated)) == 100


# --- the sender's encoding characters and version ---------------------------------------


def test_the_ack_uses_the_senders_separators_and_version(listener):
    vista = (
        b"MSH^~|\\&^VISTA^500^PACS^200^20261127120000^^ORU~R01^V1^P^2.4\r"
        b"PID^1^^123~~~USVHA\rOBR^1\r"
    )
    ack = exchange(listener.port, vista).decode()
    assert ack.startswith("MSH^~|\\&^PACS^200^VISTA^500^")
    fields = ack.split("\r")[0].split("^")
    assert fields[8] == "ACK~R01~ACK"
    assert fields[11] == "2.4"
    assert ack.split("\r")[1] == "MSA^AA^V1"


def test_the_v27_truncation_character_is_kept(listener):
    message = adt("T27", version="2.7").replace(b"^~\\&", b"^~\\&#")
    ack = exchange(listener.port, message).decode()
    assert ack.startswith("MSH|^~\\&#|")
    assert segments(ack.encode())["MSH"][11] == "2.7"


def test_lf_and_crlf_separators_and_an_8859_1_charset(listener, migrated):
    text = "MSH|^~\\&|RIS|C|B|U|20261127||ADT^A04|LAT1|P|2.3|||||FRA|8859/1\nPID|1||9||Müller\n"
    ack = segments(exchange(listener.port, text.encode("latin-1")))
    assert ack["MSA"][1:3] == ["AA", "LAT1"]
    assert ack["MSH"][17] == "8859/1"
    crlf = adt("CRLF1").replace(b"\r", b"\r\n")
    assert segments(exchange(listener.port, crlf))["MSA"][1] == "AA"
    handler = RecordingHandler()
    processor_for(migrated, handler).process_pending(10)
    assert handler.seen[0].text.split("\r")[1] == "PID|1||9||Müller"
    assert handler.seen[1].text.count("\r") == 2
    assert "\n" not in handler.seen[1].text


# --- processing -------------------------------------------------------------------------


_pools: list = []


def processor_for(
    url: str, handler: InboundHandler, cipher: AtRestCipher = CIPHER
) -> InboundProcessor:
    from adapters.database import reader_pool

    pool = reader_pool(url, 2)
    _pools.append(pool)
    return InboundProcessor(pool, handler, cipher)


@pytest.fixture(autouse=True)
def _close_processor_pools() -> Iterator[None]:
    yield
    while _pools:
        _pools.pop().close()


def test_processing_marks_applied_and_refused_messages(listener, migrated):
    exchange(listener.port, adt("OK1"))
    exchange(listener.port, adt("NO1", family="REFUSE"))
    exchange(listener.port, adt("OK2"))
    handler = RecordingHandler()
    assert processor_for(migrated, handler).process_pending(10) == 3
    assert [m.control_id for m in handler.seen] == ["OK1", "OK2"]  # in order of arrival
    assert handler.seen[0].message_type == "ADT"
    assert handler.seen[0].trigger == "A08"
    statuses = [(r[4], r[1], r[6], r[7]) for r in rows(migrated)]
    assert statuses == [
        ("OK1", "processed", None, "applied"),
        ("NO1", "quarantined", "domain_error: patient record locked", None),
        ("OK2", "processed", None, "applied"),
    ]


def test_an_unexpected_handler_failure_quarantines_only_that_message(listener, migrated):
    exchange(listener.port, adt("BUG1"))
    exchange(listener.port, adt("FINE1"))

    class Buggy(InboundHandler):
        def handle(self, message: InboundMessage) -> str:
            if message.control_id == "BUG1":
                raise KeyError("oops")
            return "applied"

    assert processor_for(migrated, Buggy()).process_pending(10) == 2
    assert [(r[1], r[6]) for r in rows(migrated)] == [
        ("quarantined", "unexpected KeyError"),
        ("processed", None),
    ]


def test_a_passing_failure_leaves_the_message_waiting(listener, migrated):
    from application.errors import ConcurrencyError

    exchange(listener.port, adt("BUSY1"))
    tries: list[str] = []

    class Busy(InboundHandler):
        def handle(self, message: InboundMessage) -> str:
            tries.append(message.control_id)
            if len(tries) == 1:
                raise ConcurrencyError("the patient is being changed elsewhere; try again")
            return "applied"

    processor = processor_for(migrated, Busy())
    with pytest.raises(ConcurrencyError):
        processor.process_pending(10)
    assert [r[1] for r in rows(migrated)] == ["received"]
    assert processor.process_pending(10) == 1
    assert [(r[1], r[6]) for r in rows(migrated)] == [("processed", None)]
    assert tries == ["BUSY1", "BUSY1"]


def test_mllp_over_tls(migrated):
    import ssl

    import trustme

    authority = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    authority.configure_trust(client_context)
    config = ListenerConfig(host="127.0.0.1", port=0)
    with BackgroundListener(migrated, config, cipher=CIPHER, ssl_context=server_context) as running:
        raw = socket.create_connection(("127.0.0.1", running.port), timeout=TIMEOUT)
        with client_context.wrap_socket(raw, server_hostname="127.0.0.1") as sock:
            sock.settimeout(TIMEOUT)
            sock.sendall(frame(adt("TLS1")))
            assert segments(read_frame(sock))["MSA"][1:3] == ["AA", "TLS1"]
        # A plain-text peer on the TLS port gets nothing stored and does not stop it.
        with connect(running.port) as plain:
            plain.sendall(frame(adt("PLAIN1")))
            with contextlib.suppress(ConnectionError, TimeoutError):
                plain.recv(100)
        assert [r[4] for r in rows(migrated)] == ["TLS1"]
        # ... and TLS peers are still served after it.
        raw = socket.create_connection(("127.0.0.1", running.port), timeout=TIMEOUT)
        with client_context.wrap_socket(raw, server_hostname="127.0.0.1") as sock:
            sock.settimeout(TIMEOUT)
            sock.sendall(frame(adt("TLS2")))
            assert segments(read_frame(sock))["MSA"][1:3] == ["AA", "TLS2"]


class Crash(BaseException):
    """Stands in for the process dying in the middle of handling."""


def test_a_crash_while_handling_leaves_the_message_received(listener, migrated):
    exchange(listener.port, adt("CRASH1"))

    class Crashing(InboundHandler):
        def handle(self, message: InboundMessage) -> str:
            raise Crash()

    with pytest.raises(Crash):
        processor_for(migrated, Crashing()).process_pending(10)
    assert [r[1] for r in rows(migrated)] == ["received"]
    handler = RecordingHandler()
    assert processor_for(migrated, handler).process_pending(10) == 1
    assert [r[1] for r in rows(migrated)] == ["processed"]


def test_the_run_loop_processes_until_stopped(listener, migrated):
    handler = RecordingHandler()
    processor = processor_for(migrated, handler)
    stop = threading.Event()
    worker = threading.Thread(target=processor.run, args=(stop, 0.05))
    worker.start()
    try:
        exchange(listener.port, adt("LOOP1"))
        deadline = time.monotonic() + TIMEOUT
        while not handler.seen and time.monotonic() < deadline:
            time.sleep(0.02)  # bounded polling for the background loop
        assert [m.control_id for m in handler.seen] == ["LOOP1"]
    finally:
        stop.set()
        worker.join(TIMEOUT)
    assert not worker.is_alive()


# --- the operator view ------------------------------------------------------------------


@pytest.fixture
def wired_client(client):
    return client  # the composition root wires the inbound side into every app


def test_operators_list_show_and_replay_the_quarantine(wired_client, runtime, clock):
    url = runtime.url
    config = ListenerConfig(host="127.0.0.1", port=0)
    with BackgroundListener(url, config, cipher=runtime.cipher) as running:
        exchange(running.port, adt("GOOD1"))
        exchange(running.port, adt("BAD1", family="REFUSE"))
    handler = RecordingHandler()
    processor_for(url, handler, runtime.cipher).process_pending(10)
    headers = staff_headers(wired_client, runtime, clock, "admin")

    listed = wired_client.get("/v1/admin/hl7/inbound", headers=headers)
    assert listed.status_code == 200, listed.text
    (entry,) = listed.json()
    assert entry["control_id"] == "BAD1"
    assert entry["status"] == "quarantined"
    assert "raw" not in entry
    everything = wired_client.get("/v1/admin/hl7/inbound?status=all&limit=10", headers=headers)
    assert len(everything.json()) == 2

    shown = wired_client.get(f"/v1/admin/hl7/inbound/{entry['id']}", headers=headers).json()
    assert "PID|1||MRN123" in shown["raw"]
    assert "MSA|AA|BAD1" in shown["ack"]
    assert shown["error"] == "domain_error: patient record locked"

    missing = wired_client.get(f"/v1/admin/hl7/inbound/{uuid.uuid4()}", headers=headers)
    assert missing.status_code == 404
    no_reason = wired_client.post(
        f"/v1/admin/hl7/inbound/{entry['id']}/replay", json={"reason": ""}, headers=headers
    )
    assert no_reason.status_code == 422

    replayed = wired_client.post(
        f"/v1/admin/hl7/inbound/{entry['id']}/replay",
        json={"reason": "record unlocked"},
        headers=headers,
    )
    assert replayed.status_code == 200, replayed.text
    body = replayed.json()
    assert body["status"] == "received"
    (replay,) = body["replays"]
    assert replay["reason"] == "record unlocked"
    assert replay["actor_role"] == "admin"
    assert replay["previous_status"] == "quarantined"
    again = wired_client.post(
        f"/v1/admin/hl7/inbound/{entry['id']}/replay", json={"reason": "twice"}, headers=headers
    )
    assert again.status_code == 409  # already waiting for processing
    # Looking at the message (its raw text holds patient data) and replaying it are audited.
    runtime.services.access_log.flush()
    assert audit_rows(runtime.url, entry["id"]) == [
        ("read", "hl7_inbound", "admin", "", ""),
        ("replay", "hl7_inbound", "admin", "record unlocked", ""),
    ]

    class Unlocked(InboundHandler):
        def handle(self, message: InboundMessage) -> str:
            return "applied"

    assert processor_for(url, Unlocked(), runtime.cipher).process_pending(10) == 1
    assert wired_client.get("/v1/admin/hl7/inbound", headers=headers).json() == []


def test_patients_and_schedulers_may_not_see_inbound_messages(wired_client, runtime, clock):
    from tests.support import register

    patient = register(wired_client, "pat@example.org")
    assert wired_client.get("/v1/admin/hl7/inbound", headers=patient).status_code == 403
    scheduler = staff_headers(wired_client, runtime, clock, "scheduler", "s@example.org")
    assert wired_client.get("/v1/admin/hl7/inbound", headers=scheduler).status_code == 403
    assert wired_client.get("/v1/admin/hl7/inbound").status_code == 401


def test_the_cli_lists_shows_and_replays(migrated, listener, monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from imaging_bridge.hl7_cli import hl7_app

    exchange(listener.port, adt("CLI1").replace(b"ADT^A08^ADT_A01", b"MDM^T02"))
    monkeypatch.setenv("DATABASE_URL", migrated)
    monkeypatch.setenv("EVENT_CIPHER_KEY", KEY)  # the key the listener sealed with
    # The CLI configures logging for the process; here that would bind structlog to the
    # runner's captured output, closed after each invoke.
    monkeypatch.setattr("imaging_bridge.cli_common.configure_logging", lambda *_, **__: None)
    runner = CliRunner()
    listed = runner.invoke(hl7_app, ["list", "--data-dir", str(tmp_path)])
    assert listed.exit_code == 0, listed.output
    assert "CLI1" in listed.output
    assert "quarantined" in listed.output
    message_id = listed.output.split()[0]
    shown = runner.invoke(hl7_app, ["show", message_id, "--data-dir", str(tmp_path)])
    assert shown.exit_code == 0, shown.output
    assert "MSA|AR|CLI1" in shown.output
    assert "MDM^T02" in shown.output
    replayed = runner.invoke(
        hl7_app, ["replay", message_id, "--reason", "MDM now mapped", "--data-dir", str(tmp_path)]
    )
    assert replayed.exit_code == 0, replayed.output
    assert "received again" in replayed.output
    actions = [(row[0], row[3]) for row in audit_rows(migrated, message_id)]
    assert actions == [("read", ""), ("replay", "MDM now mapped")]
    missing = runner.invoke(
        hl7_app, ["replay", str(uuid.uuid4()), "--reason", "x", "--data-dir", str(tmp_path)]
    )
    assert missing.exit_code == 2
