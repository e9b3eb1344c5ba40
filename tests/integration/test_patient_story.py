"""Issue 10's story end to end, over the real wires: the RIS sends Ana (ADT^A04) and an
order (ORM^O01) over MLLP; a scheduler finds her and gives her an activation code; she
creates her account with it, sees the order, books it; the SIU^S12 our RIS peer receives
names the order's numbers and her RIS MRN; the RIS sends the result (ORU^R01); she sees
it and gets a viewer link whose token the viewer verifies against our JWKS until it
expires. Every read of her records is in the PHI access log."""

import socket
from collections.abc import Iterator
from datetime import date, timedelta
from urllib.parse import parse_qs, urlsplit

import jwt
import psycopg
import pytest

from adapters.hl7.listener import BackgroundListener, ListenerConfig
from adapters.hl7.processor import InboundProcessor
from domain.appointment_type import AppointmentType
from domain.location import Location
from tests.integration.mllp_peer import Peer, field_of, wait_until
from tests.integration.test_hl7_listener import read_frame
from tests.integration.test_orders_results import slots, verify
from tests.integration.test_outbound_hl7 import by_type, outbound_settings
from tests.support import configure_viewer, settle, staff_headers

pytestmark = pytest.mark.integration

MRI_BRAIN = str(AppointmentType.create_id("mri-brain"))
RIVERSIDE = str(Location.create_id("riverside"))
PASSWORD = "correct horse battery staple"
MSH = "MSH|^~\\&|RIS|CENTRE|IMGBRIDGE|CENTRE|20261130120000||{kind}|{control}|P|2.5.1"
PID = "PID|1||MRN-STORY-1^^^CENTRE^MR||Lopez^Ana||19850304|F"

A04 = [
    MSH.format(kind="ADT^A04^ADT_A01", control="STORY-A04"),
    "EVN|A04|20261130120000",
    PID,
    "PV1|1|O",
]
ORM = [
    MSH.format(kind="ORM^O01^ORM_O01", control="STORY-ORM"),
    PID,
    "ORC|NW|PLC-77^ORDERS|FIL-77^RIS",
    "OBR|1|PLC-77^ORDERS|FIL-77^RIS|70551^MRI brain without contrast|||20261130120000"
    "|||||||||||ACC-77",
]
ORU = [
    MSH.format(kind="ORU^R01^ORU_R01", control="STORY-ORU"),
    PID,
    "ORC|RE|PLC-77^ORDERS|FIL-77^RIS",
    "OBR|1|PLC-77^ORDERS|FIL-77^RIS|70551^MRI brain without contrast|||20261203093000"
    "|||||||||||ACC-77|||||||F",
    "OBX|1|TX|70551^Report||SENTINEL REPORT TEXT NEVER STORED||||||F",
]


@pytest.fixture
def ris() -> Iterator[Peer]:
    with Peer() as peer:
        yield peer


def send(port: int, *messages: list[str]) -> list[str]:
    """Each message over one MLLP connection, as the RIS's interface engine would: the
    MSA-1 of each ACK."""
    codes = []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        for segments in messages:
            sock.sendall(b"\x0b" + "\r".join(segments).encode() + b"\r\x1c\r")
            ack = read_frame(sock).decode()
            codes.append(field_of(ack, "MSA", 1))
    return codes


def apply_inbound(runtime) -> None:
    processor = InboundProcessor(runtime.pool, runtime.inbound, runtime.cipher)
    while processor.process_pending(50):
        pass
    settle(runtime)


def access_log(url: str, patient_id: str) -> list[tuple[str, str]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT resource, action FROM phi_access_log"
            " WHERE patient_id = %s AND outcome = 'allowed' ORDER BY id",
            (patient_id,),
        ).fetchall()
    return [tuple(row) for row in rows]


