"""What one MLLP peer may hold, on the real listener with real sockets and PostgreSQL:
connection caps (overall and per address), a deadline for each frame that trickling
bytes do not extend, an idle deadline that bytes outside frames do not extend, one
budget for the bytes of unfinished frames across connections; and no byte sequence from
an authorised sender stops the listener (Hypothesis)."""

import select
import socket
import time
from collections.abc import Callable, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.hl7.admission import Limits
from adapters.hl7.framing import END, START, frame
from adapters.hl7.listener import BackgroundListener, ListenerConfig
from adapters.hl7.senders import parse_senders
from adapters.migrations import apply_migrations
from tests.integration.test_hl7_listener import (
    CIPHER,
    TIMEOUT,
    adt,
    connect,
    read_frame,
    rows,
    segments,
)
from tests.integration.test_mllp_senders import connect_from, refused

pytestmark = pytest.mark.integration


@pytest.fixture
def migrated(database_url: str) -> str:
    apply_migrations(database_url)
    return database_url


def serving(url: str, **options: object) -> BackgroundListener:
    return BackgroundListener(
        url, ListenerConfig(host="127.0.0.1", port=0, **options), cipher=CIPHER
    )  # type: ignore[arg-type]


def eventually(condition: Callable[[], bool], timeout: float = TIMEOUT) -> bool:
    """Bounded polling of the listener's own counters, which change on its thread."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def answered(sock: socket.socket, control_id: str) -> bool:
    sock.sendall(frame(adt(control_id)))
    return segments(read_frame(sock))["MSA"][1:3] == ["AA", control_id]


# --- connection caps ---------------------------------------------------------------------


def test_a_connection_over_the_cap_is_closed_at_once_and_the_others_still_work(migrated):
    with serving(migrated, limits=Limits(max_connections=3)) as running:
        open_ones = [connect(running.port) for _ in range(3)]
        try:
            for n, sock in enumerate(open_ones):
                assert answered(sock, f"IN{n}")
            with connect(running.port) as fourth:
                started = time.monotonic()
                assert refused(fourth, adt("OVER1"))
                assert time.monotonic() - started < 2  # at once, not at a timeout
            for n, sock in enumerate(open_ones):
                assert answered(sock, f"AGAIN{n}")
            open_ones.pop().close()
            assert eventually(lambda: running.listener.admission.connections == 2)
            with connect(running.port) as replacement:
                assert answered(replacement, "FREED1")
        finally:
            for sock in open_ones:
                sock.close()
    assert "OVER1" not in [r[4] for r in rows(migrated)]


def test_one_address_may_hold_only_its_share(migrated):
    limits = Limits(max_connections=10, max_connections_per_address=2)
    with (
        serving(migrated, limits=limits) as running,
        connect_from("127.0.0.2", running.port) as a,
        connect_from("127.0.0.2", running.port) as b,
    ):
        assert answered(a, "A1")
        assert answered(b, "B1")
        with connect_from("127.0.0.2", running.port) as third:
            assert refused(third, adt("THIRD1"))
        with connect_from("127.0.0.3", running.port) as elsewhere:
            assert answered(elsewhere, "ELSEWHERE1")
        assert answered(a, "A2")


# --- deadlines ---------------------------------------------------------------------------


def seconds_until_closed(sock: socket.socket, byte: bytes, every: float, limit: float) -> float:
    """Send ``byte`` every ``every`` seconds until the listener closes the connection;
    how long that took (or ``limit`` when it did not)."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        try:
            sock.sendall(byte)
        except ConnectionError:
            return time.monotonic() - started
        readable, _, _ = select.select([sock], [], [], every)
        if readable:
            try:
                data = sock.recv(65536)
            except ConnectionError:
                data = b""
            assert data == b"", f"the listener answered a frame never finished: {data!r}"
            return time.monotonic() - started
    return limit


def test_a_trickling_frame_is_cut_at_its_deadline(migrated):
    with serving(migrated, frame_timeout=1.0, idle_timeout=60.0) as running:
        with connect(running.port) as sock:
            sock.sendall(START)
            took = seconds_until_closed(sock, b"x", every=0.2, limit=8.0)
        assert 0.8 <= took < 4.0  # the frame's deadline, not the idle one, ended it
        assert eventually(lambda: running.listener.admission.buffered == 0)
        assert segments(read_frame_of(running.port, "AFTER1"))["MSA"][1] == "AA"
    assert [r[4] for r in rows(migrated)] == ["AFTER1"]


def test_bytes_outside_frames_do_not_keep_a_connection_open(migrated):
    with (
        serving(migrated, frame_timeout=30.0, idle_timeout=1.0) as running,
        connect(running.port) as sock,
    ):
        took = seconds_until_closed(sock, b"\r", every=0.2, limit=8.0)
    assert 0.8 <= took < 4.0


