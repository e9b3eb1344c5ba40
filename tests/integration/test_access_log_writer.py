"""The batched PHI access-log writer on real PostgreSQL: nothing lost on close under many
concurrent writers, each thread's entries in order, back-pressure instead of dropping,
failed writes retried (and logged without patient data), keyset pages that neither skip
nor repeat. Waits are on the writer's own flush/close, never on sleeps."""

import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from psycopg_pool import ConnectionPool
from structlog.testing import capture_logs

from adapters.access_log import (
    AccessLogUnavailableError,
    BatchingAccessLog,
    PostgresAccessLog,
)
from adapters.database import reader_pool
from adapters.migrations import apply_migrations
from application.ports import AccessRecord
from tests.support import T0

pytestmark = pytest.mark.integration

PATIENT = UUID("00000000-0000-4000-8000-00000000000a")


@pytest.fixture
def pool(database_url: str) -> Iterator[ConnectionPool[Any]]:
    apply_migrations(database_url)
    pool = reader_pool(database_url, 6)
    yield pool
    pool.close()


def entry(actor: str, n: int, patient: UUID | None = PATIENT, **changes: Any) -> AccessRecord:
    fields: dict[str, Any] = {
        "at": T0 + timedelta(milliseconds=n),
        "actor_id": actor,
        "role": "scheduler",
        "patient_id": patient,
        "resource": "appointment",
        "resource_id": f"{actor}:{n}",
        "action": "read",
        "outcome": "allowed",
        "request_id": f"req-{actor}-{n}",
        "client_address": "127.0.0.1",
    }
    fields.update(changes)
    return AccessRecord(**fields)


def stored(pool: ConnectionPool[Any]) -> list[tuple[int, str, str]]:
    with pool.connection() as conn:
        rows = conn.execute(
            "SELECT id, actor_id, resource_id FROM phi_access_log ORDER BY id"
        ).fetchall()
    return [(row[0], row[1], row[2]) for row in rows]


def test_close_writes_everything_many_threads_recorded_each_thread_in_order(pool):
    # Given a writer that would only write full batches on its own (a long interval)
    writer = BatchingAccessLog(pool, batch_size=64, interval=3600, max_pending=256)
    threads, per_thread = 16, 250
    start = threading.Barrier(threads)

    def work(t: int) -> None:
        start.wait()
        for n in range(per_thread):
            writer.record(entry(f"actor-{t}", n))

    # When 16 threads record 4,000 entries at once and the log is closed
    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert writer.close(timeout=60)

    # Then every entry is stored exactly once, each thread's in the order it recorded them
    rows = stored(pool)
    assert len(rows) == threads * per_thread
    assert len({resource_id for _, _, resource_id in rows}) == threads * per_thread
    for t in range(threads):
        mine = [resource_id for _, actor, resource_id in rows if actor == f"actor-{t}"]
        assert mine == [f"actor-{t}:{n}" for n in range(per_thread)]
    assert writer.stats()["written"] == threads * per_thread
    assert writer.stats()["pending"] == 0


def test_flush_makes_recorded_entries_visible_without_waiting_for_a_batch(pool):
    writer = BatchingAccessLog(pool, batch_size=500, interval=3600)
    try:
        for n in range(3):
            writer.record(entry("actor", n))
        assert writer.flush(timeout=10)
        assert [resource_id for _, _, resource_id in stored(pool)] == [
            "actor:0",
            "actor:1",
            "actor:2",
        ]
        assert writer.flush(timeout=10)  # nothing pending: returns at once
    finally:
        writer.close()


def test_entries_are_written_within_the_interval_without_being_asked(pool):
    # Given a writer that writes at least every 20 ms, and an idle queue
    writer = BatchingAccessLog(pool, batch_size=500, interval=0.02)
    try:
        for round_ in range(3):
            # When one entry is recorded (far from a full batch) and nobody flushes
            writer.record(entry("actor", round_))
            # Then it is written on the writer's own schedule (bounded wait, no flush)
            assert writer.wait_written(timeout=10)
        assert len(stored(pool)) == 3
        assert writer.stats()["batches"] == 3
    finally:
        writer.close()


def test_a_full_queue_makes_record_wait_and_never_drops(pool):
    writer = BatchingAccessLog(pool, batch_size=10, interval=0.01, max_pending=10)
    blocker = pool.getconn()
    try:
        # Given the table is locked, so the writer cannot write, and the queue is full
        with blocker.transaction():
            blocker.execute("LOCK TABLE phi_access_log IN EXCLUSIVE MODE")
            for n in range(10):
                writer.record(entry("actor", n))

            # Then recording more waits, and refuses loudly when it cannot get room
            writer.put_timeout = 0.05
            with pytest.raises(AccessLogUnavailableError):
                writer.record(entry("refused", 0))
            writer.put_timeout = None
            late = threading.Thread(target=writer.record, args=(entry("actor", 10),))
            late.start()
            late.join(timeout=0.2)
            assert late.is_alive(), "record() returned although the queue was full"
        # When the lock goes away
        late.join(timeout=30)
        assert not late.is_alive()
        assert writer.flush(timeout=30)
    finally:
        pool.putconn(blocker)
        writer.close()
    # Then everything accepted is stored once, in order; the refused entry is not
    assert [resource_id for _, _, resource_id in stored(pool)] == [f"actor:{n}" for n in range(11)]
    assert writer.stats()["blocked_records"] == 2


