"""A read model that cannot apply an event parks it and moves on (issue 9, finding 2).

The failure is made the way it happened: a row change PostgreSQL refuses (a NUL inside a
text column), for one event type only (the catalog projection's pure function is
changed for ``Location.Revised`` within the test). The runner keeps running, later
events are applied, and the operator sees the parked event everywhere they look.
"""

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
import structlog
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import projections.catalog_view as catalog_view
from adapters.metrics import SystemCollector
from api.app import create_app
from application.catalog_file import CatalogSpecs
from domain.context import system_actor
from domain.location import Location
from domain.ris.message_delivery import CHANNELS
from imaging_bridge.bootstrap import Runtime
from imaging_bridge.observability import FOLLOWERS
from projections.changes import Delete, Update, Upsert
from tests.conftest import make_runtime
from tests.support import SettableClock, demo_specs

pytestmark = pytest.mark.integration

NUL_REFUSED = "PostgreSQL text fields cannot contain NUL (0x00) bytes"
real_catalog_changes = catalog_view.catalog_changes


def nul_for_revised_locations(event: Any) -> list[Any]:
    """The real pure function, except that a revised location's row gets a NUL."""
    changes = real_catalog_changes(event)
    if isinstance(event, Location.Revised):
        return [Upsert(c.table, c.key, {**c.values, "name": "Lake\x00shore"}) for c in changes]
    return changes


def revised(specs: CatalogSpecs, kind: str, suffix: str) -> CatalogSpecs:
    changed = specs.model_copy(deep=True)
    entries: list[dict[str, Any]] = getattr(changed, kind)
    entries[0]["name"] = f"{entries[0]['name']} {suffix}"
    return changed


def apply_and_wait(runtime: Runtime, specs: CatalogSpecs) -> int:
    change = runtime.services.catalog.apply(specs, system_actor(source="test"))
    assert change.position is not None
    assert runtime.services.sync.wait(change.position)
    return change.position.notification_id


def parked_rows(runtime: Runtime) -> list[tuple[Any, ...]]:
    with runtime.pool.connection() as conn:
        return conn.execute(
            "SELECT projection, application_name, notification_id, topic, error_class,"
            " error_message FROM parked_events ORDER BY id"
        ).fetchall()


def metric(runtime: Runtime, name: str) -> dict[str, float]:
    collector = SystemCollector(runtime.pool, followers=FOLLOWERS, channels=CHANNELS)
    return {
        sample.labels["read_model"]: sample.value
        for family in collector.collect()
        for sample in family.samples
        if sample.name == name
    }


@pytest.fixture
def broken_runtime(
    monkeypatch: pytest.MonkeyPatch, database_url: str, tmp_path: Path, clock: SettableClock
) -> Iterator[Runtime]:
    monkeypatch.setattr(catalog_view, "catalog_changes", nul_for_revised_locations)
    runtime = make_runtime(database_url, tmp_path, clock)
    apply_and_wait(runtime, demo_specs())
    yield runtime
    runtime.close()


