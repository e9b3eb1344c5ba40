"""Control characters on the HL7 path (issue 9, finding 2): a message holding one that
HL7 does not allow is answered AR with an ERR naming the segment and field, kept in
quarantine and never applied; the read models keep working after it. Real MLLP over
loopback into the listener, the real processing stage and applications, real PostgreSQL."""

from collections.abc import Iterator

import psycopg
import pytest

from adapters.hl7.framing import frame
from adapters.hl7.listener import BackgroundListener, ListenerConfig
from adapters.hl7.processor import InboundProcessor
from application.ris.orders import Orders
from projections.orders_view import PostgresOrderReader
from tests.integration.test_hl7_listener import connect, exchange, read_frame, segments
from tests.integration.test_inbound_effects import sync

pytestmark = pytest.mark.integration


def orm(
    control_id: str,
    *,
    version: str = "2.5.1",
    family: str = "CTRLTEST",
    procedure: str = "CTHEAD^CT head without contrast",
    second_procedure: str = "",
    placer: str = "PL-1",
) -> bytes:
    """A new-order ORM^O01 naming a patient the bridge does not know yet (it creates
    them: name and birth date are there)."""
    segments_ = [
        f"MSH|^~\\&|RIS|CENTRE|BRIDGE|US|20261130120000||ORM^O01|{control_id}|P|{version}",
        f"PID|1||MRN-{placer}^^^CENTRE^MR||{family}^ALEX||19750312|F",
        f"ORC|NW|{placer}^RIS|F{placer}^RIS",
        f"OBR|1|{placer}^RIS|F{placer}^RIS|{procedure}|||20261130120000",
    ]
    if second_procedure:
        segments_ += [
            f"ORC|NW|{placer}B^RIS|F{placer}B^RIS",
            f"OBR|2|{placer}B^RIS|F{placer}B^RIS|{second_procedure}|||20261130120000",
        ]
    return ("\r".join(segments_) + "\r").encode("utf-8")


@pytest.fixture
def listener(runtime) -> Iterator[BackgroundListener]:
    config = ListenerConfig(host="127.0.0.1", port=0, idle_timeout=5.0)
    with BackgroundListener(runtime.url, config, cipher=runtime.cipher) as running:
        yield running


def process_all(runtime) -> int:
    """The processing stage ``serve`` runs, over everything stored."""
    processor = InboundProcessor(runtime.pool, runtime.inbound, runtime.cipher)
    return processor.process_pending(100)


def stored(runtime) -> list[tuple[str, str, str, str | None]]:
    with psycopg.connect(runtime.url) as conn:
        return conn.execute(
            "SELECT control_id, ack_code, status, error FROM hl7_inbound ORDER BY seq"
        ).fetchall()


def test_a_nul_in_obr_4_is_refused_and_the_orders_read_model_keeps_working(runtime, listener):
    scheduling = runtime.services.scheduling
    # Given an order whose procedure (OBR-4) holds a NUL byte
    poisoned = orm("NUL-OBR", procedure="CTHEAD^CT head\x00 without contrast", placer="PL-NUL")

    # When the RIS sends it
    ack = segments(exchange(listener.port, poisoned))

    # Then it is refused, and the ERR says where: ERR-2 is OBR^1^4 (segment, sequence,
    # field), ERR-3 a data type error (HL7 table 0357 code 102)
    assert ack["MSA"][1:3] == ["AR", "NUL-OBR"]
    assert ack["ERR"][2] == "OBR^1^4"
    assert ack["ERR"][3].startswith("102^control character 0x00 not allowed in OBR-4^")
    assert ack["ERR"][4] == "E"
    assert stored(runtime) == [
        ("NUL-OBR", "AR", "quarantined", "102: control character 0x00 not allowed in OBR-4")
    ]
    # ... and nothing of it is applied
    assert process_all(runtime) == 0
    assert Orders(scheduling).find_order("RIS:PL-NUL", "RIS:FPL-NUL") is None
    assert runtime.services.registry.patient_by_identifier("CENTRE", "MRN-PL-NUL") is None

    # When a valid order follows
    good = segments(exchange(listener.port, orm("GOOD-ORM", placer="PL-GOOD")))
    assert good["MSA"][1:3] == ["AA", "GOOD-ORM"]
    assert process_all(runtime) == 1

    # Then it is applied and the orders read model shows it: the read model still runs
    order = Orders(scheduling).find_order("RIS:PL-GOOD", "RIS:FPL-GOOD")
    assert order is not None
    sync(runtime)
    [row] = PostgresOrderReader(runtime.pool).for_patient(order.patient_id)
    assert (row.id, row.procedure_text) == (order.id, "CT head without contrast")
    assert runtime.projections.healthy()


