"""Running the projections: one eventsourcing ProjectionRunner per read model,
waiting on tracking positions, health, and rebuilding a read model from the log."""

import time
from collections.abc import Mapping
from typing import Any

from eventsourcing.persistence import InfrastructureFactory
from eventsourcing.projection import Projection, ProjectionRunner
from eventsourcing.utils import Environment

from application.base import Position
from application.catalog import Catalog
from application.ports import ReadModelSync
from application.scheduling import Scheduling
from projections.appointment_history import AppointmentHistoryProjection
from projections.availability import AvailabilityProjection
from projections.catalog_view import CatalogProjection
from projections.view import ReadModelView

PROJECTIONS: dict[str, tuple[type[Any], type[Projection[ReadModelView]]]] = {
    CatalogProjection.name: (Catalog, CatalogProjection),
    AppointmentHistoryProjection.name: (Scheduling, AppointmentHistoryProjection),
    AvailabilityProjection.name: (Scheduling, AvailabilityProjection),
}


class Projections(ReadModelSync):
    """Every read model of the process, kept up to date from the event log."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = dict(env)
        self._runners: dict[str, ProjectionRunner[Any, ReadModelView]] = {}

    def start(self) -> None:
        for name in PROJECTIONS:
            self._start(name)

    def _start(self, name: str) -> None:
        application_class, projection_class = PROJECTIONS[name]
        runner = ProjectionRunner(
            application_class=application_class,
            projection_class=projection_class,
            view_class=ReadModelView,
            env=self._env,
        )
        self._runners[name] = runner.__enter__()

    def stop(self) -> None:
        for name in list(self._runners):
            self._stop(name)

    def _stop(self, name: str) -> None:
        runner = self._runners.pop(name)
        runner.stop()
        runner.__exit__(None, None, None)
        runner.view.datastore.close()

    def running(self) -> dict[str, bool]:
        """Each read model and whether its runner is still processing events."""
        return {name: not r.is_interrupted.is_set() for name, r in self._runners.items()}

    def lag(self) -> dict[str, int]:
        """How many notifications each read model is behind its application's log."""
        result = {}
        for name, runner in self._runners.items():
            head = runner.app.recorder.max_notification_id() or 0
            done = runner.view.max_tracking_id(runner.app_name) or 0
            result[name] = head - done
        return result

    def wait(self, position: Position, timeout: float = 5.0) -> bool:
        views = [r.view for r in self._runners.values() if r.app_name == position.application]
        deadline = time.monotonic() + timeout
        pause = 0.002
        for view in views:
            while not view.has_tracking_id(position.application, position.notification_id):
                if time.monotonic() > deadline:
                    return False
                time.sleep(pause)
                pause = min(pause * 1.5, 0.025)
        return True

    def rebuild(self, name: str, timeout: float = 600.0) -> int:
        """Empty one read model and build it again from the whole log.

        Returns how many notifications the log held. Readers see the read model
        fill up again while this runs (versioned tables come with blue/green rebuilds).
        """
        application_class, projection_class = PROJECTIONS[name]
        was_running = name in self._runners
        if was_running:
            self._stop(name)
        view = (
            InfrastructureFactory[ReadModelView]
            .construct(env=Environment(projection_class.name, self._env))
            .tracking_recorder(ReadModelView)
        )
        view.truncate(projection_class.tables, application_class.name)  # type: ignore[attr-defined]
        view.datastore.close()
        self._start(name)
        runner = self._runners[name]
        head = runner.app.recorder.max_notification_id() or 0
        if head:
            runner.wait(head, timeout=timeout)
        if not was_running:
            self._stop(name)
        return head
