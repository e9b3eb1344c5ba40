"""Rate limits and failure lockouts on PostgreSQL, and the API's 429 for them."""

import hashlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from threading import Barrier
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from psycopg_pool import ConnectionPool

from adapters.database import reader_pool
from adapters.limits import PostgresRateLimiter, PostgresThrottle
from adapters.migrations import apply_migrations
from api.errors import install_error_handlers
from api.limits import rate_limit, too_many_attempts
from tests.support import T0, SettableClock

pytestmark = pytest.mark.integration

THREADS = 20
EMAIL = "alice.patient@example.org"


@pytest.fixture
def pool(database_url: str) -> Iterator[ConnectionPool[Any]]:
    apply_migrations(database_url)
    pool = reader_pool(database_url, THREADS + 2)
    yield pool
    pool.close()


@pytest.fixture
def limiter(pool: ConnectionPool[Any]) -> PostgresRateLimiter:
    return PostgresRateLimiter(pool)


@pytest.fixture
def throttle(pool: ConnectionPool[Any]) -> PostgresThrottle:
    return PostgresThrottle(pool)


def rows(pool: ConnectionPool[Any], sql: str) -> list[tuple[Any, ...]]:
    with pool.connection() as conn:
        return conn.execute(sql).fetchall()


# T0 is 12:00:00 UTC, so a 60-second window starts there.


def test_hits_within_the_limit_pass_and_the_next_one_waits_for_the_window_end(limiter):
    now = T0 + timedelta(seconds=15.5)

    allowed = [limiter.hit("sign_in", "10.0.0.1", 3, 60, now) for _ in range(3)]
    refused = limiter.hit("sign_in", "10.0.0.1", 3, 60, now)

    assert allowed == [0.0, 0.0, 0.0]
    assert refused == pytest.approx(44.5)


def test_a_hit_at_the_very_start_of_a_window_waits_the_whole_window(limiter):
    limiter.hit("sign_in", "10.0.0.1", 1, 60, T0)

    assert limiter.hit("sign_in", "10.0.0.1", 1, 60, T0) == pytest.approx(60.0)


def test_a_new_window_starts_a_new_budget(limiter):
    for _ in range(3):
        limiter.hit("sign_in", "10.0.0.1", 2, 60, T0 + timedelta(seconds=59))
    assert limiter.hit("sign_in", "10.0.0.1", 2, 60, T0 + timedelta(seconds=59.9)) > 0

    assert limiter.hit("sign_in", "10.0.0.1", 2, 60, T0 + timedelta(seconds=60)) == 0.0
    assert limiter.hit("sign_in", "10.0.0.1", 2, 60, T0 + timedelta(seconds=61)) == 0.0
    assert limiter.hit("sign_in", "10.0.0.1", 2, 60, T0 + timedelta(seconds=62)) > 0


def test_keys_and_buckets_have_separate_budgets(limiter):
    limiter.hit("sign_in", "10.0.0.1", 1, 60, T0)
    assert limiter.hit("sign_in", "10.0.0.1", 1, 60, T0) > 0

    assert limiter.hit("sign_in", "10.0.0.2", 1, 60, T0) == 0.0
    assert limiter.hit("register", "10.0.0.1", 1, 60, T0) == 0.0


def test_concurrent_hits_are_all_counted(limiter, pool):
    per_thread, limit = 10, 150
    barrier = Barrier(THREADS)

    def burst(_: int) -> list[float]:
        barrier.wait()
        return [limiter.hit("sign_in", "10.0.0.1", limit, 60, T0) for _ in range(per_thread)]

    with ThreadPoolExecutor(max_workers=THREADS) as executor:
        waits = [w for result in executor.map(burst, range(THREADS)) for w in result]

    assert sum(1 for w in waits if w == 0.0) == limit
    assert rows(pool, "SELECT count FROM rate_limit_windows") == [(THREADS * per_thread,)]


def test_purge_deletes_only_windows_that_have_ended(limiter, pool):
    limiter.hit("sign_in", "10.0.0.1", 5, 60, T0)
    limiter.hit("sign_in", "10.0.0.1", 5, 60, T0 + timedelta(seconds=60))

    deleted = limiter.purge(T0 + timedelta(seconds=90))

    assert deleted == 1
    assert [r[0] for r in rows(pool, "SELECT window_start FROM rate_limit_windows")] == [
        T0 + timedelta(seconds=60)
    ]


def fail(throttle: PostgresThrottle, times: int, now) -> None:
    for _ in range(times):
        throttle.failure(EMAIL, now)


def test_the_first_five_failures_are_free(throttle):
    for _ in range(5):
        throttle.failure(EMAIL, T0)
        assert throttle.retry_after(EMAIL, T0) == 0.0


def test_each_failure_past_the_free_ones_doubles_the_lock_up_to_fifteen_minutes(throttle):
    fail(throttle, 5, T0)
    now = T0
    expected = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900, 900]
    seen = []
    for _ in expected:
        throttle.failure(EMAIL, now)
        seen.append(throttle.retry_after(EMAIL, now))
        now += timedelta(seconds=seen[-1])  # wait out the lock, then fail again
        assert throttle.retry_after(EMAIL, now) == 0.0

    assert seen == expected


