"""Several inbound processors at once keep each patient's messages in arrival order.

Messages go over MLLP to the listener, one connection, each sent after the previous
ACK (so arrival order is the order sent); four processors of ``InboundProcessors``
apply them with the composition root's handler, watched: each message's start and end
are ticks of one counter, so "applied in order" is a comparison of counts, not times.
"""

import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import count, pairwise

import psycopg
import pytest

from adapters.hl7.framing import frame
from adapters.hl7.listener import BackgroundListener, ListenerConfig
from adapters.hl7.processor import InboundProcessor, InboundProcessors
from adapters.hl7.wakeup import Wakeup, listen
from application.errors import ConcurrencyError
from application.ris.inbound_ports import InboundHandler, InboundMessage
from domain.errors import DomainError
from tests.integration.test_hl7_listener import read_frame, segments

pytestmark = pytest.mark.integration
PROCESSORS = 4
DEADLINE = 120.0  # a bound on waiting, never an assertion


def adt(trigger: str, control_id: str, mrn: str, family: str, *extra: str) -> bytes:
    return "\r".join(
        (
            f"MSH|^~\\&|RIS|CENTRE|IMGBRIDGE|IMGBRIDGE|20261130120000||ADT^{trigger}^ADT_A01|"
            f"{control_id}|P|2.5.1",
            f"EVN|{trigger}|20261130120000",
            f"PID|1||{mrn}^^^CENTRE^MR||{family}^JO||19800101|F",
            *extra,
        )
    ).encode()


