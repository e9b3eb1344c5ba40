"""Three ``serve`` processes on one database, as three hosts behind a proxy would run:
patients register and book through each of them, the RIS sends ADT^A04 to each one's
MLLP listener; the process leading the once-only work (read models, outbound policies)
is killed mid-way (SIGKILL: no clean-up); another takes over. In the end every booking
is in the read models, every registration and booking reached the RIS exactly once as a
delivery (a retransmission after the kill keeps its MSH-10), and every inbound message
was applied once."""

import os
import signal
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.e2e.test_cli import Served, free_port
from tests.integration.mllp_peer import Peer, field_of, wait_until
from tests.integration.test_hl7_listener import read_frame

pytestmark = pytest.mark.integration

PASSWORD = "correct horse battery staple"
CONNECTIONS_NEEDED = 250
"""Three servers (one leading) and the test: about 60 PostgreSQL connections each."""


def instance(database_url: str, tmp_path: Path, peer: Peer) -> tuple[Served, int]:
    mllp = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DATA_DIR": str(tmp_path),  # the same keys, as hosts share them
        "MLLP_PORT": str(mllp),
        "HL7_DESTINATIONS": f"ris=127.0.0.1:{peer.port}",
        "DELIVERY_LEASE_SECONDS": "3",
        "LOG_JSON": "true",
    }
    return Served(env, stop_signal=signal.SIGTERM), mllp


def register_and_book(url: str, n: int) -> tuple[dict[str, str], str]:
    """A new patient through ``url`` who books the first free slot: their headers and
    the appointment id."""
    with httpx.Client(base_url=url, timeout=30) as http:
        email = f"scale-{n}@example.org"
        made = http.post(
            "/v1/patients/register",
            json={
                "email": email,
                "password": PASSWORD,
                "given_name": "Scale",
                "family_name": f"Out{n}",
                "birth_date": "1980-02-29",
            },
        )
        assert made.status_code == 201, made.text
        token = http.post("/v1/auth/token", data={"username": email, "password": PASSWORD})
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        exam = http.get("/v1/catalog/appointment-types").json()[0]["id"]
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
        for location in http.get("/v1/catalog/locations").json():
            slots = http.get(
                "/v1/slots",
                params={
                    "appointment_type_id": exam,
                    "location_id": location["id"],
                    "start": start.isoformat(),
                    "end": (start + timedelta(days=14)).isoformat(),
                },
            ).json()
            for slot in slots[n : n + 5]:  # each patient tries other slots than the rest
                booked = http.post(
                    "/v1/appointments",
                    headers=headers,
                    json={
                        "appointment_type_id": exam,
                        "location_id": location["id"],
                        "start": slot["start"],
                    },
                )
                if booked.status_code == 201:
                    return headers, booked.json()["id"]
        raise AssertionError(f"patient {n} found no free slot")


def send_a04(port: int, n: int) -> None:
    text = "\r".join(
        [
            "MSH|^~\\&|RIS|CENTRE|IMGBRIDGE|CENTRE|20261202120000||ADT^A04^ADT_A01"
            f"|SCALE-{n}|P|2.5.1",
            "EVN|A04|20261202120000",
            f"PID|1||MRN-SCALE-{n}^^^CENTRE^MR||Ris^Patient{n}||19700101|F",
            "PV1|1|O",
        ]
    )
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"\x0b" + text.encode() + b"\r\x1c\r")
        assert field_of(read_frame(sock).decode(), "MSA", 1) == "AA"


def query(url: str, sql: str) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(sql).fetchall()  # type: ignore[arg-type]


def test_three_instances_share_one_database_and_survive_the_leaders_death(database_url, tmp_path):
    [(allowed,)] = query(database_url, "SHOW max_connections")
    if int(allowed) < CONNECTIONS_NEEDED:
        pytest.skip(
            f"three serve processes need about {CONNECTIONS_NEEDED} PostgreSQL connections;"
            f" this server allows {allowed} (the embedded server's default is 100)"
        )
    with Peer() as ris:
        first, first_mllp = instance(database_url, tmp_path, ris)
        with first:  # the first to start leads (the others find the locks taken)
            second, second_mllp = instance(database_url, tmp_path, ris)
            third, third_mllp = instance(database_url, tmp_path, ris)
            with second, third:
                leaders = (
                    "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a"
                    " ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted"
                    " AND a.application_name LIKE 'leader:%'"
                    " AND a.datname = current_database() ORDER BY 1"  # not other tests' servers
                )
                led = [("leader:outbound-policies",), ("leader:read-models",)]
                assert query(database_url, leaders) == led

                # Before: one patient and one RIS message through each instance.
                patients = [
                    register_and_book(served.url, n)
                    for n, served in enumerate((first, second, third))
                ]
                for n, port in enumerate((first_mllp, second_mllp, third_mllp)):
                    send_a04(port, n)

                # The leader dies without a word.
                first.process.kill()
                first.process.wait(timeout=30)

                # After: more of both through the survivors.
                for n, served in enumerate((second, third, second), start=3):
                    patients.append(register_and_book(served.url, n))
                for n, port in enumerate((second_mllp, third_mllp), start=3):
                    send_a04(port, n)

                # Another instance leads now.
                assert wait_until(lambda: query(database_url, leaders) == led, timeout=30)
                # Every booking is in the read models, whichever instance is asked.
                for n, (headers, appointment) in enumerate(patients):
                    url = (second, third)[n % 2].url

                    def listed(url=url, headers=headers, appointment=appointment) -> bool:
                        mine = httpx.get(f"{url}/v1/appointments", headers=headers, timeout=30)
                        return appointment in {a["id"] for a in mine.json()}

                    assert wait_until(listed, timeout=60), f"booking {n} not in the read models"
                # Every registration and booking reached the RIS, once as a delivery.
                hl7 = (
                    "SELECT message_type, status, control_id FROM rm_deliveries"
                    " WHERE channel NOT IN ('email', 'sms', 'push')"
                )

                def all_acknowledged() -> bool:
                    rows = query(database_url, hl7)
                    kinds = [kind for kind, _, _ in rows]
                    # (the demo patient that serve --demo seeds was registered too)
                    return (
                        sum(k.startswith("ADT^A04") for k in kinds) >= len(patients)
                        and sum(k.startswith("SIU^S12") for k in kinds) == len(patients)
                        and all(status == "acknowledged" for _, status, _ in rows)
                    )

                assert wait_until(all_acknowledged, timeout=120), query(database_url, hl7)
                sent = {field_of(m, "MSH", 10) for m in ris.messages()}
                assert {control for _, _, control in query(database_url, hl7)} <= sent
                # One A04 per patient record: none introduced twice across instances.
                introduced = [
                    field_of(m, "PID", 3)
                    for m in ris.messages()
                    if field_of(m, "MSH", 9).startswith("ADT^A04")
                ]
                a04s = [k for k, _, _ in query(database_url, hl7) if k.startswith("ADT^A04")]
                assert len(set(introduced)) == len(a04s)
                # Every RIS message was applied once: five patients under five MRNs.
                processed = "SELECT status, count(*) FROM hl7_inbound GROUP BY status"
                assert wait_until(
                    lambda: query(database_url, processed) == [("processed", 5)], timeout=60
                ), query(database_url, processed)
