"""Running the projections: one eventsourcing ProjectionRunner per read model,
waiting on tracking positions, health, and rebuilding a read model from the log."""

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import psycopg
from eventsourcing.persistence import InfrastructureFactory
from eventsourcing.projection import Projection, ProjectionRunner
from eventsourcing.utils import Environment
from psycopg.sql import SQL, Identifier

from application.base import Position
from application.catalog import Catalog
from application.messaging import MessagingLog
from application.ports import ReadModelSync
from application.registry import RegistryLog
from application.ris.deliveries import Deliveries
from application.scheduling import SchedulingLog
from projections.appointment_history import AppointmentHistoryProjection
from projections.availability import AvailabilityProjection
from projections.catalog_view import CatalogProjection
from projections.deliveries_view import DeliveriesViewProjection
from projections.orders_view import OrdersProjection
from projections.parked import ParkedRow, parked_events, parking
from projections.patient_lookup import PatientLookupProjection
from projections.patient_merges import PatientMergesProjection
from projections.patient_phones import PatientPhonesProjection
from projections.progress import PROGRESS, TrackingListener
from projections.secure_threads import SecureThreadsProjection
from projections.view import ReadModelView

PROJECTIONS: dict[str, tuple[type[Any], type[Projection[ReadModelView]]]] = {
    CatalogProjection.name: (Catalog, CatalogProjection),
    AppointmentHistoryProjection.name: (SchedulingLog, AppointmentHistoryProjection),
    AvailabilityProjection.name: (SchedulingLog, AvailabilityProjection),
    OrdersProjection.name: (SchedulingLog, OrdersProjection),
    DeliveriesViewProjection.name: (Deliveries, DeliveriesViewProjection),
    PatientMergesProjection.name: (RegistryLog, PatientMergesProjection),
    PatientLookupProjection.name: (RegistryLog, PatientLookupProjection),
    PatientPhonesProjection.name: (RegistryLog, PatientPhonesProjection),
    SecureThreadsProjection.name: (MessagingLog, SecureThreadsProjection),
}
"""Every read model by name, with the application whose log it follows."""
Progress = Callable[[int, int], None]


