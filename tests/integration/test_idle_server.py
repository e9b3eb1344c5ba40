"""An idle ``serve --demo`` holds a bounded number of threads and PostgreSQL connections
(README, "Idle server"). Counts, not timings: the server is started as an operator
starts it, on a database of its own, and counted once it says it is ready.

Before the read models shared one follower thread per log and one LISTEN connection
(``projections.log_follower``), the same server held ~247 threads and ~92 connections:
each read model had an application, a pool and four threads of its own."""

import os
from pathlib import Path

import psycopg
import pytest

from tests.e2e.test_cli import Served, free_port

pytestmark = pytest.mark.integration

MAX_THREADS = 160
"""Threads of an idle ``serve`` (README, "Idle server"): each connection pool brings four
(psycopg_pool's scheduler and three workers), each log's follower one, the dramatiq
consumers and workers, the pumps, the HL7 listener and the API's event loop."""
MAX_CONNECTIONS = 64
"""PostgreSQL connections of an idle ``serve``: one or two per pool, plus the LISTEN ones."""


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
        # when it is ready (the read models hold the demo catalog) and nothing is asked
        threads = len(os.listdir(f"/proc/{served.process.pid}/task"))
        [(connections,)] = conn.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    # then its threads and connections stay under the documented bounds
    assert threads <= MAX_THREADS, f"{threads} threads"
    assert connections <= MAX_CONNECTIONS, f"{connections} connections"
