"""The task queue on real PostgreSQL (dramatiq-postgres): its schema comes from the
migrations, once however many processes migrate together and over the dramatiq-pg 0.x
tables of older databases; handing out one version of a delivery twice queues one task;
a hand-out again of a task a dead worker held queues it again."""

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import dramatiq
import psycopg
import pytest

from adapters.migrations import apply_migrations, migrations_dir
from adapters.task_queue import QUEUE, declare_actor, enqueuer, make_broker, task_id
from tests.integration.mllp_peer import wait_until

pytestmark = pytest.mark.integration


def rows(url: str, sql: str, *params: object) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


def queue_rows(url: str) -> dict[str, tuple[str, str | None]]:
    """message id -> (state, owning worker) of every task in the queue."""
    found = rows(url, 'SELECT message_id, "state", worker_id FROM dramatiq.queue')
    return {str(m): (s, str(w) if w else None) for m, s, w in found}


@pytest.fixture
def migrated(database_url: str) -> str:
    apply_migrations(database_url)
    return database_url


@pytest.fixture
def broker(migrated: str) -> Iterator[Any]:
    b = make_broker(migrated)
    yield b
    b.close()


def run_worker(broker: Any, ran: list[tuple[UUID, int]]) -> dramatiq.Worker:
    declare_actor(broker, lambda delivery_id, version: ran.append((delivery_id, version)))
    worker = dramatiq.Worker(broker, worker_threads=2, worker_timeout=100)
    worker.start()
    return worker


def test_handing_out_one_version_twice_queues_one_task(migrated, broker):
    # Given a delivery whose version 1 was handed out
    delivery = uuid4()
    dispatch = enqueuer(broker)
    dispatch([(delivery, 1)])

    # When version 1 is handed out again (with version 2) before a worker runs
    dispatch([(delivery, 1), (delivery, 2)])

    # Then the queue holds one task per version, under its deterministic id
    assert queue_rows(migrated) == {
        str(task_id(delivery, 1)): ("queued", None),
        str(task_id(delivery, 2)): ("queued", None),
    }
    # and a worker runs each once, leaving the queue empty (acknowledged tasks are deleted)
    ran: list[tuple[UUID, int]] = []
    worker = run_worker(broker, ran)
    try:
        wait_until(lambda: len(ran) == 2 and not queue_rows(migrated), timeout=30)
    finally:
        worker.stop(timeout=5_000)
    assert sorted(ran) == [(delivery, 1), (delivery, 2)]


def test_a_task_a_dead_worker_held_is_queued_again_by_the_next_hand_out(migrated, broker):
    # Given a task claimed by a worker that then died (claimed, never acknowledged)
    delivery = uuid4()
    dispatch = enqueuer(broker)
    dispatch([(delivery, 3)])
    dead = make_broker(migrated)
    consumer = dead.consume(QUEUE, prefetch=1, timeout=1000)
    claimed = next(consumer)
    assert claimed is not None
    assert tuple(claimed.args) == (str(delivery), 3)
    consumer.close()
    dead.close()
    [(state, owner)] = queue_rows(migrated).values()
    assert (state, owner) == ("consumed", dead.worker_id)

    # When the pump hands the same version out again (its lease ran out)
    dispatch([(delivery, 3)])

    # Then the task is queued again, once, and a live worker runs it
    assert queue_rows(migrated) == {str(task_id(delivery, 3)): ("queued", None)}
    ran: list[tuple[UUID, int]] = []
    worker = run_worker(broker, ran)
    try:
        wait_until(lambda: ran and not queue_rows(migrated), timeout=30)
    finally:
        worker.stop(timeout=5_000)
    assert ran == [(delivery, 3)]


def test_processes_migrating_together_create_the_queue_once(database_url):
    # Given a fresh database and four processes starting at once
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def migrate() -> None:
        try:
            results.append(apply_migrations(database_url))
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=migrate) for _ in range(4)]

    # When each migrates
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    # Then none fails, one created the task queue's tables, and they are there
    assert errors == []
    assert sorted(r.count("task-queue") for r in results) == [0, 0, 0, 1]
    tables = rows(
        database_url,
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'dramatiq'",
    )
    assert {t for (t,) in tables} == {"queue", "worker", "result"}


def test_a_database_with_the_dramatiq_pg_queue_moves_to_the_new_one(database_url, tmp_path):
    # Given a database migrated before the move (0001-0012: dramatiq-pg 0.x's queue table)
    old: Path = tmp_path / "migrations"
    old.mkdir()
    for path in sorted(migrations_dir().glob("*.sql")):
        if path.stem < "0013":
            shutil.copy(path, old / path.name)
    apply_migrations(database_url, old)
    columns = "SELECT column_name FROM information_schema.columns WHERE table_schema = 'dramatiq' AND table_name = 'queue'"
    assert ("available_at",) not in rows(database_url, columns)

    # When it is migrated now
    applied = apply_migrations(database_url)

    # Then the old queue is replaced by dramatiq-postgres's, which a broker can use
    assert applied[0] == "0013_task_queue_dramatiq_postgres"  # later migrations may follow
    assert applied[-1] == "task-queue"
    assert ("available_at",) in rows(database_url, columns)
    broker = make_broker(database_url)
    try:
        enqueuer(broker)([(uuid4(), 1)])
    finally:
        broker.close()
    assert [s for s, _ in queue_rows(database_url).values()] == ["queued"]
