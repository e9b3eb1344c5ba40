"""``serve --outbound process``: the outbound policies, pump and sending threads run in a
child process that starts and stops with ``serve``; a registration still reaches the RIS
as ADT^A04."""

import os
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_cli import Served, free_port
from tests.integration.mllp_peer import Peer, field_of, wait_until

pytestmark = pytest.mark.integration


def children(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


def test_serve_sends_hl7_from_a_child_process_stopped_with_it(database_url, tmp_path):
    with Peer() as peer:
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "DATA_DIR": str(tmp_path),
            "MLLP_PORT": str(free_port()),
            "HL7_DESTINATIONS": f"ris=127.0.0.1:{peer.port}",
        }
        with Served(env, "--outbound", "process") as served:
            outbound = children(served.process.pid)
            assert len(outbound) == 1
            registered = httpx.post(
                f"{served.url}/v1/patients/register",
                json={
                    "email": "child-process@example.org",
                    "password": "correct horse battery staple",
                    "given_name": "Ada",
                    "family_name": "Child",
                    "birth_date": "1980-02-29",
                },
                timeout=30,
            )
            assert registered.status_code == 201, registered.text
            wait_until(
                lambda: any(field_of(m, "MSH", 9).startswith("ADT^A04") for m in peer.messages())
            )
        assert served.process.returncode == 0
        assert not any(Path(f"/proc/{pid}").exists() for pid in outbound)
