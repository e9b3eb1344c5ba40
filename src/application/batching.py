"""Policies that record a backlog of upstream events in a few writes, not one per event.

The library's ``EventSourcedProjection.process_event`` records every upstream event in a
transaction of its own with its tracking record, even when the policy decides nothing:
one commit per event. A ``BatchingPolicy`` keeps the event in memory while the log it
came from holds more after it (up to ``BATCH``); then it decides for all of them and
records what they decided in one write, with the tracking of the last. Nothing is
recorded before that write, so a stop midway processes them again, exactly once. Live
(the event is the log's last), each event is written at once.
"""

from abc import abstractmethod
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from eventsourcing.application import ProcessingEvent
from eventsourcing.persistence import ApplicationRecorder, IntegrityError, Tracking
from eventsourcing.projection import EventSourcedProjection

# The most upstream events recorded in one write while catching up. The library
# pipelines a write's inserts: with a few hundred in one write, the embedded server's
# Unix socket stalled the pipeline for good (found with 100 and 500 here).
BATCH = 20
ATTEMPTS = 5  # decisions of one batch, when the event store refuses its write


@dataclass
class _Upstream:
    """The events of one followed log waiting to be recorded, and that log's last known
    position."""

    pending: list[tuple[Any, Tracking]] = field(default_factory=list)
    head: int = 0


class BatchingPolicy(EventSourcedProjection[UUID]):
    """An ``EventSourcedProjection`` whose ``policy`` runs for a batch of events at a
    time, all of them collecting into one ``ProcessingEvent`` (a later event sees the
    aggregates an earlier one collected in ``processing_event.aggregates``).

    Subclasses name the logs they follow (``followed_log``) and may hold something for
    the time of a batch's decisions (``deciding``). The events of each followed log wait
    apart, so a tracking record never closes another log's events (a runner builds an
    instance of its own for its log all the same).
    """

    def __init__(self, env: Any = None) -> None:
        self._upstreams: dict[str, _Upstream] = {}
        super().__init__(env)

    @abstractmethod
    def followed_log(self, application_name: str) -> ApplicationRecorder:
        """The recorder of the upstream log named ``application_name``."""

    def deciding(self, events: list[Any]) -> AbstractContextManager[Any]:
        """Held while a batch of ``events`` is decided and recorded."""
        return nullcontext()

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        """Keep the event while its log holds more after it (up to ``BATCH``); then
        record what the waiting events decide in one write (see the module)."""
        upstream = self._upstreams.setdefault(tracking.application_name, _Upstream())
        upstream.pending.append((domain_event, tracking))
        if len(upstream.pending) < BATCH and tracking.notification_id < self._log_head(
            upstream, tracking
        ):
            return
        pending, upstream.pending = upstream.pending, []
        self._record_batch(pending)

    def _log_head(self, upstream: _Upstream, tracking: Tracking) -> int:
        """The last position of the event's log (asked again once the event reached it)."""
        if tracking.notification_id >= upstream.head:
            recorder = self.followed_log(tracking.application_name)
            upstream.head = recorder.max_notification_id() or 0
        return upstream.head

    def _record_batch(self, pending: list[tuple[Any, Tracking]]) -> None:
        """As the library records one event, for several; decided again when the event
        store refuses the write (e.g. a worker changed a delivery that one of them
        withdraws at the same moment: the store refuses the older version)."""
        events = [domain_event for domain_event, _ in pending]
        for attempt in range(ATTEMPTS):
            processing_event = ProcessingEvent[UUID](tracking=pending[-1][1])
            try:
                with self.deciding(events):
                    for domain_event in events:
                        self.policy(domain_event, processing_event)
                    recordings = self._record(processing_event)
            except IntegrityError:
                if attempt == ATTEMPTS - 1:
                    raise
                continue
            self._take_snapshots(processing_event)
            self.notify(processing_event.events)
            self._notify(recordings)
            return
