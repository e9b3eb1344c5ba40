"""``serve --outbound process``: the outbound policies, pump and sending threads run in a
child process that starts and stops with ``serve``; a registration still reaches the RIS
as ADT^A04."""

import contextlib
import os
from pathlib import Path

import httpx
import psycopg
import pytest

from projections.progress import CHANNEL
from projections.runners import LISTEN_APPLICATION_NAME
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


def local_ports(pid: int) -> set[int]:
    """The local TCP ports of the sockets process ``pid`` holds (Linux /proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    ports = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def nice_values(pid: int) -> set[int]:
    """The nice value of every thread of process ``pid`` (Linux /proc)."""
    values = set()
    for stat in Path(f"/proc/{pid}/task").glob("*/stat"):
        with contextlib.suppress(OSError):
            values.add(int(stat.read_text().rsplit(")", 1)[1].split()[16]))
    return values


def listens_for_read_models(database_url: str, ports: set[int]) -> bool:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT client_port FROM pg_stat_activity WHERE application_name = %s"
            " AND query ILIKE %s",
            (LISTEN_APPLICATION_NAME, f"%{CHANNEL}%"),
        ).fetchall()
    return any(port in ports for (port,) in rows)


def test_serve_sends_hl7_from_a_child_process_stopped_with_it(database_url, tmp_path):
    with Peer() as peer:
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "DATA_DIR": str(tmp_path),
            "MLLP_PORT": str(free_port()),
            "HL7_DESTINATIONS": f"ris=127.0.0.1:{peer.port}",
            "OUTBOUND_NICE": "7",
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
            # The child's pumps wake when the parent's deliveries read model moves (its
            # NOTIFY), not at their next timed round.
            [child] = outbound
            assert listens_for_read_models(database_url, local_ports(child))
            # It yields the CPU to the API's processes: every one of its threads.
            assert nice_values(child) == {min(os.getpriority(os.PRIO_PROCESS, 0) + 7, 19)}
            assert nice_values(served.process.pid) == {os.getpriority(os.PRIO_PROCESS, 0)}
        assert served.process.returncode == 0
        assert not any(Path(f"/proc/{pid}").exists() for pid in outbound)
