"""A batching policy (``application.batching``) in memory: the events of each followed log
wait apart until their log's head or ``BATCH``, and are decided and recorded together
with the tracking of the last; a refused write is decided again, and recorded once."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.application import ProcessingEvent
from eventsourcing.persistence import IntegrityError, Tracking

from application.batching import BATCH, BatchingPolicy


@dataclass
class Head:
    """A followed log's recorder, as far as the policy asks it."""

    position: int

    def max_notification_id(self) -> int:
        return self.position


class Recording(BatchingPolicy):
    """Remembers each batch it decided; refuses the first ``refusals`` writes."""

    name = "recording"

    def __init__(self, heads: dict[str, int], refusals: int = 0) -> None:
        super().__init__({"PERSISTENCE_MODULE": "eventsourcing.popo"})
        self.heads = {name: Head(position) for name, position in heads.items()}
        self.decided: list[list[str]] = []
        self.refusals = refusals

    def followed_log(self, application_name: str) -> Any:
        return self.heads[application_name]

    @contextmanager
    def deciding(self, events: list[Any]) -> Iterator[None]:
        self.decided.append([])
        yield

    def policy(self, domain_event: Any, processing_event: ProcessingEvent[UUID]) -> None:
        self.decided[-1].append(domain_event)

    def _record(self, processing_event: ProcessingEvent[UUID]) -> Any:
        if self.refusals:
            self.refusals -= 1
            raise IntegrityError("refused")
        return super()._record(processing_event)


def feed(policy: Recording, *positions: tuple[str, int]) -> None:
    for log, position in positions:
        policy.process_event(f"{log}{position}", Tracking(log, position))


def test_each_logs_events_wait_for_that_logs_head_and_are_recorded_with_its_tracking():
    policy = Recording({"a": 3, "b": 2})

    feed(policy, ("a", 1), ("b", 1), ("a", 2), ("b", 2))

    assert policy.decided == [["b1", "b2"]]
    assert policy.recorder.max_tracking_id("b") == 2
    assert policy.recorder.max_tracking_id("a") is None
    feed(policy, ("a", 3))
    assert policy.decided == [["b1", "b2"], ["a1", "a2", "a3"]]
    assert policy.recorder.max_tracking_id("a") == 3


def test_a_long_backlog_is_recorded_every_batch_and_live_events_at_once():
    policy = Recording({"a": BATCH + 5})

    feed(policy, *(("a", n) for n in range(1, BATCH + 6)))
    policy.heads["a"].position = BATCH + 6
    feed(policy, ("a", BATCH + 6))

    assert [len(batch) for batch in policy.decided] == [BATCH, 5, 1]
    assert policy.recorder.max_tracking_id("a") == BATCH + 6


def test_a_refused_write_is_decided_again_and_recorded_once():
    policy = Recording({"a": 2}, refusals=2)

    feed(policy, ("a", 1), ("a", 2))

    assert policy.decided == [["a1", "a2"]] * 3
    assert policy.recorder.max_tracking_id("a") == 2
