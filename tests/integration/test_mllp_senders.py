"""Authenticated HL7 senders (HL7_SENDERS) on the real listener, real sockets and a real
PostgreSQL: an address no entry allows is closed before anything is read; a message
whose MSH-3/MSH-4 are not its entry's is answered AR, quarantined and never applied; an
entry with cn= needs a client certificate of that CN (mutual TLS); without HL7_SENDERS
development takes loopback peers only and production does not start the listener.

Loopback has a whole /8 on Linux, so 127.0.0.2 and 127.0.0.3 stand in for two hosts."""

import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from adapters.hl7.framing import frame
from adapters.hl7.listener import (
    BackgroundListener,
    ListenerConfig,
    ListenerSetupError,
    listener_config,
    ssl_context_from,
)
from adapters.hl7.processor import InboundProcessor
from adapters.hl7.senders import DEVELOPMENT_LOOPBACK, parse_senders
from adapters.migrations import apply_migrations
from adapters.settings import Settings
from tests.integration.test_hl7_listener import (
    CIPHER,
    TIMEOUT,
    RecordingHandler,
    adt,
    processor_for,
    read_frame,
    rows,
    segments,
)
from tests.integration.test_transport import UNREACHABLE, base_env, lowercase, production_secrets

pytestmark = pytest.mark.integration

RIS_HOST, LAB_HOST, STRANGER = "127.0.0.2", "127.0.0.3", "127.0.0.4"
SENDERS = f"ris={RIS_HOST};app=RIS;facility=CENTRE,lab={LAB_HOST},127.0.0.5;app=LAB;facility=LABCO"


def config_for(senders: str, **options: object) -> ListenerConfig:
    return ListenerConfig(host="127.0.0.1", port=0, senders=parse_senders(senders), **options)  # type: ignore[arg-type]


def connect_from(source: str, port: int, host: str = "127.0.0.1") -> socket.socket:
    sock = socket.create_connection((host, port), timeout=TIMEOUT, source_address=(source, 0))
    sock.settimeout(TIMEOUT)
    return sock


def exchange_from(source: str, port: int, payload: bytes) -> dict[str, list[str]]:
    with connect_from(source, port) as sock:
        sock.sendall(frame(payload))
        return segments(read_frame(sock))


def refused(sock: socket.socket, payload: bytes = b"") -> bool:
    """The listener closed the connection without answering (what it was sent, if
    anything, is never acknowledged)."""
    try:
        if payload:
            sock.sendall(frame(payload))
        return sock.recv(65536) == b""
    except (ConnectionError, ssl.SSLError):
        return True


def from_app(message: bytes, app: str = "RIS", facility: str = "CENTRE") -> bytes:
    return message.replace(b"|RIS|CENTRE|", f"|{app}|{facility}|".encode(), 1)


@pytest.fixture
def migrated(database_url: str) -> str:
    apply_migrations(database_url)
    return database_url


@pytest.fixture
def listener(migrated: str) -> Iterator[BackgroundListener]:
    with BackgroundListener(migrated, config_for(SENDERS), cipher=CIPHER) as running:
        yield running


# --- addresses ---------------------------------------------------------------------------


def test_an_address_no_entry_allows_is_closed_without_reading(listener, migrated):
    with connect_from(STRANGER, listener.port) as sock:
        assert refused(sock, adt("STRANGER1"))
    assert rows(migrated) == []  # nothing read, nothing stored
    # The entries' own addresses are served.
    assert exchange_from(RIS_HOST, listener.port, adt("RIS1"))["MSA"][1:3] == ["AA", "RIS1"]
    lab = from_app(adt("LAB1"), "LAB", "LABCO")
    assert exchange_from("127.0.0.5", listener.port, lab)["MSA"][1:3] == ["AA", "LAB1"]
    assert [r[4] for r in rows(migrated)] == ["RIS1", "LAB1"]


