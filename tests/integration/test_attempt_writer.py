"""Attempts saved together (one event-store write for several sends) on real
PostgreSQL: each is saved or reported lost on its own, and a loser never hides the
others."""

import threading
from datetime import UTC, datetime

import pytest

from adapters.hl7.attempt_writer import AttemptWriter
from application.ris.deliveries import Deliveries
from domain.ris.message_delivery import ACCEPTED, ACKNOWLEDGED, MessageDelivery, RetryPolicy

pytestmark = pytest.mark.integration

AT = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
META = {"actor_id": "test"}


def queue(
    deliveries: Deliveries, count: int, payload: dict[str, str] | None = None
) -> list[MessageDelivery]:
    queued = [
        MessageDelivery.queue(
            channel="hl7",
            recipient="ris",
            message_type="SIU^S12",
            cause=f"attempt-writer:{n}",
            cause_at=AT,
            ordering_key=f"patient-{n}",
            payload=payload or {"n": str(n)},
            meta=META,
        )
        for n in range(count)
    ]
    deliveries.save(*queued)
    return [deliveries.delivery(d.id) for d in queued]


def accepted(delivery: MessageDelivery) -> MessageDelivery:
    delivery.record_attempt(
        outcome=ACCEPTED,
        code="AA",
        detail="",
        at=AT,
        policy=RetryPolicy(),
        jitter=1.0,
        meta=META,
    )
    return delivery


@pytest.fixture
def deliveries(runtime):
    app = Deliveries(runtime.env)
    yield app
    app.close()


def test_a_batch_saves_every_attempt_but_the_one_another_sender_recorded_first(deliveries):
    first, second, third = queue(deliveries, 3)
    rival = deliveries.delivery(second.id)  # a second sender of the same attempt
    assert deliveries.save_attempts([accepted(rival)]) == []

    lost = deliveries.save_attempts([accepted(first), accepted(second), accepted(third)])

    assert lost == [second.id]
    assert [deliveries.delivery(d.id).status for d in (first, second, third)] == [
        ACKNOWLEDGED,
        ACKNOWLEDGED,
        ACKNOWLEDGED,
    ]
    assert deliveries.delivery(second.id).attempts == 1  # the rival's, once


def test_the_writer_answers_each_sending_thread(deliveries):
    queued = queue(deliveries, 12)
    rival = deliveries.delivery(queued[5].id)
    assert deliveries.save_attempts([accepted(rival)]) == []
    writer = AttemptWriter(deliveries, most=4)
    answers: dict[int, bool] = {}

    def send(n: int) -> None:
        answers[n] = writer.save(accepted(queued[n]))

    threads = [threading.Thread(target=send, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert answers == {n: n != 5 for n in range(12)}
    statuses = {deliveries.delivery(d.id).status for d in queued}
    assert statuses == {ACKNOWLEDGED}


def test_a_delivery_that_cannot_be_sent_becomes_a_dead_letter(deliveries):
    from adapters.clock import SystemClock
    from adapters.hl7.destinations import Destination
    from adapters.hl7.sender import Sender
    from domain.ris.message_delivery import DEAD

    nowhere, unrenderable = queue(deliveries, 2)
    # "ris" is no longer configured for the first; the second has no fields to render.
    Sender(deliveries, [], SystemClock(), RetryPolicy()).send(nowhere.id, nowhere.version)
    ris = Destination(name="ris", host="127.0.0.1", port=9)
    sender = Sender(deliveries, [ris], SystemClock(), RetryPolicy())
    sender.send(unrenderable.id, unrenderable.version)

    for delivery, code in ((nowhere, "RECIPIENT"), (unrenderable, "RENDER")):
        dead = deliveries.delivery(delivery.id)
        assert (dead.status, dead.last_code) == (DEAD, code)


def test_a_batch_of_handouts_is_sent_each_as_its_version_allows(deliveries):
    import time
    from uuid import uuid4

    from adapters.clock import SystemClock
    from adapters.hl7.destinations import Destination
    from adapters.hl7.sender import Sender
    from tests.integration.mllp_peer import Peer, field_of
    from tests.unit.test_message_delivery import siu_payload

    siu = siu_payload("Ada", "Lovelace", AT.date(), AT)
    fresh, moved_on, late = queue(deliveries, 3, siu)
    rival = deliveries.delivery(moved_on.id)  # attempted meanwhile: its handed version is old
    assert deliveries.save_attempts([accepted(rival)]) == []
    with Peer() as peer:
        ris = Destination(name="ris", host="127.0.0.1", port=peer.port)
        sender = Sender(deliveries, [ris], SystemClock(), RetryPolicy())
        handed = [(fresh.id, fresh.version), (moved_on.id, moved_on.version), (uuid4(), 1)]
        outcomes = sender.send_many(handed, until=None)
        expired = sender.send_many([(late.id, late.version)], until=time.monotonic())
        sent = [field_of(m, "MSH", 10) for m in peer.messages()]

    assert outcomes == [ACCEPTED, "stale", "missing"]
    assert expired == ["expired"]
    assert sent == [deliveries.delivery(fresh.id).control_id]  # the fresh one, once
    assert deliveries.delivery(fresh.id).status == ACKNOWLEDGED
    assert deliveries.delivery(late.id).attempts == 0
