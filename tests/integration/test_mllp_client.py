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
