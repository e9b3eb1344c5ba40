"""Saves in one round trip (``adapters.event_store``): the same outcomes as the library's
saves (ids, atomicity, refusal of a second version), sent as one query, and followers
tailing the log still see every event once, in order, while threads save at once."""

import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import IntegrityError

from adapters import event_store
from adapters.database import eventsourcing_env

pytestmark = pytest.mark.integration


class Counter(Aggregate):
    @event("Created")
    def __init__(self, name: str) -> None:
        self.name = name
        self.count = 0

    @event("Counted")
    def count_one(self) -> None:
        self.count += 1


class Counters(Application[Any]):
    name = "onetrip"


@pytest.fixture
def app(database_url: str) -> Iterator[Counters]:
    env = {**eventsourcing_env(database_url), "APPLICATION_RECORDER_TOPIC": event_store.TOPIC}
    counters = Counters(env)
    assert isinstance(counters.recorder, event_store.OneTripRecorder)
    yield counters
    counters.close()


def test_a_save_records_every_aggregate_with_consecutive_ids(app: Counters) -> None:
    first, second = Counter("a"), Counter("b")
    first.count_one()
    recordings = app.save(first, second)
    ids = [r.notification.id for r in recordings]
    assert len(ids) == 3
    assert ids == list(range(ids[0], ids[0] + 3))
    assert app.recorder.max_notification_id() == ids[-1]
    assert app.repository.get(first.id).count == 1
    assert app.repository.get(second.id).name == "b"


def test_a_second_version_refuses_the_whole_save(app: Counters) -> None:
    taken = Counter("taken")
    app.save(taken)
    head = app.recorder.max_notification_id()
    stale = app.repository.get(taken.id)
    taken.count_one()
    app.save(taken)
    bystander = Counter("bystander")
    stale.count_one()  # version 2 again: another writer saved it first
    with pytest.raises(IntegrityError):
        app.save(bystander, stale)
    assert app.recorder.max_notification_id() == head + 1  # only the winner's event
    assert app.repository.get(taken.id).count == 1
    with pytest.raises(Exception, match="not found"):
        app.repository.get(bystander.id)


@contextmanager
def traced(app: Counters) -> Iterator[list[str]]:
    """What the client sends on the store's connections meanwhile (libpq's trace)."""
    datastore: Any = app.recorder.datastore  # type: ignore[attr-defined]
    plain = datastore.get_connection
    lines: list[str] = []
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "trace")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT)

        @contextmanager
        def tracing() -> Iterator[Any]:
            with plain() as conn:
                conn.pgconn.trace(fd)
                try:
                    yield conn
                finally:
                    conn.pgconn.untrace()

        datastore.get_connection = tracing
        try:
            yield lines
        finally:
            datastore.get_connection = plain
            os.close(fd)
            with open(path) as trace:
                lines.extend(line for line in trace if "\tF\t" in line)


def test_a_save_is_one_query_that_commits_on_its_own(app: Counters) -> None:
    with traced(app) as sent:
        app.save(Counter("one"), Counter("two"))
    messages = [line.split("\t")[3] for line in sent]
    assert messages == ["Query"], sent
    (query,) = sent
    for statement in ("LOCK TABLE", "NOTIFY", "INSERT INTO"):
        assert statement in query
    assert "COMMIT" not in query  # the query string is its own transaction


def test_followers_tailing_the_log_miss_nothing_while_threads_save(app: Counters) -> None:
    writers, saves = 8, 40
    done = threading.Event()
    seen: list[int] = []

    def tail() -> None:
        last = 0
        while True:
            finished = done.is_set()
            batch = app.recorder.select_notifications(last + 1, 100)
            seen.extend(n.id for n in batch)
            if batch:
                last = batch[-1].id
            elif finished:
                return

    def write() -> None:
        for _ in range(saves):
            a, b = Counter("x"), Counter("y")
            a.count_one()
            app.save(a, b)

    follower = threading.Thread(target=tail)
    follower.start()
    threads = [threading.Thread(target=write) for _ in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    done.set()
    follower.join(60)
    stored = [n.id for n in app.recorder.select_notifications(1, 100_000)]
    assert len(stored) == writers * saves * 3
    assert seen == stored
