"""A worker process killed (SIGKILL) in the middle of a send loses nothing: after a
restart every delivery ends acknowledged, and the RIS never sees a message it already
acknowledged arrive again under a different MSH-10 (resends keep their MSH-10)."""

import os
import signal
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from adapters.clock import SystemClock
from imaging_bridge.bootstrap import Runtime
from tests.integration.mllp_peer import Peer, field_of, wait_until
from tests.integration.test_outbound_hl7 import book, new_patient

pytestmark = pytest.mark.integration

DAY = datetime(2026, 12, 2, 14, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]
WORKER = "import typer; from imaging_bridge.deliveries_cli import worker; typer.run(worker)"


def start_worker(runtime: Runtime, data_dir: Path, peer: Peer) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": runtime.url,
        "ENVIRONMENT": "test",
        "HL7_DESTINATIONS": f"ris=127.0.0.1:{peer.port};timeout=30",
        "DELIVERY_BASE_DELAY": "0.05",
        "DELIVERY_MAX_DELAY": "0.2",
        "DELIVERY_LEASE_SECONDS": "1",
        "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}",
    }
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, "--threads", "2", "--data-dir", str(data_dir)],
        env=env,
        cwd=str(data_dir),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@pytest.fixture
def peer() -> Iterator[Peer]:
    with Peer() as p:
        yield p


def test_a_worker_killed_mid_send_loses_nothing(runtime: Runtime, tmp_path: Path, peer: Peer):
    settings = runtime.settings.model_copy(
        update={"hl7_destinations": f"ris=127.0.0.1:{peer.port}"}
    )
    # This process runs the policy and the read model; the worker process sends (the HL7
    # deliveries are looked at: the bookings' e-mail notices go their own way).
    ob = runtime.start_outbound(settings, pump=False, workers=0, clock=SystemClock())
    try:
        # The fifth message reaches the RIS, which holds it: the worker is mid-send.
        peer.script.extend(["AA", "AA", "AA", "AA", "stall"])
        patients = [new_patient(runtime, 100 + i) for i in range(4)]
        for i, patient in enumerate(patients):
            book(runtime, patient, DAY + timedelta(hours=i))
        worker = start_worker(runtime, tmp_path, peer)
        try:
            wait_until(lambda: peer.stalls >= 1, timeout=60)
        finally:
            worker.send_signal(signal.SIGKILL)
            worker.wait(timeout=10)
        before = len(peer.messages())
        [stalled] = peer.stalled  # the message the RIS was holding

        restarted = start_worker(runtime, tmp_path, peer)
        try:
            wait_until(
                lambda: (
                    len(ob.desk().search(channel="hl7")) == 8
                    and all(d.status == "acknowledged" for d in ob.desk().search(channel="hl7"))
                ),
                timeout=60,
            )
        finally:
            restarted.send_signal(signal.SIGTERM)
            restarted.wait(timeout=20)
        acknowledged = {d.control_id for d in ob.desk().search(channel="hl7")}
    finally:
        ob.stop()

    received = peer.messages()
    assert len(received) > before
    assert len(peer.messages(stalled)) >= 2  # the held message was sent again after the restart
    # Every message the RIS saw kept one MSH-10 across resends...
    control_ids: dict[str, set[str]] = defaultdict(set)
    for message in received:
        body = message.split("\r", 1)[1]
        control_ids[body].add(field_of(message, "MSH", 10))
    assert all(len(ids) == 1 for ids in control_ids.values())
    # ... every delivery reached it under its own MSH-10 and was ACKed: nothing lost.
    assert len(control_ids) == 8
    assert {next(iter(ids)) for ids in control_ids.values()} == acknowledged
    assert set(peer.acked) == acknowledged
