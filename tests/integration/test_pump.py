"""The pump on real PostgreSQL: it hands out the earliest pending delivery of each
patient, once per lease, and looks past what is already handed out so a backlog
keeps flowing."""

from datetime import UTC, datetime, timedelta

import pytest

from adapters.hl7.pump import Pump
from domain.ris.message_delivery import MessageDelivery
from tests.integration.mllp_peer import wait_until
from tests.support import SettableClock

pytestmark = pytest.mark.integration

T = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
META = {"actor_id": "test"}


def delivery(patient: str, minute: int, channel: str = "hl7") -> MessageDelivery:
    return MessageDelivery.queue(
        channel=channel,
        recipient="ris",
        message_type="SIU^S12",
        cause=f"pump:{patient}:{minute}:{channel}",
        cause_at=T + timedelta(minutes=minute),
        ordering_key=patient,
        payload={},
        meta=META,
    )


@pytest.fixture
def outbound(runtime):
    # The deliveries read model is one of the runtime's projections; no policy, pump or
    # workers here: the tests drive the pump themselves.
    ob = runtime.start_outbound(policy=False, pump=False, workers=0)
    yield ob
    ob.stop()


def test_the_earliest_of_each_patient_once_per_lease(outbound):
    a1, a2, b1 = delivery("a", 1), delivery("a", 2), delivery("b", 3)
    outbound.deliveries.save(a1, a2, b1)
    reader = outbound.reader()
    wait_until(lambda: len(reader.search(limit=10)) == 3)
    clock = SettableClock(T + timedelta(hours=1))
    handed: list[list] = []
    pump = Pump(reader, outbound.pool, handed.append, clock, lease=timedelta(seconds=30))

    assert pump.run_once() == 2
    assert {d for d, _ in handed[-1]} == {a1.id, b1.id}  # a2 waits behind a1
    assert pump.run_once() == 0  # leased
    clock.advance(timedelta(seconds=31))
    assert pump.run_once() == 2  # the lease ran out: handed out again
    assert {d for d, _ in handed[-1]} == {a1.id, b1.id}


def test_the_pump_looks_past_deliveries_already_handed_out(outbound):
    first, second = delivery("c", 1), delivery("d", 2)
    reader = outbound.reader()
    now = T + timedelta(hours=1)
    outbound.deliveries.save(first)
    wait_until(lambda: len(reader.search(limit=10)) == 1)
    handed: list[list] = []
    assert Pump(reader, outbound.pool, handed.append, SettableClock(now)).run_once() == 1
    outbound.deliveries.save(second)
    wait_until(lambda: len(reader.search(limit=10)) == 2)

    since = now - timedelta(seconds=30)
    assert [d.id for d in reader.due(now, limit=1)] == [first.id]
    assert [d.id for d in reader.due(now, limit=1, unleased_since=since)] == [second.id]


def test_a_head_not_yet_due_holds_back_its_patient_and_other_channels_hold_back_none(outbound):
    now = T + timedelta(hours=1)
    held, behind_held, other = delivery("e", 1), delivery("e", 2), delivery("f", 3)
    held.hold(until=now + timedelta(minutes=5), reason="quiet hours", meta=META)
    email_first = delivery("f", 0, channel="email")  # the same recipient and key
    later = delivery("g", 0)  # an earlier cause, recorded last: sent first
    outbound.deliveries.save(held, behind_held, other, email_first)
    outbound.deliveries.save(later)
    reader = outbound.reader()
    wait_until(lambda: len(reader.search(limit=10)) == 5)

    assert [d.id for d in reader.due(now)] == [later.id, other.id]
    assert [d.id for d in reader.due(now, limit=1)] == [later.id]
    assert [d.id for d in reader.due(now + timedelta(minutes=5))] == [later.id, held.id, other.id]
    assert [d.id for d in reader.due(now, channel="email")] == [email_first.id]


def test_a_round_steps_over_no_reminder_booked_for_later(outbound, runtime):
    """Reminders are queued weeks ahead, each with an earlier cause than the confirmations
    booked after it: the due query must not read them to find what is due now."""
    from projections.deliveries_view import DUE_SQL

    now = T + timedelta(hours=1)
    reminders = [delivery(f"r{i}", i % 50) for i in range(2000)]
    for reminder in reminders:
        reminder.hold(until=now + timedelta(days=14), reason="reminder", meta=META)
    due_now = [delivery(f"n{i}", 60 + i) for i in range(3)]
    outbound.deliveries.save(*reminders)
    outbound.deliveries.save(*due_now)
    reader = outbound.reader()
    wait_until(lambda: len(reader.search(limit=2100)) == 2003)
    assert [d.id for d in reader.due(now, limit=10)] == [d.id for d in due_now]

    params = {"channel": "hl7", "now": now, "limit": 10, "since": None}
    with runtime.pool.connection() as conn:
        conn.execute("ANALYZE rm_deliveries")
        plan = conn.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {DUE_SQL}", params).fetchone()[0]

    def read(node: dict) -> int:
        """Rows the scans of the deliveries table read: returned plus filtered out."""
        own = 0
        if node.get("Relation Name") == "rm_deliveries" and node.get("Alias", "").startswith("r"):
            own = node["Actual Rows"] * node["Actual Loops"] + node.get("Rows Removed by Filter", 0)
        return own + sum(read(child) for child in node.get("Plans", []))

    assert read(plan[0]["Plan"]) < 30  # 0027d's single index read all 2,000 reminders first