class Projections(ReadModelSync):
    """Every read model of the process, kept up to date from the event log."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = dict(env)
        self._runners: dict[str, ProjectionRunner[Any, ReadModelView]] = {}
        self._readers: dict[str, ReadModelView] = {}
        # Readiness: the log's head when each runner started, until it has caught up.
        self._start_heads: dict[str, int] = {}
        self._heads_asked = False
        self._listener: TrackingListener | None = None
        self._listener_lock = threading.Lock()

    def start(self) -> None:
        for name in PROJECTIONS:
            self._start(name)

    def _start(self, name: str) -> None:
        application_class, projection_class = PROJECTIONS[name]
        if issubclass(projection_class, PatientLookupProjection | PatientPhonesProjection):
            projection_class = projection_class.keyed(self._env["CIPHER_KEY"])
        runner = ProjectionRunner(
            application_class=application_class,
            projection_class=parking(projection_class),  # see projections/parked.py
            view_class=ReadModelView,
            env=self._env,
        )
        self._runners[name] = runner.__enter__()
        self._start_heads[name] = runner.app.recorder.max_notification_id() or 0

    def stop(self) -> None:
        for name in list(self._runners):
            self._stop(name)
        for reader in self._readers.values():
            reader.datastore.close()
        self._readers.clear()
        if self._listener is not None:
            self._listener.stop()
            self._listener = None

    def _stop(self, name: str) -> None:
        runner = self._runners.pop(name)
        runner.stop()
        runner.__exit__(None, None, None)
        runner.view.datastore.close()

    def running(self) -> dict[str, bool]:
        """Each read model and whether its runner is still processing events."""
        return {name: not r.is_interrupted.is_set() for name, r in self._runners.items()}

    def lag(self) -> dict[str, int]:
        """How many notifications each read model is behind its application's log
        (whichever process runs the projection)."""
        # Every tracking position first, then each log's head once (three read models
        # follow the scheduling log): a head read after the positions is never behind
        # them, so no lag comes out negative while the projections run.
        done = {
            name: self._view(name).max_tracking_id(application_class.name) or 0
            for name, (application_class, _) in PROJECTIONS.items()
        }
        heads: dict[str, int] = {}
        for name, (application_class, _) in PROJECTIONS.items():
            log_name = application_class.name
            if log_name not in heads:
                heads[log_name] = self._head(self._view(name), log_name)
        return {
            name: heads[application_class.name] - done[name]
            for name, (application_class, _) in PROJECTIONS.items()
        }

    # --- parked events and readiness (projections/parked.py) ---

    def parked(self) -> dict[str, list[ParkedRow]]:
        """Each read model's parked events (events it could not apply and moved past)."""
        return {name: parked_events(self._view(name), name) for name in PROJECTIONS}

    def behind(self) -> dict[str, int]:
        """The read models not caught up with their log, and by how many events."""
        return {name: n for name, n in self.lag().items() if n > 0}

    def caught_up(self) -> bool:
        """Every runner here has processed the log as it was when readiness was first
        asked (a process that starts far behind, or seeds data at start-up like
        ``serve --demo``, is not ready until then; later lag does not count)."""
        if not self._heads_asked:
            self._heads_asked = True
            for name in list(self._start_heads):
                runner = self._runners.get(name)
                if runner is not None:
                    head = runner.app.recorder.max_notification_id() or 0
                    self._start_heads[name] = max(self._start_heads[name], head)
        for name, head in list(self._start_heads.items()):
            runner = self._runners.get(name)
            if runner is None or (runner.view.max_tracking_id(runner.app_name) or 0) >= head:
                self._start_heads.pop(name, None)
        return not self._start_heads

    # --- end of parked events ---

    def healthy(self, max_lag: int = 1000) -> bool:
        """Runners here are all running; without runners here (an API worker), every read
        model is being kept up by another process (not more than ``max_lag`` behind)."""
        if self._runners:
            return all(self.running().values()) and self.caught_up()
        return all(behind <= max_lag for behind in self.lag().values())

    # -- waiting for a position: woken by projections.progress, not by polling ------------

    def head(self, application: str) -> int | None:
        """The last notification id of ``application``'s log (0 when empty); None when no
        read model here follows an application of that name."""
        names = [n for n, (a, _) in PROJECTIONS.items() if a.name == application]
        return self._head(self._view(names[0]), application) if names else None

    def wait(self, position: Position, timeout: float = 5.0) -> bool:
        views = [
            self._view(name)
            for name, (application_class, _) in PROJECTIONS.items()
            if application_class.name == position.application
        ]
        recheck = None
        if any(name not in self._runners for name in PROJECTIONS):
            # Another process runs (some) projections: their views' NOTIFY wakes us
            # through the listener; a re-check each half second covers a notification
            # sent while the listener was (re)connecting.
            self._listen()
            recheck = 0.5

        def done() -> bool:
            return all(
                view.has_tracking_id(position.application, position.notification_id)
                for view in views
            )

        return PROGRESS.wait_for(position.application, done, timeout, recheck)

    def _listen(self) -> None:
        with self._listener_lock:
            if self._listener is not None:
                return
            env = self._env
            self._listener = TrackingListener(
                lambda: psycopg.connect(
                    dbname=env["POSTGRES_DBNAME"],
                    host=env["POSTGRES_HOST"],
                    port=env["POSTGRES_PORT"],
                    user=env["POSTGRES_USER"],
                    password=env.get("POSTGRES_PASSWORD", ""),
                    autocommit=True,
                    connect_timeout=int(env.get("POSTGRES_CONNECT_TIMEOUT", "10")),
                ),
                PROGRESS,
            )
            self._listener.start()

    @staticmethod
    def _head(view: ReadModelView, application_name: str) -> int:
        with view.datastore.transaction(commit=False) as curs:
            curs.execute(
                SQL("SELECT max(notification_id) AS head FROM {}").format(
                    Identifier(f"{application_name}_events")
                )
            )
            row = curs.fetchone()
        return int((row or {}).get("head") or 0)

    def _view(self, name: str) -> ReadModelView:
        return self._runners[name].view if name in self._runners else self._reader(name)

    def _reader(self, name: str) -> ReadModelView:
        """A view's tracking, for a process that serves reads while another runs the
        projection (API workers of ``serve --workers N``)."""
        if name not in self._readers:
            self._readers[name] = (
                InfrastructureFactory[ReadModelView]
                .construct(env=Environment(PROJECTIONS[name][1].name, self._env))
                .tracking_recorder(ReadModelView)
            )
        return self._readers[name]

    def rebuild(self, name: str, timeout: float = 600.0, progress: Progress | None = None) -> int:
        """Empty one read model and build it again from the whole log.

        Returns how many notifications the log held; ``progress(done, head)`` is called
        about once a second meanwhile. Readers see the read model fill up again while
        this runs (versioned tables come with blue/green rebuilds).
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
        deadline = time.monotonic() + timeout
        while head:
            done = runner.view.max_tracking_id(application_class.name) or 0
            if progress is not None:
                progress(done, head)
            if done >= head:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} did not catch up within {timeout:g} s")
            try:
                runner.wait(head, timeout=1.0)
            except TimeoutError:
                continue
        if not was_running:
            self._stop(name)
        return head
