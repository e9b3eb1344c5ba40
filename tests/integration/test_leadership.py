"""Leadership on a real PostgreSQL: of two instances, one runs the work; when it ends,
or its connection is cut (as when its process dies), the other takes over; the work
never runs in both at once."""

import threading
import time

import psycopg
import pytest

from adapters.leadership import Leadership

pytestmark = pytest.mark.integration

RETRY = 0.05


class Work:
    """Counts how many instances run it at once, and the most there ever were."""

    running = 0
    most = 0
    lock = threading.Lock()

    def __init__(self, name: str) -> None:
        self.name = name
        self.started = 0
        self.stopped = 0

    def start(self) -> None:
        with Work.lock:
            Work.running += 1
            Work.most = max(Work.most, Work.running)
        self.started += 1

    def stop(self) -> None:
        with Work.lock:
            Work.running -= 1
        self.stopped += 1


def leadership(url: str, work: Work) -> Leadership:
    return Leadership(url, "test-work", work.start, work.stop, retry=RETRY)


def wait_for(condition, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


@pytest.fixture(autouse=True)
def counts():
    Work.running = Work.most = 0


def test_one_of_two_leads_and_the_other_takes_over_when_it_ends(database_url):
    first_work, second_work = Work("first"), Work("second")
    first = leadership(database_url, first_work).begin()
    second = leadership(database_url, second_work).begin()
    try:
        assert first.leading.is_set()
        assert not second.leading.is_set()
        assert (first_work.started, second_work.started) == (1, 0)

        first.end()

        assert first_work.stopped == 1
        assert wait_for(second.leading.is_set)
        assert second_work.started == 1
    finally:
        first.end()
        second.end()
    assert Work.most == 1
    assert Work.running == 0


def test_a_leader_whose_connection_is_cut_stops_and_another_leads(database_url):
    first_work, second_work = Work("first"), Work("second")
    first = leadership(database_url, first_work).begin()
    second = leadership(database_url, second_work).begin()
    try:
        assert first.leading.is_set()
        # As when the leader's process dies: PostgreSQL ends its session, and the lock.
        with psycopg.connect(database_url, autocommit=True) as admin:
            ended = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory'"
                " AND granted AND database = (SELECT oid FROM pg_database"
                " WHERE datname = current_database())"
            ).fetchall()
        assert ended == [(True,)]

        assert wait_for(lambda: first_work.stopped == 1)
        # One of them leads again (the first may win its own seat back): never both.
        assert wait_for(lambda: second.leading.is_set() or first.leading.is_set())
        assert first_work.started + second_work.started == 2
    finally:
        first.end()
        second.end()
    assert Work.running == 0