def test_a_peer_that_keeps_sending_whole_frames_stays_connected(migrated):
    with (
        serving(migrated, frame_timeout=1.0, idle_timeout=1.0) as running,
        connect(running.port) as sock,
    ):
        for n in range(8):  # ~2 s in all, twice either deadline
            assert answered(sock, f"STEADY{n}")
            time.sleep(0.25)  # the peer's own pace between messages


def read_frame_of(port: int, control_id: str) -> bytes:
    with connect(port) as sock:
        sock.sendall(frame(adt(control_id)))
        return read_frame(sock)


# --- the buffered-bytes budget -----------------------------------------------------------


def test_unfinished_frames_share_one_budget_and_it_is_given_back(migrated):
    limits = Limits(max_buffered=100_000)
    with serving(migrated, limits=limits, max_frame=80_000) as running:
        admission = running.listener.admission
        big = adt("BIG1") + b"NTE|1||" + b"x" * 70_000 + b"\r"  # under max_frame
        with connect(running.port) as first, connect(running.port) as second:
            first.sendall(START + big[:60_000])
            assert eventually(lambda: admission.buffered == 60_000)
            second.sendall(START + b"y" * 60_000)  # would take the total past 100 000
            assert refused(second)
            assert eventually(lambda: admission.buffered == 60_000)
            first.sendall(big[60_000:] + END + b"\r")  # the first one still finishes
            assert segments(read_frame(first))["MSA"][1:3] == ["AA", "BIG1"]
            assert admission.buffered == 0
            first.sendall(START + b"z" * 50_000)
            assert eventually(lambda: admission.buffered == 50_000)
        # Connections gone, their half frames with them.
        assert eventually(lambda: admission.buffered == 0 and admission.connections == 0)


def test_many_half_frames_are_all_given_back_when_their_peers_leave(migrated):
    with serving(migrated, max_frame=64 * 1024) as running:
        admission = running.listener.admission
        peers = [connect(running.port) for _ in range(10)]
        for sock in peers:
            sock.sendall(START + b"h" * 50_000)
        assert eventually(lambda: admission.buffered == 500_000)
        assert admission.connections == 10
        for sock in peers:
            sock.close()
        assert eventually(lambda: admission.buffered == 0 and admission.connections == 0)


# --- no byte sequence stops the listener --------------------------------------------------

MAX_FRAME = 2048
noise = st.binary(max_size=300) | st.sampled_from([START, END, START + END, b"\r", b"\x00"])
inside = st.binary(max_size=3 * MAX_FRAME) | st.text(max_size=200).map(
    lambda text: b"MSH|^~\\&|RIS|CENTRE|B|U|2026||ADT^A08|X|P|2.5.1\rPID|" + text.encode()
)


@pytest.fixture
def authorised_listener(migrated: str) -> Iterator[BackgroundListener]:
    config = ListenerConfig(
        host="127.0.0.1",
        port=0,
        max_frame=MAX_FRAME,
        frame_timeout=5.0,
        idle_timeout=5.0,
        senders=parse_senders("ris=127.0.0.1;app=RIS;facility=CENTRE"),
    )
    with BackgroundListener(migrated, config, cipher=CIPHER) as running:
        yield running


class Frames:
    """ACK frames from a socket, one at a time, keeping what a read brought beyond one."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.data = b""

    def next(self) -> bytes:
        while END not in self.data:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"closed after {self.data!r}")
            self.data += chunk
        end = self.data.index(END)
        payload = self.data[self.data.index(START) + 1 : end]
        self.data = self.data[end + 2 :]
        return payload


def test_no_bytes_from_an_authorised_sender_stop_the_listener(authorised_listener, migrated):
    """Random bytes before, inside and after valid framing, then a valid message on the
    same connection: that message still gets its AA (one listener for every example)."""
    port = authorised_listener.port
    sent: list[str] = []

    @settings(
        max_examples=50,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(before=noise, payload=inside, after=noise)
    def property_(before: bytes, payload: bytes, after: bytes) -> None:
        control_id = f"VALID{len(sent)}"
        sent.append(control_id)
        with connect(port) as sock:
            sock.sendall(before + START + payload + END + b"\r" + after + frame(adt(control_id)))
            frames = Frames(sock)
            while True:  # an ACK for each frame the noise made, then ours
                answer = segments(frames.next())
                if answer["MSA"][1:3] == ["AA", control_id]:
                    break

    property_()
    assert segments(read_frame_of(port, "LAST1"))["MSA"][1:3] == ["AA", "LAST1"]
    assert eventually(lambda: authorised_listener.listener.admission.connections == 0)
    assert authorised_listener.listener.admission.buffered == 0
    stored = {r[4]: r[1] for r in rows(migrated)}
    assert len(sent) >= 50
    assert {control_id: stored.get(control_id) for control_id in [*sent, "LAST1"]} == dict.fromkeys(
        [*sent, "LAST1"], "received"
    )
