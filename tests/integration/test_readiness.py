"""Readiness waits for what was written before it was first asked: ``serve --demo`` seeds
the catalog after its read models started, and /readyz must not say ready before the
read models hold it."""

import time
from pathlib import Path

from domain.context import system_actor
from tests.conftest import make_runtime
from tests.support import SettableClock, demo_specs


def test_ready_only_once_the_read_models_hold_what_was_seeded_at_start(
    database_url: str, tmp_path: Path, clock: SettableClock
) -> None:
    runtime = make_runtime(database_url, tmp_path, clock)
    try:
        runtime.services.catalog.apply(demo_specs(), system_actor(source="test"))
        deadline = time.monotonic() + 30
        while not runtime.services.health.projections_ok():
            assert time.monotonic() < deadline, "never ready"
            time.sleep(0.01)
        # Nothing is written meanwhile: ready means no read model is behind the log.
        assert runtime.projections.behind() == {}
    finally:
        runtime.close()