def test_the_ris_patient_activates_books_her_order_and_opens_her_result(
    runtime, client, clock, ris
):
    outbound = runtime.start_outbound(outbound_settings(runtime, ris), pump_interval=0.05)
    configure_viewer(runtime)
    listener = BackgroundListener(
        runtime.url, ListenerConfig(host="127.0.0.1", port=0), cipher=runtime.cipher
    )
    try:
        with listener:
            # The RIS registers Ana and orders her MRI.
            assert send(listener.port, A04, ORM) == ["AA", "AA"]
            apply_inbound(runtime)

            # A scheduler finds her by her MRN and gives her an activation code.
            desk = staff_headers(client, runtime, clock, "scheduler")
            found = client.get(
                "/v1/staff/patients", headers=desk, params={"identifier": "CENTRE|MRN-STORY-1"}
            )
            assert found.status_code == 200, found.text
            [ana] = found.json()["items"]
            assert (ana["family_name"], ana["has_account"]) == ("Lopez", False)
            issued = client.post(f"/v1/staff/patients/{ana['id']}/activation-codes", headers=desk)
            assert issued.status_code == 201, issued.text

            # Ana creates her account with the code and her birth date: it is the RIS's record.
            registered = client.post(
                "/v1/patients/register",
                json={
                    "email": "ana.story@example.org",
                    "password": PASSWORD,
                    "activation_code": issued.json()["code"],
                    "birth_date": "1985-03-04",
                },
            )
            assert registered.status_code == 201, registered.text
            token = client.post(
                "/v1/auth/token",
                data={"username": "ana.story@example.org", "password": PASSWORD},
            )
            headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
            me = client.get("/v1/patients/me", headers=headers).json()
            assert me["id"] == ana["id"]

            # She sees the order, with the exam types that can perform it, and books it.
            [order] = client.get("/v1/me/orders", headers=headers).json()["items"]
            assert (order["status"], order["procedure_text"]) == (
                "waiting",
                "MRI brain without contrast",
            )
            assert MRI_BRAIN in order["appointment_type_ids"]
            start = slots(client)[0]
            booked = client.post(
                "/v1/appointments",
                headers=headers,
                json={
                    "appointment_type_id": MRI_BRAIN,
                    "location_id": RIVERSIDE,
                    "start": start,
                    "order_id": order["id"],
                },
            )
            assert booked.status_code == 201, booked.text
            assert booked.json()["exam"]["name"]
            settle(runtime)
            [order] = client.get("/v1/me/orders", headers=headers).json()["items"]
            assert (order["status"], order["appointment_id"]) == (
                "scheduled",
                booked.json()["id"],
            )

            # The RIS gets one SIU^S12 naming the order as it numbered it, and Ana by its MRN.
            wait_until(lambda: by_type(outbound, "SIU^S12"))
            wait_until(lambda: any("SIU^S12" in m for m in ris.messages()))
            [siu] = [m for m in ris.messages() if "SIU^S12" in m]
            assert (field_of(siu, "SCH", 26), field_of(siu, "SCH", 27)) == (
                "PLC-77^ORDERS",
                "FIL-77^RIS",
            )
            assert field_of(siu, "PID", 3).startswith("MRN-STORY-1^^^CENTRE^MR~")
            assert field_of(siu, "PID", 8) == "F"

            # The RIS sends the result: a reference, never the report.
            assert send(listener.port, ORU) == ["AA"]
            apply_inbound(runtime)
        [result] = client.get("/v1/me/results", headers=headers).json()["items"]
        assert (result["status"], result["accession_number"], result["order_id"]) == (
            "final",
            "ACC-77",
            order["id"],
        )
        with psycopg.connect(runtime.url) as conn:
            stored = conn.execute("SELECT count(*) FROM rm_results").fetchone()
        assert stored == (1,)

        # She opens it: a link to the centre's viewer with a token bound to her and to it.
        link = client.post(f"/v1/me/results/{result['id']}/link", headers=headers)
        assert link.status_code == 200, link.text
        viewer_token = parse_qs(urlsplit(link.json()["url"]).query)["token"][0]
        claims = verify(client, viewer_token, clock.now())
        assert (claims["sub"], claims["accession"]) == (ana["id"], "ACC-77")
        assert claims["exp"] - claims["iat"] <= 300
        clock.advance(timedelta(seconds=301))
        with pytest.raises(jwt.ExpiredSignatureError):
            verify(client, viewer_token, clock.now())
    finally:
        outbound.stop()

    # Every read of her records is in the access log, in the order it happened.
    runtime.services.access_log.flush()
    logged = access_log(runtime.url, ana["id"])
    for read in [("order", "read"), ("result", "read"), ("result", "open_link")]:
        assert read in logged, (read, logged)
    assert logged.index(("order", "read")) < logged.index(("result", "open_link"))
    assert date.fromisoformat(me["birth_date"]) == date(1985, 3, 4)
