"""The MLLP listener when the database cannot store: no ACK at all (an AA would tell the
RIS the message is safe when it is not), the connection closed, and the sender's retry,
once the database is back, stored once and acknowledged."""

import contextlib
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from adapters.hl7.framing import frame
from adapters.hl7.listener import BackgroundListener, ListenerConfig
from tests.integration import test_hl7_listener as listener_tests
from tests.integration.mllp_peer import wait_until
from tests.integration.test_hl7_listener import adt, connect, read_frame, rows, segments

pytestmark = pytest.mark.integration
migrated = listener_tests.migrated  # the fixture


@contextlib.contextmanager
def database_down(url: str) -> Iterator[None]:
    """The test's database refuses new connections and loses the ones it had (as when
    its server stops), until the block ends."""
    dbname = conninfo_to_dict(url)["dbname"]
    with psycopg.connect(make_conninfo(url, dbname="postgres"), autocommit=True) as admin:
        name = sql.Identifier(str(dbname))
        admin.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(name))
        try:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (dbname,),
            )
            yield
        finally:
            admin.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(name))


def send_once(port: int, payload: bytes) -> bytes:
    """One attempt of a sender: the ACK, or b"" when the listener closed without one."""
    with connect(port) as sock:
        sock.sendall(frame(payload))
        try:
            return read_frame(sock)
        except (ConnectionError, TimeoutError):
            return b""


def test_no_ack_while_the_database_is_down_and_the_retry_is_stored_once(migrated):
    config = ListenerConfig(host="127.0.0.1", port=0, pool_size=2)
    with BackgroundListener(migrated, config, cipher=listener_tests.CIPHER) as listener:
        # Given a listener that stores and acknowledges
        assert segments(send_once(listener.port, adt("BEFORE1")))["MSA"][1] == "AA"

        # When the database goes away, a message gets no ACK: the connection just closes
        with database_down(migrated):
            assert send_once(listener.port, adt("DOWN1")) == b""

        # Then the sender's retries, once it is back, get AA, and the message is stored once
        answer = wait_until(lambda: send_once(listener.port, adt("DOWN1")), timeout=60)
        assert segments(answer)["MSA"][1:3] == ["AA", "DOWN1"]
        assert segments(send_once(listener.port, adt("DOWN1")))["MSA"][1:3] == ["AA", "DOWN1"]
    stored = [(r[4], r[1]) for r in rows(migrated)]
    assert stored == [("BEFORE1", "received"), ("DOWN1", "received")]