def test_a_locked_key_waits_only_what_is_left_of_its_lock(throttle):
    fail(throttle, 8, T0)  # the 8th locks for 4 s

    assert throttle.retry_after(EMAIL, T0 + timedelta(seconds=1.5)) == pytest.approx(2.5)
    assert throttle.retry_after("someone.else@example.org", T0) == 0.0


def test_success_clears_the_failures(throttle):
    fail(throttle, 7, T0)

    throttle.success(EMAIL)

    assert throttle.retry_after(EMAIL, T0) == 0.0
    fail(throttle, 5, T0)
    assert throttle.retry_after(EMAIL, T0) == 0.0
    throttle.failure(EMAIL, T0)
    assert throttle.retry_after(EMAIL, T0) == 1.0


def test_a_quiet_hour_forgets_the_failures(throttle):
    fail(throttle, 8, T0)

    throttle.failure(EMAIL, T0 + timedelta(hours=1))

    assert throttle.retry_after(EMAIL, T0 + timedelta(hours=1)) == 0.0
    fail(throttle, 4, T0 + timedelta(hours=1))
    assert throttle.retry_after(EMAIL, T0 + timedelta(hours=1)) == 0.0


def test_failures_less_than_an_hour_apart_keep_counting(throttle):
    fail(throttle, 8, T0)
    later = T0 + timedelta(minutes=59, seconds=59)

    throttle.failure(EMAIL, later)

    assert throttle.retry_after(EMAIL, later) == 8.0


def test_the_policy_is_configurable(pool):
    throttle = PostgresThrottle(
        pool,
        free_failures=1,
        base_delay=timedelta(seconds=10),
        max_delay=timedelta(seconds=30),
        forget_after=timedelta(minutes=5),
    )
    locks = []
    for _ in range(4):
        throttle.failure(EMAIL, T0)
        locks.append(throttle.retry_after(EMAIL, T0))

    throttle.failure(EMAIL, T0 + timedelta(minutes=5))

    assert locks == [0.0, 10.0, 20.0, 30.0]
    assert throttle.retry_after(EMAIL, T0 + timedelta(minutes=5)) == 0.0


def test_concurrent_failures_are_all_counted(pool):
    throttle = PostgresThrottle(pool, free_failures=THREADS - 1)
    barrier = Barrier(THREADS)

    def attempt(_: int) -> None:
        barrier.wait()
        throttle.failure(EMAIL, T0)

    with ThreadPoolExecutor(max_workers=THREADS) as executor:
        list(executor.map(attempt, range(THREADS)))

    assert throttle.retry_after(EMAIL, T0) == 1.0  # exactly one failure past the free ones


def test_throttle_purge_keeps_keys_still_remembered(throttle, pool):
    fail(throttle, 6, T0)
    throttle.failure("bob@example.org", T0 + timedelta(minutes=30))

    deleted = throttle.purge(T0 + timedelta(hours=1))

    assert deleted == 1
    assert throttle.retry_after("bob@example.org", T0 + timedelta(minutes=30)) == 0.0
    assert rows(pool, "SELECT count(*) FROM throttle_failures") == [(1,)]


def test_keys_are_stored_only_as_sha256_digests(limiter, throttle, pool):
    limiter.hit("sign_in", EMAIL, 5, 60, T0)
    fail(throttle, 6, T0)

    stored = rows(pool, "SELECT * FROM rate_limit_windows") + rows(
        pool, "SELECT * FROM throttle_failures"
    )

    digest = hashlib.sha256(EMAIL.encode()).hexdigest()
    assert len(stored) == 2
    assert all(digest in row for row in stored)
    assert not any("alice" in str(value) for row in stored for value in row)


# The API dependency


def limited_app(limiter: PostgresRateLimiter, clock: SettableClock) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    app.state.services = SimpleNamespace(rate_limiter=limiter, clock=clock)

    @app.get("/ping", dependencies=[rate_limit("ping", 2, 60)])
    def ping() -> dict[str, str]:
        return {"pong": "yes"}

    return app


def test_the_dependency_answers_429_with_retry_after_once_the_budget_is_spent(limiter):
    clock = SettableClock(T0 + timedelta(seconds=15.5))
    client = TestClient(limited_app(limiter, clock))

    statuses = [client.get("/ping").status_code for _ in range(2)]
    refused = client.get("/ping")

    assert statuses == [200, 200]
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "45"
    assert refused.json() == {
        "code": "too_many_requests",
        "detail": "too many attempts; try again in 45 seconds",
    }

    clock.set(T0 + timedelta(seconds=60))
    assert client.get("/ping").status_code == 200


def test_the_dependency_counts_per_client_address(limiter):
    app = limited_app(limiter, SettableClock())
    first = TestClient(app, client=("10.0.0.1", 1234))
    second = TestClient(app, client=("10.0.0.2", 1234))

    first_statuses = [first.get("/ping").status_code for _ in range(3)]

    assert first_statuses == [200, 200, 429]
    assert second.get("/ping").status_code == 200


def test_too_many_attempts_rounds_the_wait_up_to_whole_seconds():
    error = too_many_attempts(0.2)

    assert (error.status_code, error.code) == (429, "too_many_requests")
    assert error.headers == {"Retry-After": "1"}
    assert error.detail == "too many attempts; try again in 1 second"
    assert too_many_attempts(899.01).headers == {"Retry-After": "900"}
