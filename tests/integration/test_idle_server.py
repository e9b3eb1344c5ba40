"""An idle ``serve --demo`` holds a bounded number of threads and PostgreSQL connections
(README, "Idle server"). Counts, not timings: the server is started as an operator
starts it, on a database of its own, and counted once it says it is ready and its
outbound child process has taken the outbound policies' lead.

Before the read models shared one follower thread per log and one LISTEN connection
(``projections.log_follower``), the same server held ~247 threads and ~92 connections:
each read model had an application, a pool and four threads of its own."""

import os
import time
from pathlib import Path

import psycopg
import pytest

from tests.e2e.test_cli import Served, free_port
from tests.integration.test_outbound_process import children

pytestmark = pytest.mark.integration

MAX_THREADS = 180
"""Threads of an idle ``serve`` and its outbound child together (README, "Idle server"):
each connection pool brings four (psycopg_pool's scheduler and three workers), each log's
follower one, the dramatiq consumers and workers, the pumps, the HL7 listener and the
API's event loop."""
MAX_CONNECTIONS = 72
"""PostgreSQL connections of an idle ``serve`` and its child: one or two per pool, plus the
LISTEN ones and the two leaders'."""
OUTBOUND_LEAD = "leader:outbound-policies"


def outbound_child_leads(conn: psycopg.Connection, seconds: float = 60.0) -> bool:
    """Whether the outbound child holds its lead (it has built everything it runs)."""
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        if conn.execute(
            "SELECT 1 FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name = %s",
            (OUTBOUND_LEAD,),
        ).fetchone():
            return True
        time.sleep(0.2)
    return False


def test_an_idle_server_holds_a_bounded_number_of_threads_and_connections(
    database_url: str, tmp_path: Path
) -> None:
    # given a server started as an operator starts it, on a database of its own
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DATA_DIR": str(tmp_path),
        "MLLP_PORT": str(free_port()),
        "LOG_JSON": "true",
    }
    with Served(env) as served, psycopg.connect(database_url, autocommit=True) as conn:
        # when it is ready (the read models hold the demo catalog), its outbound child
        # leads, and nothing is asked
        assert outbound_child_leads(conn)
        processes = {served.process.pid, *children(served.process.pid)}
        assert len(processes) == 2
        threads = sum(len(os.listdir(f"/proc/{pid}/task")) for pid in processes)
        [(connections,)] = conn.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    # then its threads and connections stay under the documented bounds
    assert threads <= MAX_THREADS, f"{threads} threads"
    assert connections <= MAX_CONNECTIONS, f"{connections} connections"