def test_a_failed_write_is_retried_until_it_succeeds_and_logged_without_patient_data(pool):
    writer = BatchingAccessLog(pool, interval=0.01, retry_initial=0.01, retry_max=0.05)
    patient = uuid4()
    try:
        with capture_logs() as logs:
            # Given the table is (temporarily) gone
            with pool.connection() as conn:
                conn.execute("ALTER TABLE phi_access_log RENAME TO phi_access_log_away")
            writer.record(entry("actor", 0, patient=patient, reason="secret reason text"))
            assert not writer.flush(timeout=0.3)
            # When it comes back
            with pool.connection() as conn:
                conn.execute("ALTER TABLE phi_access_log_away RENAME TO phi_access_log")
            # Then the entry is written after all
            assert writer.flush(timeout=30)
    finally:
        writer.close()
    assert [resource_id for _, _, resource_id in stored(pool)] == ["actor:0"]
    failures = [e for e in logs if e["event"] == "access_log_write_failed"]
    assert failures, logs
    assert failures[0]["log_level"] == "error"
    assert failures[0]["error"] == "UndefinedTable"
    assert writer.stats()["failed_writes"] == len(failures)
    text = repr(logs)
    assert str(patient) not in text
    assert "secret reason text" not in text
    assert "actor:0" not in text


def test_record_after_close_is_refused_not_lost(pool):
    writer = BatchingAccessLog(pool)
    writer.record(entry("actor", 0))
    assert writer.close()
    with pytest.raises(AccessLogUnavailableError):
        writer.record(entry("actor", 1))
    assert [resource_id for _, _, resource_id in stored(pool)] == ["actor:0"]


def test_entries_are_checked_in_the_callers_thread(pool):
    writer = BatchingAccessLog(pool)
    try:
        with pytest.raises(ValueError, match="timezone"):
            writer.record(entry("actor", 0, at=T0.replace(tzinfo=None)))
        with pytest.raises(ValueError, match=r"UUID|hexadecimal"):
            writer.record(entry("actor", 1, patient="not-a-uuid"))
        # NUL cannot be stored in PostgreSQL text: kept visible as U+FFFD, never a poison row
        writer.record(entry("actor", 2, patient=str(PATIENT), reason="a\x00b"))
        assert writer.flush()
    finally:
        writer.close()
    ((_, found),) = writer.search(patient_id=PATIENT)
    assert found.reason == "a\ufffdb"
    assert found.patient_id == PATIENT


@pytest.mark.parametrize("log_class", [BatchingAccessLog, PostgresAccessLog])
def test_search_pages_newest_first_without_skipping_or_repeating(pool, log_class):
    # Given entries of two patients and two actors, many sharing the same instant
    writer = log_class(pool)
    other = uuid4()
    for n in range(30):
        writer.record(entry("a" if n % 3 else "b", n // 4, patient=PATIENT if n % 2 else other))
    assert writer.flush()

    def pages(**filters: Any) -> list[list[int]]:
        found, before = [], None
        while True:
            page = writer.search(**filters, before_id=before, limit=4)
            if not page:
                return found
            found.append([entry_id for entry_id, _ in page])
            before = page[-1][0]

    everything = writer.search(patient_id=PATIENT, limit=1000)
    # Then pages concatenate to the whole answer, ordered by (at, id) descending
    assert [i for page in pages(patient_id=PATIENT) for i in page] == [i for i, _ in everything]
    keys = [(e.at, i) for i, e in everything]
    assert keys == sorted(keys, reverse=True)
    assert len(everything) == 15
    assert all(e.patient_id == PATIENT for _, e in everything)
    # And filters combine
    by_a = writer.search(actor_id="a", patient_id=PATIENT)
    assert by_a
    assert all(e.actor_id == "a" and e.patient_id == PATIENT for _, e in by_a)
    window = writer.search(start=T0 + timedelta(milliseconds=2), end=T0 + timedelta(milliseconds=4))
    assert {e.at for _, e in window} == {
        T0 + timedelta(milliseconds=2),
        T0 + timedelta(milliseconds=3),
    }
    assert writer.search(patient_id=PATIENT, before_id=10**12) == []
    writer.close()