def test_an_unappliable_event_is_parked_and_the_read_model_moves_on(
    broken_runtime: Runtime, database_url: str, tmp_path: Path
) -> None:
    runtime = broken_runtime
    specs = demo_specs()
    location = specs.locations[0]

    # When a location is renamed (the event PostgreSQL refuses), then an exam type is.
    with structlog.testing.capture_logs() as logs:
        parked_at = apply_and_wait(runtime, renamed := revised(specs, "locations", "East"))
    later = apply_and_wait(runtime, revised(renamed, "appointment_types", "(new)"))

    # Then the runner still runs, and the later event is in the read model.
    assert runtime.projections.running()["catalog_view"]
    assert later > parked_at
    with runtime.pool.connection() as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM rm_appointment_types")}
        location_name = conn.execute(
            "SELECT name FROM rm_locations WHERE code = %s", (location["code"],)
        ).fetchone()
        alerts = conn.execute("SELECT kind, subject_id, detail FROM alerts").fetchall()
    assert f"{specs.appointment_types[0]['name']} (new)" in names
    assert location_name == (location["name"],)  # the parked change was not applied

    # And the event is parked with its error, and nothing of its state.
    [row] = parked_rows(runtime)
    assert row == (
        "catalog_view",
        "catalog",
        parked_at,
        f"{Location.Revised.__module__}:{Location.Revised.__qualname__}",
        "DataError",
        NUL_REFUSED,
    )
    assert not any("East" in str(value) for value in row)
    assert alerts == [
        (
            "projection_event_parked",
            f"catalog_view:catalog:{parked_at}",
            f"DataError: {NUL_REFUSED}",
        )
    ]
    [line] = [entry for entry in logs if entry["event"] == "projection_event_parked"]
    assert line["log_level"] == "error"
    assert (line["projection"], line["notification_id"]) == ("catalog_view", parked_at)
    assert not any("East" in str(value) for value in line.values())

    # And /readyz names it (parked events leave the process ready), the metric counts it,
    with TestClient(create_app(runtime.services)) as client:
        ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ready",
        "database": True,
        "projections": True,
        "behind": {},
        "parked": {"catalog_view": 1},
    }
    parked_metric = metric(runtime, "imaging_bridge_parked_events")
    assert parked_metric["catalog_view"] == 1
    assert parked_metric["orders"] == 0

    # and `projections status` prints it.
    status = subprocess.run(
        [sys.executable, "-m", "imaging_bridge", "projections", "status"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "DATABASE_URL": database_url, "DATA_DIR": str(tmp_path)},
        check=False,
    )
    assert status.returncode == 0, status.stderr
    assert "catalog_view: 0 behind" in status.stdout
    assert f"catalog_view: parked catalog #{parked_at} " in status.stdout
    assert f"(DataError: {NUL_REFUSED})" in status.stdout


def test_a_read_model_behind_at_start_up_is_not_ready_until_it_catches_up(
    broken_runtime: Runtime,
) -> None:
    # Given a process whose read model has not caught up with the log it started with.
    runtime = broken_runtime
    runtime.projections._start_heads["catalog_view"] = 10**9  # the log "was" far ahead
    with TestClient(create_app(runtime.services)) as client:
        # Then it is not ready; once it has caught up, it is.
        assert client.get("/readyz").status_code == 503
        runtime.projections._start_heads["catalog_view"] = 1
        assert client.get("/readyz").json()["status"] == "ready"


# Garbage a projection's pure function might return (or raise) for one event.
EXCEPTIONS = st.sampled_from(
    [KeyError, ValueError, TypeError, AttributeError, ZeroDivisionError, RuntimeError]
)
VALUES = st.one_of(
    st.text(max_size=20),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True),
    st.none(),
    st.binary(max_size=10),
    st.uuids(),
    st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2),
)
TABLES = st.sampled_from(["rm_locations", "rm_resources", "rm_appointment_types", "nowhere"])
COLUMNS = st.one_of(
    st.sampled_from(["id", "code", "name", "spec", "modality"]), st.text(max_size=8)
)
ROWS = st.dictionaries(COLUMNS, VALUES, min_size=1, max_size=3)
CHANGES = st.lists(
    st.one_of(
        st.builds(Upsert, TABLES, ROWS, ROWS),
        st.builds(Update, TABLES, ROWS, ROWS),
        st.builds(Delete, TABLES, ROWS),
    ),
    max_size=3,
)
GARBAGE = st.one_of(EXCEPTIONS, CHANGES)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(garbage=GARBAGE)
def test_no_garbage_through_the_apply_path_stops_the_runner(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch, garbage: Any
) -> None:
    # Given the catalog projection's pure function answers garbage for location events.
    def garbage_for_locations(event: Any) -> list[Any]:
        if not isinstance(event, Location.Revised):
            return real_catalog_changes(event)
        if isinstance(garbage, type):
            raise garbage("synthetic")
        return list(garbage)

    monkeypatch.setattr(catalog_view, "catalog_changes", garbage_for_locations)

    # When a location is revised, then an exam type.
    tag = uuid4().hex[:8]
    already = len(parked_rows(runtime))
    renamed = revised(demo_specs(), "locations", tag)
    apply_and_wait(runtime, renamed)
    apply_and_wait(runtime, revised(renamed, "appointment_types", tag))

    # Then the runner runs on, the event is tracked, and if it raised it is parked.
    assert runtime.projections.running()["catalog_view"]
    new = parked_rows(runtime)[already:]
    if isinstance(garbage, type):
        [row] = new
        assert row[4] == garbage.__name__
        assert "synthetic" not in row[5]  # the message may hold data: where it was raised
    # And the later event is applied as usual.
    with runtime.pool.connection() as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM rm_appointment_types")}
    assert any(name.endswith(tag) for name in names)
