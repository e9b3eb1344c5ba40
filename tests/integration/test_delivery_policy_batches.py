"""The HL7 delivery policy catches up on a backlog in batches (``application.batching``):
one write per batch of upstream events, holding what the batch decided and the tracking
of its last event, instead of one write per event. What it queues is the same, each
delivery once and in order per patient; a stop before a batch is written leaves nothing
of it, and the restart processes it again, exactly once.

Writes are counted in the database: a trigger on the policy's tracking table keeps a row
per committed tracking write (one per transaction of the policy)."""

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any, ClassVar
from uuid import UUID

import pytest
from eventsourcing.persistence import Tracking

from adapters.clock import SystemClock
from application.registry import RegistryLog
from application.ris.deliveries import NAME
from application.ris.delivery_policy import DeliveryPolicy, introduction_cause
from application.scheduling import SchedulingLog
from imaging_bridge.bootstrap import Runtime
from imaging_bridge.outbound import Outbound
from tests.integration.mllp_peer import Peer, field_of, wait_until
from tests.integration.test_outbound_hl7 import (
    DAY,
    PATIENT_ACTOR,
    book,
    bookings_follower,
    deliveries,
    new_patient,
    outbound_settings,
)

pytestmark = pytest.mark.integration

TRACKING = f"{NAME}_tracking"
COUNTING = f"""
CREATE TABLE tracking_writes (application_name text, notification_id bigint);
CREATE FUNCTION count_tracking_write() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO tracking_writes VALUES (NEW.application_name, NEW.notification_id);
    RETURN NEW;
END $$;
CREATE TRIGGER counted AFTER INSERT OR UPDATE ON {TRACKING}
    FOR EACH ROW EXECUTE FUNCTION count_tracking_write();
"""


@pytest.fixture
def peer() -> Iterator[Peer]:
    with Peer() as p:
        yield p


@pytest.fixture
def started(runtime: Runtime) -> Iterator[list[Outbound]]:
    """The outbound parts a test starts, stopped after it."""
    outbounds: list[Outbound] = []
    yield outbounds
    for ob in outbounds:
        ob.stop()


def follow_quietly(runtime: Runtime, started: list[Outbound]) -> None:
    """The policies follow what happened so far with no HL7 destination (nothing queued):
    their tables exist and their positions are at the logs' heads."""
    quiet = runtime.start_outbound(pump=False, workers=0)
    started.append(quiet)
    quiet.wait_caught_up(timeout=30)
    quiet.stop()


def count_tracking_writes(runtime: Runtime) -> None:
    with runtime.pool.connection() as conn:
        conn.execute(COUNTING)


def tracking_writes(runtime: Runtime, upstream: str) -> int:
    with runtime.pool.connection() as conn:
        row = conn.execute(
            "SELECT count(*) FROM tracking_writes WHERE application_name = %s", (upstream,)
        ).fetchone()
    assert row is not None
    return int(row[0])


def position(runtime: Runtime, upstream: str) -> int:
    with runtime.pool.connection() as conn:
        row = conn.execute(
            f"SELECT max(notification_id) FROM {TRACKING} WHERE application_name = %s",
            (upstream,),
        ).fetchone()
    assert row is not None
    return int(row[0] or 0)


def head(runtime: Runtime, upstream: type[Any]) -> int:
    log = upstream(runtime.env)
    try:
        return int(log.recorder.max_notification_id() or 0)
    finally:
        log.close()


