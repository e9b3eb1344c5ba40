"""Following one application's log for every read model fed by it, on one thread.

The eventsourcing library's ``ProjectionRunner`` gives each read model an application of
its own (a connection pool, four threads) and a subscription whose LISTEN loop wakes ten
times a second, and applies each event in a transaction of its own. Here one thread per
log sleeps until ``wake()`` (the process's one LISTEN connection hears the log's NOTIFY,
see ``projections.runners``), reads what is new once for all its read models, and applies
it to each in batches: one transaction per batch, holding the batch's row changes and its
last tracking record (``ReadModelView.batch``). A batch that fails is applied again one
event at a time, each in its own transaction, the way the library's runner does, so that
an event the read model cannot apply is parked on its own (``projections.parked``).
Every event of the log reaches every read model of it (a projection's ``topics`` are not
used to filter: none of ours declares any)."""

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog
from eventsourcing.application import Application
from eventsourcing.persistence import Tracking
from eventsourcing.projection import Projection

from projections.parked import UNREACHABLE, parking
from projections.view import ReadModelView

log = structlog.get_logger(__name__)

BATCH = 500
"""Events read from the log at a time, and so the most one read-model transaction holds."""


@dataclass
class ReadModel:
    """One read model this process keeps up to date: its projection and its view."""

    name: str
    projection_class: type[Projection[ReadModelView]]
    view: ReadModelView
    error: BaseException | None = None
    """Why it stopped (the database could not be reached); None while it runs."""
    _plain: Projection[ReadModelView] = field(init=False)
    _parking: Projection[ReadModelView] = field(init=False)

    def __post_init__(self) -> None:
        self._plain = self.projection_class(view=self.view)
        self._parking = parking(self.projection_class)(view=self.view)

    def apply(self, events: Sequence[tuple[Any, Tracking]]) -> None:
        """Apply ``events`` (in log order, none tracked here yet) in one transaction;
        if that fails, one at a time, parking any that cannot be applied."""
        try:
            with self.view.batch():
                for domain_event, tracking in events:
                    self._plain.process_event(domain_event, tracking)
        except UNREACHABLE:
            raise
        # Whatever failed (the projection's function or PostgreSQL refusing a row, or
        # another process having applied the events first) is sorted out event by event.
        except Exception:  # noqa: BLE001
            for domain_event, tracking in events:
                self._parking.process_event(domain_event, tracking)


class LogFollower:
    """Keeps the read models of one application's log up to date, on one thread."""

    def __init__(self, app: Application[Any], batch: int = BATCH) -> None:
        self.app = app
        self._batch = batch
        self._models: dict[str, ReadModel] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        # Held while a round applies events: detach() waits for it (a rebuild empties a
        # read model only while nothing is being written to it).
        self._round = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"follow-{app.name}", daemon=True)

    @property
    def channel(self) -> str:
        """The channel the log's recorder NOTIFYs when events are recorded."""
        return str(self.app.recorder.channel_name)  # type: ignore[attr-defined]

    @property
    def models(self) -> dict[str, ReadModel]:
        return dict(self._models)

    def attach(self, model: ReadModel) -> None:
        with self._round:
            self._models[model.name] = model
        self.wake()

    def detach(self, name: str) -> ReadModel | None:
        with self._round:
            return self._models.pop(name, None)

    def start(self) -> None:
        self._thread.start()
        self.wake()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=30)

    def wake(self) -> None:
        """Something may have been recorded: look at the log."""
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait()
            self._wake.clear()
            try:
                while not self._stop.is_set() and self._round_applied():
                    pass
            # The log itself could not be read or decoded (a wrong event key, a bug): every
            # read model of it stops, as the library's runner stopped on its subscription's
            # error, and /readyz says not ready.
            except Exception as error:
                log.exception("log_follower_failed", application=self.app.name)
                for model in self.models.values():
                    self._stopped(model, error)

    def _round_applied(self) -> bool:
        """Apply the next events to every read model behind; whether there may be more."""
        with self._round:
            models = [m for m in self._models.values() if m.error is None]
            positions = {}
            for model in models:
                try:
                    positions[model.name] = model.view.max_tracking_id(self.app.name) or 0
                except UNREACHABLE as error:
                    self._stopped(model, error)
            if not positions:
                return False
            try:
                notifications = self.app.recorder.select_notifications(
                    start=min(positions.values()),
                    limit=self._batch,
                    inclusive_of_start=False,
                )
            except UNREACHABLE as error:
                for model in models:
                    self._stopped(model, error)
                return False
            events = [
                (self.app.mapper.to_domain_event(n), Tracking(self.app.name, n.id))
                for n in notifications
            ]
            for model in models:
                mine = [e for e in events if e[1].notification_id > positions.get(model.name, -1)]
                if mine and model.error is None:
                    try:
                        model.apply(mine)
                    except UNREACHABLE as error:
                        self._stopped(model, error)
            return len(notifications) == self._batch

    def _stopped(self, model: ReadModel, error: BaseException) -> None:
        """The database went away under ``model``: it stops (``/readyz`` says not ready)
        until the process restarts, as the library's runner did."""
        model.error = error
        log.error("read_model_stopped", read_model=model.name, error=type(error).__name__)
