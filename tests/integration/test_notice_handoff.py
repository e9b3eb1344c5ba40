"""Patient notices handed to the sending threads of the process that pumps them, as HL7
deliveries are (``LocalHandoff``): a thread's batch is read in one query and saved in
one write, each notice decided as it is alone (sent, refused for want of consent, held
in quiet hours, no address); a booking's confirmation reaches the Maildir without a
task in the ``notices`` queue, and through it with ``OUTBOUND_HANDOFF=broker``.

Writes and tasks are counted in the database: triggers keep a row per event written to
the deliveries' event store (with its transaction) and per task written to the
broker's queue table."""

import mailbox
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import pytest

from adapters.channels.email_smtp import SmtpSender
from adapters.channels.setup import email_sender
from adapters.channels.smtp_url import parse_smtp_url
from adapters.settings import Settings
from application.channels import ChannelSender, OutboundMessage, SendOutcome
from application.ris.deliveries import Deliveries
from imaging_bridge.bootstrap import Runtime
from tests.integration.mllp_peer import wait_until
from tests.integration.notices import Preferences, channel_worker, new_patient, queue_notice
from tests.integration.test_communication_policy import book
from tests.integration.test_communication_policy import new_patient as registered

pytestmark = pytest.mark.integration

LATE = datetime(2026, 12, 2, 22, 30, tzinfo=UTC)  # 23:30 in Madrid
FROM = "Riverside Imaging <no-reply@centre.example>"


def count_delivery_writes(runtime: Runtime) -> None:
    """From now on, a row per event written to the deliveries' event store."""
    table = runtime.services.deliveries.deliveries.recorder.events_table_name
    with runtime.pool.connection() as conn:
        conn.execute(f"""
CREATE TABLE delivery_writes (tx bigint, originator_id uuid);
CREATE FUNCTION count_delivery_write() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO delivery_writes VALUES (txid_current(), NEW.originator_id);
    RETURN NEW;
END $$;
CREATE TRIGGER counted AFTER INSERT ON {table}
    FOR EACH ROW EXECUTE FUNCTION count_delivery_write();
""")


def delivery_writes(runtime: Runtime) -> tuple[int, set[UUID]]:
    """How many transactions wrote deliveries' events, and to which deliveries."""
    with runtime.pool.connection() as conn:
        rows = conn.execute("SELECT tx, originator_id FROM delivery_writes").fetchall()
    return len({tx for tx, _ in rows}), {originator for _, originator in rows}


