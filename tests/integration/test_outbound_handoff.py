"""HL7 deliveries handed straight to the sending threads of the process that pumps them
(``LocalHandoff``), or through the task queue with ``OUTBOUND_HANDOFF=broker``: the pump
leases no more than the threads take, and both ways every booking reaches the RIS once."""

import threading
import time
from collections.abc import Sequence
from datetime import timedelta
from uuid import UUID, uuid4

import pytest

from adapters.hl7.handoff import LocalHandoff
from adapters.hl7.pump import Pump
from tests.integration.mllp_peer import field_of, wait_until
from tests.integration.test_outbound_hl7 import (  # noqa: F401 - fixtures
    DAY,
    book,
    by_type,
    new_patient,
    outbound_factory,
    outbound_settings,
    peer,
)
from tests.integration.test_pump import T, delivery
from tests.support import SettableClock

pytestmark = pytest.mark.integration


def test_the_pump_leases_no_more_than_the_sending_threads_take(runtime):
    outbound = runtime.start_outbound(policy=False, pump=False, workers=0)
    outbound.deliveries.save(*(delivery(f"patient-{n}", n) for n in range(20)))
    reader = outbound.reader()
    wait_until(lambda: len(reader.search(limit=100)) == 20)
    gate, sent = threading.Event(), []

    def send(handed: Sequence[tuple[UUID, int]], *, until: float | None) -> None:
        gate.wait(30)  # a slow receiver: the first send holds its thread
        sent.extend(delivery_id for delivery_id, _ in handed)

    handoff = LocalHandoff(send, threads=1, lease=30, depth=4, batch=1).start()
    pump = Pump(
        reader,
        outbound.pool,
        handoff.dispatch,
        SettableClock(T + timedelta(hours=1)),
        room=handoff.room,
    )
    try:
        assert pump.run_once() == 4  # the queue's size: one thread x depth 4
        wait_until(lambda: handoff.room() == 1)  # the thread took one and waits
        assert pump.run_once() == 1
        assert pump.run_once() == 0
        with outbound.pool.connection() as conn:
            leased = conn.execute("SELECT count(*) FROM delivery_dispatch").fetchone()[0]
        assert leased == 5  # the other 15 stay free for other processes' pumps
        gate.set()
        wait_until(lambda: len(sent) == 5)
        assert pump.run_once() == 4
    finally:
        gate.set()
        handoff.stop()
    assert len(set(sent)) == len(sent)


@pytest.mark.parametrize("handoff", ["local", "broker"])
def test_bookings_reach_the_ris_once_each_either_way(runtime, peer, outbound_factory, handoff):  # noqa: F811
    ob = outbound_factory(outbound_settings(runtime, peer, outbound_handoff=handoff))
    assert (ob._handoff is not None) == (handoff == "local")
    for n in range(5):
        book(runtime, new_patient(runtime, 100 + n), DAY + timedelta(minutes=15 * n))

    wait_until(
        lambda: (
            len(by_type(ob, "SIU^S12")) == 5
            and all(d.status == "acknowledged" for d in by_type(ob, "SIU^S12"))
        )
    )
    siu = [m for m in peer.messages() if field_of(m, "MSH", 9).startswith("SIU^S12")]
    assert sorted(field_of(m, "MSH", 10) for m in siu) == sorted(
        d.control_id for d in by_type(ob, "SIU^S12")
    )


def test_a_handout_that_waited_half_its_lease_is_not_sent():
    gate, sent = threading.Event(), []

    def send(handed: Sequence[tuple[UUID, int]], *, until: float | None) -> None:
        gate.wait(30)
        sent.extend(delivery_id for delivery_id, _ in handed)

    handoff = LocalHandoff(send, threads=1, lease=0.2, depth=4).start()
    first, second = uuid4(), uuid4()
    try:
        handoff.dispatch([(first, 1)])
        wait_until(lambda: handoff.room() == 4)  # the thread holds the first
        handoff.dispatch([(second, 1)])
        time.sleep(0.15)  # the second waits past half its lease (0.1 s)...
        gate.set()
        wait_until(lambda: handoff.room() == 4)
    finally:
        gate.set()
        handoff.stop()
    assert sent == [first]  # ...so it is left to the pump that leases it next
