"""The MLLP client against raw peers on loopback: it reads an ACK as tolerantly as our
listener reads messages (no final CR, junk before the start byte)."""

import socket
import threading
from collections.abc import Iterator

import pytest

from adapters.hl7.mllp_client import MllpClient
from domain.ris.message_delivery import ACCEPTED, NO_ANSWER

MESSAGE = "MSH|^~\\&|IMGBRIDGE|IMGBRIDGE|RIS|RIS|20261130120000||ADT^A04^ADT_A01|C1|P|2.5.1"
ACK = b"MSH|^~\\&|RIS|RIS|IMGBRIDGE|IMGBRIDGE|20261130120000||ACK|A1|P|2.5.1\rMSA|AA|C1"


@pytest.fixture
def peer_answering() -> Iterator[tuple[int, list[bytes]]]:
    """A peer that answers each connection with the bytes put in the list, then holds
    the connection open (as a peer that forgets the final CR would)."""
    answers: list[bytes] = []
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.recv(65536)
                conn.sendall(answers.pop(0))
                stop.wait(2)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], answers
    stop.set()
    thread.join(5)
    server.close()


@pytest.mark.parametrize(
    "answer",
    [b"\x0b" + ACK + b"\x1c\x0d", b"\x0b" + ACK + b"\x1c", b"junk\x0b" + ACK + b"\x1c"],
    ids=["framed", "no final CR", "junk first"],
)
def test_an_ack_is_read_however_the_peer_ends_it(peer_answering, answer):
    port, answers = peer_answering
    answers.append(answer)
    result = MllpClient("127.0.0.1", port, timeout=5.0).send(MESSAGE, "C1")
    assert (result.outcome, result.code) == (ACCEPTED, "AA")


def test_a_half_ack_is_no_answer(peer_answering):
    port, answers = peer_answering
    answers.append(b"\x0b" + ACK)
    result = MllpClient("127.0.0.1", port, timeout=0.5).send(MESSAGE, "C1")
    assert (result.outcome, result.code) == (NO_ANSWER, "TIMEOUT")


def test_an_ack_over_tls_checked_against_our_ca(tmp_path):
    import ssl

    import trustme

    from adapters.hl7.mllp_client import tls_context

    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    cafile = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(cafile))
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = server.accept()
        with server_context.wrap_socket(conn, server_side=True) as tls:
            tls.recv(65536)
            tls.sendall(b"\x0b" + ACK + b"\x1c\x0d")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    client = MllpClient(
        "127.0.0.1", server.getsockname()[1], timeout=5.0, tls=tls_context(str(cafile))
    )
    result = client.send(MESSAGE, "C1")
    thread.join(5)
    server.close()
    assert (result.outcome, result.code) == (ACCEPTED, "AA")
    # The same peer is refused when its certificate is checked against the system's CAs.
    other = socket.create_server(("127.0.0.1", 0))
    untrusted = MllpClient("127.0.0.1", other.getsockname()[1], timeout=5.0, tls=tls_context())

    def refuse() -> None:
        conn, _ = other.accept()
        try:
            with server_context.wrap_socket(conn, server_side=True) as tls:
                tls.recv(1)
        except (ssl.SSLError, OSError):
            pass

    refusing = threading.Thread(target=refuse, daemon=True)
    refusing.start()
    assert untrusted.send(MESSAGE, "C1").code == "TLS"
    refusing.join(5)
    other.close()


class ClosingPeer:
    """A peer that ACKs AA each message it reads and, when told to, closes the
    connection after its ACK (as a receiver that closes idle connections does); it
    counts the connections it accepted and the messages it read, per MSH-10."""

    def __init__(self, close_after: set[str]) -> None:
        self.close_after = close_after
        self.connections = 0
        self.received: list[str] = []
        self.closed = threading.Event()
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                buffer = b""
                while chunk := conn.recv(65536):
                    buffer += chunk
                    while b"\x1c\x0d" in buffer:
                        message, _, buffer = buffer.partition(b"\x1c\x0d")
                        control = message.decode().split("\r")[0].split("|")[9]
                        self.received.append(control)
                        ack = ACK.replace(b"MSA|AA|C1", b"MSA|AA|" + control.encode())
                        conn.sendall(b"\x0b" + ack + b"\x1c\x0d")
                        if control in self.close_after:
                            break
                    else:
                        continue
                    break
            self.closed.set()

    def close(self) -> None:
        self.server.close()
        self.thread.join(5)


def message(control_id: str) -> str:
    return MESSAGE.replace("|C1|", f"|{control_id}|")


def test_one_connection_carries_message_after_message():
    peer = ClosingPeer(close_after=set())
    client = MllpClient("127.0.0.1", peer.port, timeout=5.0)
    try:
        outcomes = [client.send(message(f"C{n}"), f"C{n}").outcome for n in range(3)]
    finally:
        client.close()
        peer.close()
    assert outcomes == [ACCEPTED] * 3
    assert peer.connections == 1
    assert peer.received == ["C0", "C1", "C2"]


def test_a_connection_the_peer_closed_between_messages_is_opened_again():
    peer = ClosingPeer(close_after={"C1"})
    client = MllpClient("127.0.0.1", peer.port, timeout=5.0)
    try:
        first = client.send(message("C1"), "C1")
        assert peer.closed.wait(5)  # the peer closed the kept connection
        second = client.send(message("C2"), "C2")
    finally:
        client.close()
        peer.close()
    assert (first.outcome, second.outcome) == (ACCEPTED, ACCEPTED)
    assert peer.received == ["C1", "C2"]  # each delivered once
    assert peer.connections == 2


def test_a_connection_is_not_used_again_after_an_unclean_answer(peer_answering):
    port, answers = peer_answering
    # Two ACKs to one message: the second would be read as the next message's answer.
    answers.append(b"\x0b" + ACK + b"\x1c\x0d\x0b" + ACK + b"\x1c\x0d")
    answers.append(b"\x0b" + ACK.replace(b"C1", b"C2") + b"\x1c\x0d")
    client = MllpClient("127.0.0.1", port, timeout=5.0)
    try:
        first = client.send(MESSAGE, "C1")
        second = client.send(message("C2"), "C2")
    finally:
        client.close()
    assert (first.outcome, second.outcome) == (ACCEPTED, ACCEPTED)
    assert second.code == "AA"