def count_reads(deliveries: Deliveries, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many deliveries each read asked for (one entry per query), from now on."""
    reads: list[int] = []
    many, one = deliveries.deliveries, deliveries.delivery

    def read_many(delivery_ids: Any) -> Any:
        reads.append(len(delivery_ids))
        return many(delivery_ids)

    def read_one(delivery_id: UUID) -> Any:
        reads.append(1)
        return one(delivery_id)

    monkeypatch.setattr(deliveries, "deliveries", read_many)
    monkeypatch.setattr(deliveries, "delivery", read_one)
    return reads


def smtp(server: Any) -> dict[str, ChannelSender]:
    return {"email": SmtpSender(parse_smtp_url(f"smtp://127.0.0.1:{server.port}"), FROM)}


def test_a_stalled_smtp_server_costs_one_notice_not_the_rest_of_its_batch(
    runtime, client, smtp_server, tmp_path
):
    # Given a 4 s delivery lease, the e-mail sender built for it, three notices handed
    # to one sending thread, and an SMTP server that keeps the first message and then
    # says nothing
    lease = 4.0
    settings = Settings(
        environment="development",
        data_dir=tmp_path,
        smtp_url=f"smtp://127.0.0.1:{smtp_server.port}",
        delivery_lease_seconds=lease,
    )
    patients = [new_patient(client, f"stall{i}@example.org") for i in range(3)]
    smtp_server.stall_after_data.add("stall0@example.org")
    deliveries = [queue_notice(runtime, p, "email", exempt=True) for p in patients]
    worker = channel_worker(runtime, {"email": email_sender(settings)})

    # When the thread sends them, starting none after half the lease (as the hand-off)
    try:
        outcomes = worker.send_many(
            [(d.id, d.version) for d in deliveries], until=time.monotonic() + lease / 2
        )
    finally:
        smtp_server.released.set()

    # Then the stalled one is an unanswered attempt, retried later, and the others of
    # the batch went out under their lease instead of waiting for it to run out
    assert outcomes == ["no_answer", "accepted", "accepted"]
    assert smtp_server.stalls == 1
    recipients = sorted(m.rcpt_tos[0] for m in smtp_server.received)
    assert recipients == [f"stall{i}@example.org" for i in range(3)]


def test_a_batch_is_read_in_one_query_and_saved_in_one_write_each_decided_as_alone(
    runtime, client, clock, smtp_server, monkeypatch
):
    # Given at 23:30 in Madrid: a patient who allows e-mail at any hour, one who withdrew
    # it after the notice was queued, one whose quiet hours are on, and a notice whose
    # patient record does not exist
    clock.set(LATE)
    preferences = Preferences(runtime)
    allowed, withdrawn, sleeping = (
        new_patient(client, f"{name}@example.org") for name in ("ana", "ben", "carla")
    )
    preferences.grant(allowed, "email")
    preferences.grant(withdrawn, "email")
    preferences.grant(sleeping, "email", quiet="21:00-08:00")
    sent, refused, held, nobody = (
        queue_notice(runtime, patient, "email")
        for patient in (allowed, withdrawn, sleeping, uuid4())
    )
    preferences.withdraw(withdrawn, "email")
    already = queue_notice(runtime, allowed, "email")
    deliveries = runtime.services.deliveries.deliveries
    worker = channel_worker(runtime, smtp(smtp_server))
    assert worker.send(already.id, already.version) == "accepted"
    count_delivery_writes(runtime)
    reads = count_reads(deliveries, monkeypatch)

    # When one sending thread takes them all at once, with a hand-out already sent and
    # one of a delivery that does not exist
    handed = [(d.id, d.version) for d in (sent, refused, held, nobody, already)]
    outcomes = worker.send_many([*handed, (uuid4(), 1)])

    # Then the six were read in one query, and the four recorded saved in one write
    assert reads == [6]
    assert delivery_writes(runtime) == (1, {sent.id, refused.id, held.id, nobody.id})
    # And each came to what it comes to when sent alone
    assert outcomes == ["accepted", "rejected", "held", "rejected", "stale", "missing"]
    [mail] = [m for m in smtp_server.received if m.rcpt_tos == ["ana@example.org"]][1:]
    assert mail.message["Message-ID"] == f"<{sent.id}@centre.example>"
    assert len(smtp_server.received) == 2  # the one sent before, and this one
    assert deliveries.delivery(sent.id).status == "acknowledged"
    assert (deliveries.delivery(refused.id).status, deliveries.delivery(refused.id).last_code) == (
        "dead_lettered",
        "no_consent",
    )
    assert deliveries.delivery(held.id).next_attempt_at == datetime(2026, 12, 3, 7, 0, tzinfo=UTC)
    assert deliveries.delivery(nobody.id).last_code == "no_address"


class Breaking(ChannelSender):
    """SMTP, but raising (a fault of ours, not the provider's) for one address."""

    channel = "email"

    def __init__(self, smtp: ChannelSender, address: str) -> None:
        self.smtp, self.address = smtp, address

    def send(self, message: OutboundMessage) -> SendOutcome:
        if message.recipient == self.address:
            raise RuntimeError("a fault of ours")
        return self.smtp.send(message)


def test_a_notice_whose_send_raises_leaves_the_rest_of_its_batch_saved(
    runtime, client, clock, smtp_server
):
    # Given two reminders, one to an address whose send raises
    clock.set(LATE)
    first, second = (new_patient(client, f"{name}@example.org") for name in ("dora", "eve"))
    breaking, fine = (queue_notice(runtime, p, "email", exempt=True) for p in (first, second))
    worker = channel_worker(
        runtime, {"email": Breaking(smtp(smtp_server)["email"], "dora@example.org")}
    )

    # When one thread takes both
    outcomes = worker.send_many([(d.id, d.version) for d in (breaking, fine)])

    # Then the other was sent and saved; the failed one waits, unrecorded, for its lease
    assert outcomes == ["failed", "accepted"]
    deliveries = runtime.services.deliveries.deliveries
    assert deliveries.delivery(fine.id).status == "acknowledged"
    assert deliveries.delivery(breaking.id).version == breaking.version


def count_tasks(runtime: Runtime) -> None:
    """From now on, a row per task written to the broker's queue table (a task's row is
    deleted once it is acknowledged)."""
    with runtime.pool.connection() as conn:
        conn.execute("""
CREATE TABLE queued_tasks (queue_name text);
CREATE FUNCTION count_task() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.queued_tasks VALUES (NEW.queue_name);
    RETURN NEW;
END $$;
CREATE TRIGGER counted AFTER INSERT OR UPDATE OF message ON dramatiq.queue
    FOR EACH ROW EXECUTE FUNCTION count_task();
""")


def tasks(runtime: Runtime) -> Counter[str]:
    """How many tasks were written to each queue."""
    with runtime.pool.connection() as conn:
        return Counter(name for (name,) in conn.execute("SELECT queue_name FROM queued_tasks"))


@pytest.mark.parametrize("handoff", ["local", "broker"])
def test_a_bookings_confirmation_reaches_the_maildir_through_the_queue_only_with_broker(
    runtime, handoff
):
    # Given a process that pumps and sends, e-mail into its Maildir
    count_tasks(runtime)
    settings = runtime.settings.model_copy(update={"outbound_handoff": handoff})
    outbound = runtime.start_outbound(settings, workers=1, pump_interval=0.05)
    assert (outbound._notice_handoff is not None) == (handoff == "local")

    # When a patient books
    patient = registered(runtime)
    book(runtime, patient)

    # Then the confirmation arrives in the Maildir
    box = mailbox.Maildir(runtime.settings.data_dir / "mail", create=True)
    [mail] = wait_until(lambda: list(box), timeout=30)
    assert mail["To"] == "notice-1@example.org"
    # And it went through the notices queue only when the hand-off is the broker's
    assert tasks(runtime)["notices"] == (0 if handoff == "local" else 1)
