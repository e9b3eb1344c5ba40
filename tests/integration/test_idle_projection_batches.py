"""A backlog reaches a read model in batches: one transaction per batch, holding the
batch's row changes and its last tracking record (``projections.log_follower``). A batch
that fails is applied again event by event, so that only the event at fault is parked.

The backlog is the catalog's: the demo catalog, then a location renamed again and again,
written while no read model runs (a ``TOOL`` runtime) and applied by
``Projections.rebuild``. Transactions are counted by wrapping the view's one writer."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import projections.catalog_view as catalog_view
from domain.context import system_actor
from domain.location import Location
from imaging_bridge.bootstrap import TOOL, Runtime
from projections.changes import Upsert
from projections.view import ReadModelView
from tests.conftest import make_runtime
from tests.support import SettableClock, demo_specs

pytestmark = pytest.mark.integration

RENAMES = 120  # more row changes than a pipeline sync (view.SYNC_EVERY) covers
BAD = "Bad name"  # the one rename PostgreSQL refuses (a NUL is put in it)
real_catalog_changes = catalog_view.catalog_changes


def nul_for_the_bad_name(event: Any) -> list[Any]:
    changes = real_catalog_changes(event)
    if isinstance(event, Location.Revised) and event.spec.get("name") == BAD:
        return [Upsert(c.table, c.key, {**c.values, "name": "Bad\x00name"}) for c in changes]
    return changes


@pytest.fixture
def quiet_runtime(database_url: str, tmp_path: Path, clock: SettableClock) -> Iterator[Runtime]:
    """A runtime running no read model (events pile up in the logs)."""
    runtime = make_runtime(database_url, tmp_path, clock, parts=TOOL)
    yield runtime
    runtime.close()


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The tracking id each read-model transaction recorded, in order."""
    recorded: list[int] = []
    real_write = ReadModelView._write

    def counted(view: ReadModelView, changes: Any, tracking: Any) -> None:
        real_write(view, changes, tracking)
        recorded.append(tracking.notification_id)

    monkeypatch.setattr(ReadModelView, "_write", counted)
    return recorded


def backlog(runtime: Runtime, names: list[str]) -> tuple[str, int]:
    """The demo catalog, then its first location renamed to each of ``names``; the
    location's code and the catalog log's head."""
    specs = demo_specs()
    actor = system_actor(source="test")
    runtime.services.catalog.apply(specs, actor)
    for name in names:
        specs = specs.model_copy(deep=True)
        specs.locations[0]["name"] = name
        runtime.services.catalog.apply(specs, actor)
    head = runtime.services.catalog.recorder.max_notification_id() or 0
    return specs.locations[0]["code"], head


def location_name(runtime: Runtime, code: str) -> str:
    with runtime.pool.connection() as conn:
        row = conn.execute("SELECT name FROM rm_locations WHERE code = %s", (code,)).fetchone()
    assert row is not None
    return str(row[0])


def parked_ids(runtime: Runtime) -> list[int]:
    with runtime.pool.connection() as conn:
        rows = conn.execute("SELECT notification_id FROM parked_events ORDER BY 1").fetchall()
    return [row[0] for row in rows]


def test_a_backlog_is_applied_in_one_transaction_per_batch(
    quiet_runtime: Runtime, writes: list[int]
) -> None:
    # Given a catalog log of some 140 events that no read model has seen
    code, head = backlog(quiet_runtime, [f"Renamed {n}" for n in range(RENAMES)])
    assert head > RENAMES

    # When the catalog read model is built from it
    assert quiet_runtime.projections.rebuild("catalog_view") == head

    # Then one transaction held every event's changes, and the last event's tracking
    assert writes == [head]
    assert location_name(quiet_runtime, code) == f"Renamed {RENAMES - 1}"
    assert parked_ids(quiet_runtime) == []


def test_an_event_a_batch_cannot_apply_is_parked_alone(
    quiet_runtime: Runtime, writes: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a backlog with one rename PostgreSQL refuses, in the middle
    monkeypatch.setattr(catalog_view, "catalog_changes", nul_for_the_bad_name)
    names = [f"Renamed {n}" for n in range(RENAMES)]
    names[RENAMES // 2] = BAD
    code, head = backlog(quiet_runtime, names)

    # When the catalog read model is built from it
    assert quiet_runtime.projections.rebuild("catalog_view") == head

    # Then that event alone is parked, every other one is applied, and the read model
    # reaches the head: each event was applied once, in order, in its own transaction
    [parked] = parked_ids(quiet_runtime)
    assert location_name(quiet_runtime, code) == f"Renamed {RENAMES - 1}"
    assert writes == [n for n in range(1, head + 1) if n != parked]
    assert quiet_runtime.projections.behind().get("catalog_view", 0) == 0