def booking_backlog(runtime: Runtime, patients: list[UUID]) -> dict[UUID, list[tuple[str, str]]]:
    """Per patient: two bookings, the first moved and the second cancelled; the SIU
    messages (type, cause) they must cause, in order."""
    scheduling = runtime.services.scheduling
    expected: dict[UUID, list[tuple[str, str]]] = {}
    for i, patient in enumerate(patients):
        first = book(runtime, patient, DAY + timedelta(hours=i))
        second = book(runtime, patient, DAY + timedelta(days=1, hours=i))
        scheduling.reschedule(
            first,
            start=DAY + timedelta(days=2, hours=i),
            location_id=None,
            reason="clash",
            actor=PATIENT_ACTOR,
            owner=None,
        )
        scheduling.cancel(second, reason="cannot come", actor=PATIENT_ACTOR, owner=None)
        expected[patient] = [
            ("SIU^S12", f"{first}:1"),
            ("SIU^S12", f"{second}:1"),
            ("SIU^S13", f"{first}:2"),
            ("SIU^S15", f"{second}:2"),
        ]
    return expected


def test_a_backlog_of_bookings_reaches_the_ris_as_before_each_message_once_in_order(
    runtime, peer, started
):
    # Three patients the policy followed before the RIS was a destination (their first
    # SIU introduces them, and both bookings of each fall in one batch: the second must
    # see the introduction the first queued in it), three registered in the backlog.
    known = [new_patient(runtime, 60 + i) for i in range(3)]
    follow_quietly(runtime, started)
    newcomers = [new_patient(runtime, 70 + i) for i in range(3)]
    expected = booking_backlog(runtime, known + newcomers)
    for patient in known:
        expected[patient].insert(0, ("ADT^A04", introduction_cause(patient)))
    for patient in newcomers:
        expected[patient].insert(0, ("ADT^A04", f"{patient}:1"))
    count = sum(len(messages) for messages in expected.values())

    # The policies queue everything before anything is sent: which of the two followers
    # (registry, scheduling) queues first is not this test's (see test_outbound_hl7).
    settings = outbound_settings(runtime, peer)
    policies = runtime.start_outbound(settings, pump=False, workers=0)
    started.append(policies)
    policies.wait_caught_up(timeout=60)
    policies.stop()
    ob = runtime.start_outbound(settings, pump_interval=0.05, clock=SystemClock())
    started.append(ob)
    wait_until(
        lambda: (
            len(deliveries(ob)) == count and all(d.status == "acknowledged" for d in deliveries(ob))
        ),
        timeout=60,
    )

    queued = deliveries(ob)
    assert sorted((d.message_type, d.cause) for d in queued) == sorted(
        message for messages in expected.values() for message in messages
    )
    received = peer.messages()
    assert len(received) == count  # each once
    message_type = {d.control_id: d.message_type for d in queued}
    cause = {d.control_id: d.cause for d in queued}
    for patient, messages in expected.items():
        mine = [m for m in received if str(patient) in field_of(m, "PID", 3)]
        sent = [field_of(m, "MSH", 10) for m in mine]
        assert [(message_type[c], cause[c]) for c in sent] == messages