def test_without_senders_development_serves_loopback_peers_only(migrated):
    outside = non_loopback_address()
    config = ListenerConfig(host="0.0.0.0", port=0)  # reachable from outside
    assert config.senders == (DEVELOPMENT_LOOPBACK,)
    with BackgroundListener(migrated, config, cipher=CIPHER) as running:
        with connect_from(outside, running.port, host=outside) as sock:
            assert refused(sock, adt("OUTSIDE1"))
        answer = exchange_from("127.0.0.1", running.port, from_app(adt("LOCAL1"), "ANYONE"))
        assert answer["MSA"][1:3] == ["AA", "LOCAL1"]
    assert [r[4] for r in rows(migrated)] == ["LOCAL1"]


def non_loopback_address() -> str:
    """This machine's address on its default route (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("198.51.100.1", 9))  # TEST-NET-2: routed, never reached
        except OSError:
            pytest.skip("this machine has no non-loopback IPv4 address to test from")
        address = probe.getsockname()[0]
    if address.startswith("127."):
        pytest.skip("this machine has no non-loopback IPv4 address to test from")
    return str(address)


# --- MSH-3 / MSH-4 -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "app", "facility"),
    [
        (RIS_HOST, "ANYONE", "CENTRE"),  # another application
        (RIS_HOST, "RIS", "ELSEWHERE"),  # another facility
        (LAB_HOST, "RIS", "CENTRE"),  # the RIS's own header, from the lab's address
    ],
    ids=["msh3", "msh4", "other-entrys-header"],
)
def test_a_message_not_from_its_entrys_sender_is_refused_and_quarantined(
    listener, migrated, source, app, facility
):
    with connect_from(source, listener.port) as sock:
        sock.sendall(frame(from_app(adt("SPOOF1"), app, facility)))
        answer = segments(read_frame(sock))
        # The connection still serves its own sender afterwards.
        own = ("RIS", "CENTRE") if source == RIS_HOST else ("LAB", "LABCO")
        sock.sendall(frame(from_app(adt("OWN1"), *own)))
        assert segments(read_frame(sock))["MSA"][1:3] == ["AA", "OWN1"]
    assert answer["MSA"][1:3] == ["AR", "SPOOF1"]
    assert answer["ERR"][3] == "207^not an authorised sender^HL70357"
    spoof, own_row = rows(migrated)
    assert (spoof[1], spoof[4], spoof[6]) == (
        "quarantined",
        "SPOOF1",
        "207: not an authorised sender",
    )
    assert own_row[1] == "received"
    handler = RecordingHandler()
    assert processor_for(migrated, handler).process_pending(10) == 1
    assert [m.control_id for m in handler.seen] == ["OWN1"]  # the refused one never applied


def test_a_refused_message_does_not_get_the_ack_of_an_accepted_twin(listener, migrated):
    # Byte for byte what the RIS sent, replayed from the lab's address.
    assert exchange_from(RIS_HOST, listener.port, adt("TWIN1"))["MSA"][1] == "AA"
    replayed = exchange_from(LAB_HOST, listener.port, adt("TWIN1"))
    assert replayed["MSA"][1:3] == ["AR", "TWIN1"]
    handler = RecordingHandler()
    assert processor_for(migrated, handler).process_pending(10) == 1
    assert [m.control_id for m in handler.seen] == ["TWIN1"]  # applied once, for the RIS


def test_an_unauthorised_adt_does_not_change_the_patient(runtime):
    """The red team's case: an ADT^A08 naming a patient, from a sender that is not the
    RIS, through the real processing stage."""
    with BackgroundListener(runtime.url, config_for(SENDERS), cipher=runtime.cipher) as running:
        created = exchange_from(RIS_HOST, running.port, adt("REAL1", family="DOE"))
        forged = from_app(adt("FORGED1", family="MALLORY"), "ANYONE", "ANYWHERE")
        refusal = exchange_from(RIS_HOST, running.port, forged)
    assert (created["MSA"][1], refusal["MSA"][1]) == ("AA", "AR")
    processor = InboundProcessor(runtime.pool, runtime.inbound, runtime.cipher)
    assert processor.process_pending(10) == 1
    patient = runtime.services.registry.patient_by_identifier("CENTRE", "MRN123")
    assert patient is not None
    assert (patient.family_name, patient.given_name) == ("DOE", "JANE")


# --- client certificates -----------------------------------------------------------------


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, object]:
    """A CA for client certificates, the server's certificate, and two clients'."""
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1")
    files = {}
    for name, blob in (("cert", server.cert_chain_pems), ("key", [server.private_key_pem])):
        path = tmp_path / f"server.{name}"
        for part in blob:
            part.write_to_path(str(path), append=True)
        files[name] = path
    ca_file = tmp_path / "clients-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return {
        "ca": ca,
        "cert": files["cert"],
        "key": files["key"],
        "cafile": ca_file,
        "ris": ca.issue_cert("ris.centre.example", common_name="ris.centre.example"),
        "other": ca.issue_cert("other.example", common_name="other.example"),
        "stranger": trustme.CA().issue_cert("ris.centre.example", common_name="ris.centre.example"),
    }


def tls_settings(pki: dict, senders: str) -> Settings:
    return Settings(
        environment="test",
        tls_cert_file=pki["cert"],
        tls_key_file=pki["key"],
        hl7_tls_cafile=pki["cafile"],
        hl7_senders=senders,
        mllp_port=0,
    )


def tls_connect(pki: dict, source: str, port: int, client: object = None) -> ssl.SSLSocket:
    context = ssl.create_default_context()
    pki["ca"].configure_trust(context)  # type: ignore[attr-defined]
    if client is not None:
        client.configure_cert(context)  # type: ignore[attr-defined]
    raw = connect_from(source, port)
    sock = context.wrap_socket(raw, server_hostname="127.0.0.1")
    sock.settimeout(TIMEOUT)
    return sock


def tls_refused(pki: dict, source: str, port: int, client: object = None) -> bool:
    """Refused during the handshake or right after it, never answered."""
    try:
        sock = tls_connect(pki, source, port, client)
    except (ssl.SSLError, ConnectionError):
        return True
    with sock:
        return refused(sock, adt("NOCERT1"))


def test_an_entry_with_cn_needs_a_client_certificate_with_that_cn(migrated, pki):
    settings = tls_settings(pki, f"ris={RIS_HOST};app=RIS;facility=CENTRE;cn=ris.centre.example")
    config, context = listener_config(settings), ssl_context_from(settings)
    assert context is not None
    assert context.verify_mode == ssl.CERT_REQUIRED
    with BackgroundListener(migrated, config, cipher=CIPHER, ssl_context=context) as running:
        assert tls_refused(pki, RIS_HOST, running.port)  # no certificate
        assert tls_refused(pki, RIS_HOST, running.port, pki["other"])  # another CN
        assert tls_refused(pki, RIS_HOST, running.port, pki["stranger"])  # another CA
        with tls_connect(pki, RIS_HOST, running.port, pki["ris"]) as sock:
            sock.sendall(frame(adt("MTLS1")))
            assert segments(read_frame(sock))["MSA"][1:3] == ["AA", "MTLS1"]
    assert [r[4] for r in rows(migrated)] == ["MTLS1"]


def test_entries_with_and_without_cn_on_one_listener(migrated, pki):
    settings = tls_settings(
        pki,
        f"ris={RIS_HOST};app=RIS;facility=CENTRE;cn=ris.centre.example,"
        f"lab={LAB_HOST};app=LAB;facility=LABCO",
    )
    context = ssl_context_from(settings)
    assert context is not None
    assert context.verify_mode == ssl.CERT_OPTIONAL
    config = listener_config(settings)
    with BackgroundListener(migrated, config, cipher=CIPHER, ssl_context=context) as running:
        assert tls_refused(pki, RIS_HOST, running.port)  # the RIS's entry wants its cert
        with tls_connect(pki, LAB_HOST, running.port) as sock:  # the lab's does not
            sock.sendall(frame(from_app(adt("LABTLS1"), "LAB", "LABCO")))
            assert segments(read_frame(sock))["MSA"][1:3] == ["AA", "LABTLS1"]
        with tls_connect(pki, RIS_HOST, running.port, pki["ris"]) as sock:
            sock.sendall(frame(adt("RISTLS1")))
            assert segments(read_frame(sock))["MSA"][1:3] == ["AA", "RISTLS1"]
    assert [r[4] for r in rows(migrated)] == ["LABTLS1", "RISTLS1"]


# --- start-up ----------------------------------------------------------------------------


def test_the_listener_configuration_comes_from_the_settings(tmp_path, pki):
    development = listener_config(Settings(environment="development", data_dir=tmp_path))
    assert development.senders == (DEVELOPMENT_LOOPBACK,)
    assert development.senders_note == ("HL7_SENDERS unset: only loopback peers may send")
    production = Settings(data_dir=tmp_path, **lowercase(production_secrets()))
    with pytest.raises(ListenerSetupError, match="ENVIRONMENT=production needs HL7_SENDERS"):
        listener_config(production)
    configured = listener_config(production.model_copy(update={"hl7_senders": SENDERS}))
    assert [s.name for s in configured.senders] == ["ris", "lab"]
    assert configured.senders_note == "senders: ris, lab"

    with_cn = f"ris={RIS_HOST};app=RIS;facility=CENTRE;cn=ris.centre.example"
    no_tls = Settings(environment="test", hl7_senders=with_cn)
    with pytest.raises(ListenerSetupError, match="needs TLS_CERT_FILE and TLS_KEY_FILE"):
        listener_config(no_tls)
    no_ca = tls_settings(pki, with_cn).model_copy(update={"hl7_tls_cafile": None})
    with pytest.raises(ListenerSetupError, match="set HL7_TLS_CAFILE"):
        listener_config(no_ca)


def test_caps_and_deadlines_come_from_the_settings(monkeypatch):
    for name, value in {
        "MLLP_MAX_CONNECTIONS": "50",
        "MLLP_MAX_CONNECTIONS_PER_ADDRESS": "5",
        "MLLP_MAX_BUFFERED_BYTES": "1000000",
        "MLLP_MAX_FRAME_BYTES": "65536",
        "MLLP_FRAME_TIMEOUT": "7.5",
        "MLLP_IDLE_TIMEOUT": "60",
    }.items():
        monkeypatch.setenv(name, value)
    config = listener_config(Settings(environment="test"))
    assert (config.limits.max_connections, config.limits.max_connections_per_address) == (50, 5)
    assert (config.limits.max_buffered, config.max_frame) == (1_000_000, 65536)
    assert (config.frame_timeout, config.idle_timeout) == (7.5, 60.0)
    defaults = ListenerConfig()
    assert (defaults.limits.max_connections, defaults.limits.max_connections_per_address) == (
        200,
        20,
    )
    assert (defaults.limits.max_buffered, defaults.frame_timeout) == (64 * 1024 * 1024, 30.0)


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "imaging_bridge", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


@pytest.mark.e2e
def test_mllp_listen_refuses_to_start_in_production_without_senders(tmp_path):
    # The database is unreachable on purpose: the refusal comes before any connection.
    env = base_env(DATABASE_URL=UNREACHABLE, DATA_DIR=str(tmp_path), **production_secrets())
    env.pop("HL7_SENDERS", None)
    result = run_cli("mllp-listen", "--mllp-port", "0", env=env)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ENVIRONMENT=production needs HL7_SENDERS")


@pytest.mark.e2e
def test_serve_refuses_to_start_the_listener_in_production_without_senders(database_url, tmp_path):
    env = base_env(DATABASE_URL=database_url, DATA_DIR=str(tmp_path), **production_secrets())
    env.pop("HL7_SENDERS", None)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = run_cli("serve", "--port", str(port), "--mllp-port", "0", env=env)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error")]
    assert errors == [
        "error: ENVIRONMENT=production needs HL7_SENDERS to start the HL7 listener"
        " (who may send: name=ADDRESS[,ADDRESS…];app=MSH-3;facility=MSH-4[;cn=CN],"
        " comma-separated)"
    ], result.stderr
    assert "Traceback" not in result.stderr
    assert "Imaging Bridge API on" not in result.stdout