def test_a_nul_in_pid_5_of_a_v23_message_is_located_in_err_1(runtime, listener):
    # Given a v2.3 order whose patient name (PID-5) holds a NUL
    poisoned = orm("NUL-PID", version="2.3", family="DO\x00E", placer="PL-PID")

    # When it is sent
    ack = segments(exchange(listener.port, poisoned))

    # Then AR; v2.3 has no ERR-2, so the location is ERR-1 (segment^sequence^field^code)
    assert ack["MSA"][1:3] == ["AR", "NUL-PID"]
    assert ack["ERR"][1].startswith("PID^1^5^102&control character 0x00 not allowed in PID-5&")
    assert [status for *_, status, _ in stored(runtime)] == ["quarantined"]
    assert process_all(runtime) == 0
    assert runtime.services.registry.patient_by_identifier("CENTRE", "MRN-PL-PID") is None


def test_an_esc_in_the_second_obr_names_that_obr(runtime, listener):
    # Given an order with two procedures, the second's OBR-4 holding an ESC
    poisoned = orm(
        "ESC-OBR2",
        procedure="XRCHEST^Chest X-ray",
        second_procedure="CTHEAD^CT \x1b[31mhead",
        placer="PL-ESC",
    )

    # When it is sent
    ack = segments(exchange(listener.port, poisoned))

    # Then the location is the second OBR's fourth field
    assert ack["MSA"][1] == "AR"
    assert ack["ERR"][2] == "OBR^2^4"
    assert "0x1B" in ack["ERR"][3]
    assert process_all(runtime) == 0
    assert Orders(runtime.services.scheduling).find_order("RIS:PL-ESC", "RIS:FPL-ESC") is None


def test_a_control_character_in_the_header_is_not_echoed_into_the_ack(runtime, listener):
    # Given a DEL inside MSH-10 and a TAB inside MSH-3
    poisoned = orm("DEL\x7fID", placer="PL-DEL").replace(b"|RIS|CENTRE|", b"|R\tIS|CENTRE|", 1)

    # When it is sent
    raw_ack = exchange(listener.port, poisoned)

    # Then AR at MSH-3 (the first one), and the ACK itself holds no control character
    ack = segments(raw_ack)
    assert ack["MSA"][1:3] == ["AR", "DELID"]
    assert ack["ERR"][2] == "MSH^1^3"
    assert ack["MSH"][4] == "RIS"
    assert not any((byte < 0x20 and byte != 0x0D) or byte == 0x7F for byte in raw_ack)
    assert process_all(runtime) == 0


def test_a_vertical_tab_is_an_mllp_start_byte_and_the_message_is_never_applied(runtime, listener):
    # Given a name holding a vertical tab (0x0B): on MLLP that byte starts a frame, so
    # the listener gives up what came before it and reads the rest as a new frame.
    poisoned = orm("VT-PID", family="DO\x0bE", placer="PL-VT")

    # When it is sent, followed by a valid order on the same connection
    with connect(listener.port) as sock:
        sock.sendall(frame(poisoned))
        tail = segments(read_frame(sock))
        sock.sendall(frame(orm("AFTER-VT", placer="PL-AFTER")))
        after = segments(read_frame(sock))

    # Then the tail (no MSH) is answered AR with an ERR and quarantined, nothing of the
    # message is applied, and the connection goes on serving
    assert tail["MSA"][1] == "AR"
    assert tail["ERR"][3].startswith("100^no MSH segment^")
    assert after["MSA"][1:3] == ["AA", "AFTER-VT"]
    assert process_all(runtime) == 1
    assert runtime.services.registry.patient_by_identifier("CENTRE", "MRN-PL-VT") is None
    assert (
        Orders(runtime.services.scheduling).find_order("RIS:PL-AFTER", "RIS:FPL-AFTER") is not None
    )


@pytest.mark.parametrize(
    ("character", "field", "location"),
    [("\x0b", "family", "PID-5"), ("\x00", "procedure", "OBR-4"), ("\x0c", "family", "PID-5")],
)
def test_a_message_stored_before_the_check_is_quarantined_by_the_processing_stage(
    runtime, character, field, location
):
    # Given a message with a control character that an earlier listener stored (and
    # ACKed AA) and that waits for processing
    values = {"family": f"DO{character}E"} if field == "family" else {}
    if field == "procedure":
        values = {"procedure": f"CTHEAD^CT{character} head"}
    raw = orm("OLD-1", placer="PL-OLD", **values)
    with psycopg.connect(runtime.url) as conn:
        conn.execute(
            "INSERT INTO hl7_inbound (id, sending_application, sending_facility, control_id,"
            " message_type, trigger, version, charset, content_sha256, raw, raw_format,"
            " ack_code, ack, status) VALUES (gen_random_uuid(), 'RIS', 'CENTRE', 'OLD-1',"
            " 'ORM', 'O01', '2.5.1', '', sha256(%s), %s, 0, 'AA', '', 'received')",
            (raw, raw),
        )

    # When the processing stage runs
    assert process_all(runtime) == 1

    # Then it is quarantined with the location, and nothing is applied
    [(_, _, status, error)] = stored(runtime)
    assert status == "quarantined"
    assert error == f"102: control character 0x{ord(character):02X} not allowed in {location}"
    assert runtime.services.registry.patient_by_identifier("CENTRE", "MRN-PL-OLD") is None