def test_a_backlog_is_recorded_in_a_few_writes_not_one_per_event(runtime, peer, started):
    patients = [new_patient(runtime, 80 + i) for i in range(4)]
    follow_quietly(runtime, started)
    count_tracking_writes(runtime)
    before = {log.name: head(runtime, log) for log in (SchedulingLog, RegistryLog)}
    more = [new_patient(runtime, 90 + i) for i in range(6)]
    booking_backlog(runtime, patients + more)
    events = {
        log.name: head(runtime, log) - before[log.name] for log in (SchedulingLog, RegistryLog)
    }
    assert events[SchedulingLog.name] >= 60

    ob = runtime.start_outbound(outbound_settings(runtime, peer), pump=False, workers=0)
    started.append(ob)
    ob.wait_caught_up(timeout=60)

    assert len(deliveries_of(ob, 10 * 5)) == 10 * 5  # the A04s, S12 S12 S13 S15
    # One write per event before; now one per batch (up to 20 events).
    for upstream, count in events.items():
        assert 1 <= tracking_writes(runtime, upstream) <= max(1, count // 5), upstream


def deliveries_of(ob: Outbound, count: int) -> list[Any]:
    """The HL7 deliveries, once the read model shows ``count`` of them."""
    wait_until(lambda: len(deliveries(ob)) >= count)
    return deliveries(ob)


def nth_after(runtime: Runtime, start: int, n: int) -> int:
    """The position of the ``n``-th scheduling event after ``start``."""
    log = SchedulingLog(runtime.env)
    try:
        return int(log.recorder.select_notifications(start, n, inclusive_of_start=False)[-1].id)
    finally:
        log.close()


class Halted(Exception):
    """The delivery policy stopped where a test told it to."""


class Halting(DeliveryPolicy):
    """The delivery policy, stopping (failing) once it has taken event ``at``: its
    runner ends there, as a process stopped in the middle of a batch would."""

    name = NAME
    at: ClassVar[int] = 0

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        super().process_event(domain_event, tracking)
        if tracking.notification_id == self.at:
            raise Halted(self.at)


def test_a_policy_stopped_in_the_middle_of_a_batch_processes_it_again_once(runtime, peer, started):
    follow_quietly(runtime, started)
    start = head(runtime, SchedulingLog)
    patients = [new_patient(runtime, 100 + i) for i in range(8)]
    expected = booking_backlog(runtime, patients)
    Halting.at = nth_after(runtime, start, 30)  # after the first batch, before the second
    settings = outbound_settings(runtime, peer)
    # No registry follower runs beside this one: it must not wait for it.
    runner = bookings_follower(runtime, settings, wait=0, policy=Halting)
    with runner, pytest.raises(Halted):
        runner.run_forever(timeout=60)

    stopped_at = position(runtime, SchedulingLog.name)
    assert start < stopped_at < Halting.at  # the first batch written, the second not
    ob = runtime.start_outbound(settings, pump=False, workers=0)
    started.append(ob)
    ob.wait_caught_up(timeout=60)

    count = sum(len(messages) + 1 for messages in expected.values())  # and the A04s
    queued = deliveries_of(ob, count)
    assert sorted((d.message_type, d.cause) for d in queued if d.message_type != "ADT^A04") == (
        sorted(message for messages in expected.values() for message in messages)
    )
    assert sorted(d.cause for d in queued if d.message_type == "ADT^A04") == sorted(
        f"{patient}:1" for patient in patients
    )


class Pausing(DeliveryPolicy):
    """The delivery policy, holding its first event until the test lets it go: a batch
    still being decided when the runner is told to stop."""

    name = NAME
    entered: ClassVar[threading.Event] = threading.Event()
    release: ClassVar[threading.Event] = threading.Event()

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        Pausing.entered.set()
        Pausing.release.wait(timeout=30)
        super().process_event(domain_event, tracking)


def test_a_policy_stopped_in_the_middle_of_an_event_finishes_it_before_it_is_closed(runtime, peer):
    # The library's runner closed the policy (its pools) before it joined the thread
    # still deciding with them: that batch failed ("pool has already been opened/closed"),
    # the stop raised, and serve's outbound child hung until it was killed.
    patient = new_patient(runtime, 130)
    book(runtime, patient, DAY)
    settings = outbound_settings(runtime, peer)
    Pausing.entered.clear()
    Pausing.release.clear()
    runner = bookings_follower(runtime, settings, wait=0, policy=Pausing)  # a PolicyRunner
    runner.__enter__()
    assert Pausing.entered.wait(timeout=30), "the policy never took an event"
    stopped: list[BaseException | None] = []

    def stop() -> None:
        try:
            runner.__exit__(None, None, None)
            stopped.append(None)
        except BaseException as error:  # noqa: BLE001 - what the stop raised is the result
            stopped.append(error)

    stopping = threading.Thread(target=stop)
    stopping.start()
    time.sleep(0.5)  # the stop is under way while the event is still being decided
    Pausing.release.set()
    stopping.join(timeout=30)
    assert stopped == [None]