@dataclass
class Watching(InboundHandler):
    """The real handler, watched: the ticks at which each message's handling started
    and ended (the attempt that returned; a lost race is tried again)."""

    inner: InboundHandler
    ticks: Iterator[int] = field(default_factory=count)
    spans: dict[str, tuple[int, int]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _tick(self) -> int:
        with self.lock:
            return next(self.ticks)

    def ordering_key(self, message: InboundMessage) -> str | None:
        return self.inner.ordering_key(message)

    def handle(self, message: InboundMessage) -> str:
        started = self._tick()
        outcome = self.inner.handle(message)
        # Hold the message a moment: a claim that let the patient's next message go now
        # would be caught overlapping it.
        time.sleep(0.005)
        self.spans[message.control_id] = (started, self._tick())
        return outcome

    def handle_batch(self, messages: Sequence[InboundMessage]) -> dict:
        # A batch's messages share its span: two of one patient in a batch would be
        # caught overlapping (one left out is watched again as ``handle`` has it).
        started = self._tick()
        results: dict[object, str | DomainError] = self.inner.handle_batch(messages)
        time.sleep(0.005)
        ended = self._tick()
        for message in messages:
            if message.id in results:
                self.spans[message.control_id] = (started, ended)
        return results


def send_all(port: int, messages: list[bytes]) -> None:
    """Each message on one connection, the next after the previous ACK (AA)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.settimeout(10)
        for raw in messages:
            sock.sendall(frame(raw))
            assert segments(read_frame(sock))["MSA"][1] == "AA"


def waiting(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM hl7_inbound WHERE status = 'received'").fetchone()
    return int(row[0]) if row else 0


@contextmanager
def processors(runtime, handler: InboundHandler, groups: int = 1) -> Iterator[None]:
    """``PROCESSORS`` processors running while the block runs, in ``groups`` groups as
    ``serve`` processes run them (each its own pool, wake-ups and LISTEN connection)."""
    stop = threading.Event()
    threads = [
        threading.Thread(
            target=InboundProcessors(
                runtime.url, handler, runtime.cipher, PROCESSORS // groups
            ).run,
            args=(stop,),
        )
        for _ in range(groups)
    ]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)


def feed_and_apply(
    runtime, handler: InboundHandler, messages: list[bytes], groups: int = 1
) -> None:
    """Send ``messages`` to the listener with the processors running; return once none
    is left waiting."""
    config = ListenerConfig(host="127.0.0.1", port=0)
    with (
        processors(runtime, handler, groups),
        BackgroundListener(runtime.url, config, cipher=runtime.cipher) as listener,
    ):
        send_all(listener.port, messages)
        deadline = time.monotonic() + DEADLINE
        while waiting(runtime.url) and time.monotonic() < deadline:
            time.sleep(0.05)
    assert waiting(runtime.url) == 0


def outcomes(url: str) -> dict[str, str]:
    with psycopg.connect(url) as conn:
        found = conn.execute(
            "SELECT control_id, status || ' ' || coalesce(outcome, error) FROM hl7_inbound"
        ).fetchall()
    return dict(found)


@pytest.mark.parametrize("groups", [1, 2], ids=["one process", "two processes"])
def test_each_patients_messages_are_applied_in_arrival_order_by_several_processors(runtime, groups):
    # Given 20 patients, each registered (A04) then renamed four times (A08), each
    # patient's messages one after another, so that four processors taking the next
    # four messages would take one patient's at once
    patients, renames = 20, 4
    messages, expected = [], {}
    for p in range(patients):
        messages.append(adt("A04", f"P{p}-0", f"MRN{p}", f"FAM{p}V0", "PV1|1|O"))
        for k in range(1, renames + 1):
            messages.append(adt("A08", f"P{p}-{k}", f"MRN{p}", f"FAM{p}V{k}", "PV1|1|O"))
        expected[p] = f"FAM{p}V{renames}"
    watching = Watching(runtime.inbound)

    # When they arrive while four processors run (in one process, or two in each of two)
    feed_and_apply(runtime, watching, messages, groups)

    # Then every message was applied, each patient's one after another (the next begun
    # after the previous ended), and each patient has the name of the last message
    assert set(outcomes(runtime.url).values()) == {"processed applied"}
    for p in range(patients):
        spans = [watching.spans[f"P{p}-{k}"] for k in range(renames + 1)]
        assert all(a[1] < b[0] for a, b in pairwise(spans)), spans
        patient = runtime.services.registry.patient_by_identifier("CENTRE", f"MRN{p}")
        assert patient is not None
        assert patient.family_name == expected[p]
    # and patients were applied side by side (else this proves nothing about order)
    starts = sorted(watching.spans.values())
    assert any(a[1] > b[0] for a, b in pairwise(starts))


def test_a_merge_waits_for_everything_before_it_and_nothing_after_it_passes_it(runtime):
    # Given two patients' messages, a merge of the second into the first, then more
    # messages of both and of others
    before = [adt("A04", f"B{p}", f"MRN{p}", f"FAM{p}") for p in range(8)]
    merge = adt("A40^ADT_A39", "MERGE", "MRN0", "FAM0", "MRG|MRN1^^^CENTRE^MR")
    after = [adt("A08", f"C{p}", f"MRN{p}", f"LATE{p}") for p in range(8)]
    watching = Watching(runtime.inbound)

    # When they arrive while four processors run
    feed_and_apply(runtime, watching, [*before, merge, *after])

    # Then the merge began after everything before it ended, and everything after it
    # began after it ended
    assert set(outcomes(runtime.url).values()) == {"processed applied"}
    start, end = watching.spans["MERGE"]
    assert all(watching.spans[f"B{p}"][1] < start for p in range(8))
    assert all(watching.spans[f"C{p}"][0] > end for p in range(8))
    # and the merged record's later rename went to the survivor, after the merge
    survivor = runtime.services.registry.patient_by_identifier("CENTRE", "MRN1")
    assert survivor is not None
    assert survivor == runtime.services.registry.patient_by_identifier("CENTRE", "MRN0")


def test_a_handler_that_names_no_order_gets_the_whole_feeds_order(runtime):
    # Given a handler without ordering keys (the port's default: every message a barrier)
    class Plain(InboundHandler):
        def __init__(self) -> None:
            self.inner = runtime.inbound

        def handle(self, message: InboundMessage) -> str:
            return self.inner.handle(message)

    watching = Watching(Plain())
    messages = [adt("A04", f"S{p}", f"MRN{p}", f"FAM{p}") for p in range(12)]

    # When they arrive while four processors run
    feed_and_apply(runtime, watching, messages)

    # Then they were applied one at a time, in arrival order
    spans = [watching.spans[f"S{p}"] for p in range(12)]
    assert all(a[1] < b[0] for a, b in pairwise(spans)), spans


def test_a_stored_message_wakes_the_processors_of_any_process(runtime):
    # Given a thread listening for wake-ups, as every serve process has
    wakeup, stop = Wakeup(), threading.Event()
    thread = threading.Thread(target=listen, args=(runtime.url, wakeup, stop))
    thread.start()
    try:
        deadline = time.monotonic() + DEADLINE
        while wakeup.generation == 0 and time.monotonic() < deadline:
            time.sleep(0.01)  # the first poke: it listens
        seen = wakeup.generation

        # When the listener stores a message
        config = ListenerConfig(host="127.0.0.1", port=0)
        with BackgroundListener(runtime.url, config, cipher=runtime.cipher) as listener:
            send_all(listener.port, [adt("A04", "WAKE", "MRN9", "FAM9")])
            woken = wakeup.wait(seen, DEADLINE)
    finally:
        stop.set()
        thread.join(10)

    # Then the listening thread was woken
    assert woken
    assert wakeup.generation > seen


def test_a_lost_race_in_a_batch_keeps_what_was_handled_before_it(runtime):
    # Given three patients' messages, the second of which loses a race once
    class Racing(InboundHandler):
        def __init__(self) -> None:
            self.handled: list[str] = []
            self.raced = False

        def ordering_key(self, message: InboundMessage) -> str | None:
            return message.control_id

        def handle(self, message: InboundMessage) -> str:
            if message.control_id == "R1" and not self.raced:
                self.raced = True
                raise ConcurrencyError("another writer was first")
            self.handled.append(message.control_id)
            return "applied"

    config = ListenerConfig(host="127.0.0.1", port=0)
    with BackgroundListener(runtime.url, config, cipher=runtime.cipher) as listener:
        send_all(listener.port, [adt("A04", f"R{p}", f"MRN{p}", f"FAM{p}") for p in range(3)])
    handler = Racing()
    processor = InboundProcessor(runtime.pool, handler, runtime.cipher, batch=3)

    # When one processor takes all three in one batch
    with pytest.raises(ConcurrencyError):
        processor.process_pending(10)

    # Then the first is processed, the other two wait; and next time they are applied
    assert outcomes(runtime.url)["R0"] == "processed applied"
    assert waiting(runtime.url) == 2
    assert processor.process_pending(10) == 2
    assert handler.handled == ["R0", "R1", "R2"]


def test_a_fault_in_the_ordering_key_does_not_hold_the_feed_up(runtime):
    # Given a handler whose ordering key fails
    class Faulty(InboundHandler):
        def ordering_key(self, message: InboundMessage) -> str | None:
            raise RuntimeError("a bug")

        def handle(self, message: InboundMessage) -> str:
            return "applied"

    config = ListenerConfig(host="127.0.0.1", port=0)
    with BackgroundListener(runtime.url, config, cipher=runtime.cipher) as listener:
        send_all(listener.port, [adt("A04", f"F{p}", f"MRN{p}", f"FAM{p}") for p in range(2)])

    # When a processor runs, then both messages are handled (in the feed's order)
    processor = InboundProcessor(runtime.pool, Faulty(), runtime.cipher)
    assert processor.process_pending(10) == 2
    assert outcomes(runtime.url) == {"F0": "processed applied", "F1": "processed applied"}
