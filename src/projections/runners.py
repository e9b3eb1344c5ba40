"""Running the projections: one follower thread per event log for the read models fed by
it (``projections.log_follower``), waiting on tracking positions, health, and rebuilding
a read model from the log."""

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, cast

import psycopg
from eventsourcing.application import Application
from eventsourcing.persistence import InfrastructureFactory
from eventsourcing.postgres import PostgresDatastore, PostgresFactory
from eventsourcing.projection import Projection
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
from projections.log_follower import LogFollower, ReadModel
from projections.orders_view import OrdersProjection
from projections.parked import ParkedRow, parked_events
from projections.patient_lookup import PatientLookupProjection
from projections.patient_merges import PatientMergesProjection
from projections.patient_phones import PatientPhonesProjection
from projections.progress import PROGRESS, Listener, TrackingListener
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
VIEWS = "read_models"
"""The environment name of the views' shared pool (``READ_MODELS_POSTGRES_POOL_SIZE``...)."""
LISTEN_APPLICATION_NAME = "imaging-bridge-listen"


class Projections(ReadModelSync):
    """Every read model of the process, kept up to date from the event logs.

    One ``LogFollower`` thread per log feeds the read models of that log, woken by one
    LISTEN connection for every log (``projections.progress.Listener``); the views share
    one connection pool. ``logs`` are the process's applications by name (their pools
    serve the log reads too); a log without one gets an application made here."""

    def __init__(
        self, env: Mapping[str, str], logs: Mapping[str, Application[Any]] | None = None
    ) -> None:
        self._env = dict(env)
        self._logs: dict[str, Application[Any]] = dict(logs or {})
        self._own_logs: list[Application[Any]] = []
        self._followers: dict[str, LogFollower] = {}  # by application name
        self._views: dict[str, ReadModelView] = {}
        self._views_lock = threading.Lock()
        self._datastore: PostgresDatastore | None = None
        self._log_listener: Listener | None = None
        # Readiness: the log's head when each read model started, until it has caught up.
        self._start_heads: dict[str, int] = {}
        self._heads_asked = False
        self._listener: TrackingListener | None = None
        self._listener_lock = threading.Lock()

    def start(self) -> None:
        for name in PROJECTIONS:
            self._start(name)
        by_channel = {follower.channel: follower for follower in self._followers.values()}
        self._log_listener = Listener(
            self._connect,
            list(by_channel),
            lambda channel, _: by_channel[channel].wake(),
            self._wake_all,  # what was recorded while it was not listening
            name="log-listener",
        )
        self._log_listener.start()

    def _wake_all(self) -> None:
        for follower in list(self._followers.values()):
            follower.wake()

    def _start(self, name: str) -> None:
        application_class, projection_class = PROJECTIONS[name]
        if issubclass(projection_class, PatientLookupProjection | PatientPhonesProjection):
            projection_class = projection_class.keyed(self._env["CIPHER_KEY"])
        follower = self._follower(application_class)
        self._start_heads[name] = follower.app.recorder.max_notification_id() or 0
        follower.attach(ReadModel(name, projection_class, self._view(name)))

    def _follower(self, application_class: type[Any]) -> LogFollower:
        """The follower of ``application_class``'s log (started on first use)."""
        log_name = application_class.name
        if log_name not in self._followers:
            app = self._logs.get(log_name)
            if app is None:
                app = application_class(self._env)
                self._own_logs.append(app)
            self._followers[log_name] = follower = LogFollower(app)
            follower.start()
        return self._followers[log_name]

    def _models(self) -> dict[str, ReadModel]:
        """The read models this process keeps, by name."""
        return {n: m for f in self._followers.values() for n, m in f.models.items()}

    def stop(self) -> None:
        if self._log_listener is not None:
            self._log_listener.stop()
            self._log_listener = None
        for follower in self._followers.values():
            follower.stop()
        self._followers.clear()
        for app in self._own_logs:
            app.close()
        self._own_logs.clear()
        if self._datastore is not None:
            self._datastore.close()
            self._datastore = None
        self._views.clear()
        if self._listener is not None:
            self._listener.stop()
            self._listener = None

    def running(self) -> dict[str, bool]:
        """Each read model kept here and whether it is still processing events."""
        return {name: model.error is None for name, model in self._models().items()}

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
        """Every read model kept here has processed the log as it was when readiness was first
        asked (a process that starts far behind, or seeds data at start-up like
        ``serve --demo``, is not ready until then; later lag does not count)."""
        models = self._models()
        if not self._heads_asked:
            self._heads_asked = True
            for name in list(self._start_heads):
                if name in models:
                    head = self._log_of(name).recorder.max_notification_id() or 0
                    self._start_heads[name] = max(self._start_heads[name], head)
        for name, head in list(self._start_heads.items()):
            model = models.get(name)
            log_name = PROJECTIONS[name][0].name
            if model is None or (model.view.max_tracking_id(log_name) or 0) >= head:
                self._start_heads.pop(name, None)
        return not self._start_heads

    # --- end of parked events ---

    def healthy(self, max_lag: int = 1000) -> bool:
        """Read models kept here are all running; without any here (an API worker), every read
        model is being kept up by another process (not more than ``max_lag`` behind)."""
        if self._models():
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
        if any(name not in self._models() for name in PROJECTIONS):
            # Another process runs (some) projections: their views' NOTIFY wakes us
            # through the listener; a re-check each half second covers a notification
            # sent while the listener was (re)connecting.
            self.listen()
            recheck = 0.5

        def done() -> bool:
            return all(
                view.has_tracking_id(position.application, position.notification_id)
                for view in views
            )

        return PROGRESS.wait_for(position.application, done, timeout, recheck)

    def listen(self) -> None:
        """Hear the read models other processes keep (their tracking NOTIFY) from now on,
        so that this process's waiters on ``PROGRESS`` wake at once (``wait`` starts it
        when it needs it; an outbound process's pumps sleep until the deliveries read
        model moves)."""
        with self._listener_lock:
            if self._listener is not None:
                return
            self._listener = TrackingListener(self._connect, PROGRESS)
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

    def _connect(self) -> psycopg.Connection[Any]:
        """A connection of its own, for LISTEN."""
        env = self._env
        return psycopg.connect(
            dbname=env["POSTGRES_DBNAME"],
            host=env["POSTGRES_HOST"],
            port=env["POSTGRES_PORT"],
            user=env["POSTGRES_USER"],
            password=env.get("POSTGRES_PASSWORD", ""),
            autocommit=True,
            connect_timeout=int(env.get("POSTGRES_CONNECT_TIMEOUT", "10")),
            application_name=LISTEN_APPLICATION_NAME,
        )

    def _log_of(self, name: str) -> Application[Any]:
        return self._followers[PROJECTIONS[name][0].name].app

    def _view(self, name: str) -> ReadModelView:
        """``name``'s view (its tracking and its tables), on the pool all views share:
        used by the follower that applies events to it, and by readers (e.g. the API
        workers of ``serve --workers N``, while another process runs the projections)."""
        with self._views_lock:
            if name not in self._views:
                factory = cast(
                    PostgresFactory,
                    InfrastructureFactory.construct(env=Environment(VIEWS, self._env)),
                )
                if self._datastore is None:
                    self._datastore = factory.datastore
                view = ReadModelView(
                    datastore=self._datastore,
                    tracking_table_name=f"{PROJECTIONS[name][1].name.lower()}_tracking",
                )
                if factory.env_create_table():
                    view.create_table()
                self._views[name] = view
            return self._views[name]

    def rebuild(self, name: str, timeout: float = 600.0, progress: Progress | None = None) -> int:
        """Empty one read model and build it again from the whole log.

        Returns how many notifications the log held; ``progress(done, head)`` is called
        about once a second meanwhile. Readers see the read model fill up again while
        this runs (versioned tables come with blue/green rebuilds).
        """
        application_class, projection_class = PROJECTIONS[name]
        follower = self._follower(application_class)
        was_running = follower.detach(name) is not None  # waits for its round to end
        view = self._view(name)
        view.truncate(projection_class.tables, application_class.name)  # type: ignore[attr-defined]
        self._start(name)
        head = follower.app.recorder.max_notification_id() or 0
        deadline = time.monotonic() + timeout

        def done() -> bool:
            position = view.max_tracking_id(application_class.name) or 0
            if progress is not None:
                progress(position, head)
            return position >= head

        while not PROGRESS.wait_for(application_class.name, done, 1.0):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} did not catch up within {timeout:g} s")
        if not was_running:
            follower.detach(name)
        return head
