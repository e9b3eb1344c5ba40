"""HL7 outbound benchmark: SIU^S12 deliveries sent over MLLP and ACKed end to end.

Starts ``--workers`` worker processes (the ``imaging-bridge worker`` command function:
dramatiq on the PostgreSQL broker, or on RabbitMQ with ``BROKER_URL``, plus the pump) and
sends them a warm-up (``--workers`` x ``--threads`` x 4 messages); then queues
``--messages`` SIU^S12 deliveries (as the delivery policy does, one per patient,
``--per-patient`` each), which the workers render (the send path's text renderer, held to
hl7apy's output by a test), send to an MLLP peer on loopback answering AA, and record.
Measured: from the first delivery queued until the deliveries read model shows every one
acknowledged (rate = messages / that time; the queueing and the read model are in it; until
2026-12-02 the clock started with the workers, so their start-up, about 1 s, was in it too),
and the rate at which the peer sent ACKs (first to last). Then the transport floor: the
same messages sent to the same peer by a plain sender (``MllpClient`` on
``--floor-threads`` threads, no database, no queue). Targets (issue 12): at least 400 SIU/s
with two workers, and at least half the floor. ``run`` is what ``ratios.py`` calls.

Runs on a fresh database ``ib_bench_<random>`` on the machine's PostgreSQL
(127.0.0.1:5432) with ``--pg machine``, else on an embedded server in a temporary folder.

    python benchmarks/hl7_outbound.py                       # 2000 messages, 2 workers
    python benchmarks/hl7_outbound.py --messages 500 --workers 1 --threads 4
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from adapters.database import (  # noqa: E402
    drop_database,
    ensure_database,
    start_embedded,
    with_dbname,
)
from adapters.settings import Settings  # noqa: E402
from application.ris.deliveries import Deliveries  # noqa: E402
from domain.context import system_actor  # noqa: E402
from domain.ris.message_delivery import MessageDelivery  # noqa: E402
from imaging_bridge.bootstrap import Runtime, build  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import MACHINE_PG, _cpu_seconds, log  # noqa: E402
from _targets import Target, Verdict, add_check_argument, exit_code  # noqa: E402

START, END = b"\x0b", b"\x1c\x0d"
WORKER = "import typer; from imaging_bridge.deliveries_cli import worker; typer.run(worker)"
TARGET_WORKERS = 2
TARGET = Target("SIU^S12 delivered and ACKed", ">=", 400, "SIU/s", "with 2 workers")
RATIO = Target(
    "end to end ÷ transport floor", ">=", 0.5, "", "2 workers vs a plain sender on 8 threads"
)
EVERY_ONE = Target("messages not acknowledged before the timeout", "<=", 0, "")


class AckingPeer:
    """An MLLP peer on loopback that ACKs every message AA and notes when, in a process of
    its own (as the RIS is): in this one it would take the GIL from the read models this
    process keeps, and the end-to-end figure would measure that contention."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._control, child = context.Pipe()
        self.process = context.Process(target=_serve_peer, args=(child,), daemon=True)
        self.process.start()
        if not self._control.poll(30):
            raise RuntimeError("the MLLP peer did not start")
        self.port = int(self._control.recv())

    def acks(self) -> list[float]:
        """When each ACK went out (``time.monotonic()``, the same clock in every process)."""
        self._control.send("acks")
        return list(self._control.recv())

    def clear(self) -> None:
        self._control.send("clear")
        self._control.recv()

    def close(self) -> None:
        self._control.send("stop")
        self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.kill()


def _serve_peer(control: Any) -> None:
    """The peer process: serve on a free loopback port, answer the controller's requests."""
    acks: list[float] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                data = await reader.readuntil(END)
                message = data[data.find(START) + 1 : -2].decode()
                control_id = message.split("\r", 1)[0].split("|")[9]
                ack = (
                    f"MSH|^~\\&|RIS|RIS|IB|IB|20261130||ACK|A{control_id}|P|2.5.1\r"
                    f"MSA|AA|{control_id}"
                )
                writer.write(START + ack.encode() + END)
                await writer.drain()
                acks.append(time.monotonic())
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        control.send(server.sockets[0].getsockname()[1])
        loop = asyncio.get_running_loop()
        while True:
            request = await loop.run_in_executor(None, control.recv)
            if request == "stop":
                break
            if request == "clear":
                acks.clear()
            control.send(list(acks) if request == "acks" else None)
        server.close()

    asyncio.run(main())


def payload(n: int, patient: str, start: datetime) -> dict[str, str]:
    return {
        "event_at": start.isoformat(),
        "appointment_id": str(uuid4()),
        "patient_id": patient,
        "given_name": "Bench",
        "family_name": f"Patient{n}",
        "birth_date": "1980-02-29",
        "phone": "",
        "start": start.isoformat(),
        "end": (start + timedelta(minutes=15)).isoformat(),
        "timezone": "America/New_York",
        "duration_minutes": "15",
        "reason": "",
        "type_code": "ct-head",
        "type_name": "CT Head",
        "type_cpt": "70450",
        "modality": "CT",
        "location_code": "riverside",
        "location_name": "Riverside",
        "resource_code": "riverside-ct-1",
        "resource_name": "Riverside CT",
    }


def queue(deliveries: Deliveries, messages: int, per_patient: int, prefix: str = "bench") -> None:
    now = datetime.now(UTC)
    meta = system_actor(source="benchmark").meta()
    batch = []
    patient = str(uuid4())
    for n in range(messages):
        if n % per_patient == 0:
            patient = str(uuid4())
        batch.append(
            MessageDelivery.queue(
                channel="hl7",
                recipient="ris",
                message_type="SIU^S12",
                cause=f"{prefix}:{n}",
                cause_at=now + timedelta(microseconds=n),
                ordering_key=patient,
                payload=payload(n, patient, now + timedelta(days=3, minutes=15 * n)),
                meta=meta,
            )
        )
        if len(batch) == 200:
            deliveries.save(*batch)
            batch = []
    if batch:
        deliveries.save(*batch)


def wait_acknowledged(runtime: Runtime, count: int, deadline: float) -> int:
    """Wait until ``count`` deliveries are acknowledged, or ``deadline``; how many are."""
    done = acknowledged(runtime)
    while done < count and time.monotonic() < deadline:
        time.sleep(0.05)
        done = acknowledged(runtime)
    return done


def _workers_cpu(workers: list[subprocess.Popen[bytes]]) -> float:
    return sum(_cpu_seconds(worker.pid) for worker in workers)


def acknowledged(runtime: Runtime) -> int:
    with runtime.pool.connection() as conn:
        row = conn.execute("SELECT count(*) FROM rm_deliveries WHERE status = 'acknowledged'")
        return int(row.fetchone()[0])  # type: ignore[index]


def verdicts(result: dict[str, Any]) -> list[Verdict]:
    """Every message acknowledged, and the rate target at its number of workers."""
    missing = result["messages"] - result["acknowledged"]
    at_target = result["workers"] == TARGET_WORKERS
    rate = result["rate_end_to_end_per_s"] if at_target else None
    ratio = result.get("ratio_to_floor") if at_target else None
    return [EVERY_ONE.check(missing), TARGET.check(rate), RATIO.check(ratio)]


def run_threads(count: int, body: Callable[[], None], timeout: float) -> float:
    """Run ``body`` on ``count`` threads until each returns (or ``timeout``); seconds."""
    started = time.monotonic()
    pool = [threading.Thread(target=body, daemon=True) for _ in range(count)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=timeout)
    return time.monotonic() - started


def floor_texts(messages: int) -> list[str]:
    """The SIU^S12 texts both floors send."""
    from adapters.hl7.render import render_fast

    now = datetime.now(UTC)
    return [
        render_fast(
            "SIU^S12",
            payload(n, str(uuid4()), now + timedelta(minutes=15 * n)),
            f"F{n}",
            recipient="ris",
        )
        for n in range(messages)
    ]


def transport_floor(port: int, messages: int, threads: int) -> dict[str, Any]:
    """The same SIU^S12 texts sent by a plain sender (``MllpClient``, no database, no
    queue) on ``threads`` threads to the same peer: the rate the transport allows."""
    accepted, elapsed = _send_all(port, floor_texts(messages), threads)
    return {
        "floor_messages": messages,
        "floor_threads": threads,
        "floor_accepted": accepted,
        "floor_rate_per_s": round(accepted / elapsed, 1),
    }


def durable_floor(server: str, port: int, messages: int, threads: int) -> dict[str, Any]:
    """The plain sender again, now keeping the least record any sender that must not lose
    a message keeps: a row committed before each send and its ACK committed after (one
    table, autocommit, in a scratch database on ``server``). No events, no read model, no
    queue, no lease: what PostgreSQL's commits alone leave of the transport's rate."""
    from psycopg_pool import ConnectionPool

    url = with_dbname(server, f"ib_bench_floor_{uuid4().hex[:10]}")
    ensure_database(url)
    try:
        with ConnectionPool(url, min_size=threads, kwargs={"autocommit": True}) as pool:
            with pool.connection() as conn:
                conn.execute(
                    "CREATE TABLE sent (id int PRIMARY KEY, body text NOT NULL,"
                    " acked_at timestamptz)"
                )

            def kept(number: int, text: str) -> None:
                with pool.connection() as conn:
                    conn.execute("INSERT INTO sent (id, body) VALUES (%s, %s)", (number, text))

            def acked(number: int) -> None:
                with pool.connection() as conn:
                    conn.execute("UPDATE sent SET acked_at = now() WHERE id = %s", (number,))

            texts = floor_texts(messages)
            accepted, elapsed = _send_all(port, texts, threads, before=kept, after=acked)
    finally:
        drop_database(url)
    return {
        "durable_floor_accepted": accepted,
        "durable_floor_rate_per_s": round(accepted / elapsed, 1),
    }


def _send_all(
    port: int,
    texts: list[str],
    threads: int,
    before: Callable[[int, str], None] | None = None,
    after: Callable[[int], None] | None = None,
) -> tuple[int, float]:
    """Send ``texts`` on ``threads`` threads, each waiting for its ACK: (accepted,
    seconds). ``before(n, text)`` runs before the n-th send, ``after(n)`` once it is
    accepted."""
    from adapters.hl7.mllp_client import MllpClient

    work = iter(enumerate(texts))
    lock = threading.Lock()
    accepted = [0]

    def body() -> None:
        client = MllpClient("127.0.0.1", port, timeout=10)
        while True:
            with lock:
                item = next(work, None)
            if item is None:
                return
            if before is not None:
                before(*item)
            if client.send(item[1], f"F{item[0]}").outcome == "accepted":
                if after is not None:
                    after(item[0])
                with lock:
                    accepted[0] += 1

    elapsed = run_threads(threads, body, timeout=300)
    return accepted[0], elapsed


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--per-patient", type=int, default=1, help="deliveries per patient")
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--threads", type=int, default=4, help="sending threads per worker")
    parser.add_argument(
        "--floor-threads",
        type=int,
        default=8,
        help="threads of the plain sender that measures the transport floor, after the"
        " end-to-end run (0: no floor)",
    )
    parser.add_argument("--pg", choices=["embedded", "machine"], default="embedded")
    parser.add_argument("--timeout", type=float, default=300.0)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """One end-to-end run, then the transport floor to the same peer: the result."""
    data_dir = Path(tempfile.mkdtemp(prefix="ib-bench-hl7-"))
    if args.pg == "machine":
        server = MACHINE_PG
    else:
        server = start_embedded(data_dir / "pg", delete_at_exit=True)
    url = with_dbname(server, f"ib_bench_{uuid4().hex[:10]}")
    ensure_database(url)
    peer = AckingPeer()
    workers: list[subprocess.Popen[bytes]] = []
    settings = Settings(environment="test", data_dir=data_dir, database_url=url, db_pool_size=5)
    destinations = f"ris=127.0.0.1:{peer.port};timeout=10"
    # The projections keep the deliveries read model the workers' pumps read.
    runtime = build(settings, url=url)
    try:
        deliveries = runtime.services.deliveries.deliveries
        worker_env = {
            **os.environ,
            "DATABASE_URL": url,
            "ENVIRONMENT": "test",
            "HL7_DESTINATIONS": destinations,
            "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}",
            "LOG_LEVEL": "warning",
        }
        command = [sys.executable, "-c", WORKER, "--threads", str(args.threads)]
        command += ["--data-dir", str(data_dir)]
        log(f"starting {args.workers} worker processes x {args.threads} threads")
        started, own_cpu = time.monotonic(), time.process_time()
        for _ in range(args.workers):
            workers.append(
                subprocess.Popen(
                    command, env=worker_env, cwd=str(data_dir), stdout=subprocess.DEVNULL
                )
            )
        # Warm-up: a few messages through running workers, so that what is timed next is
        # the pipeline, not the workers' start (imports, connections).
        warm = args.workers * args.threads * 4
        if warm:
            queue(deliveries, warm, 1, prefix="warm")
            if not wait_acknowledged(runtime, warm, started + args.timeout):
                raise RuntimeError(f"the {warm} warm-up messages were not all acknowledged")
            log(f"workers warm after {time.monotonic() - started:.1f} s ({warm} messages)")
        peer.clear()
        queued_at, worker_cpu = time.monotonic(), _workers_cpu(workers)
        own_cpu = time.process_time()
        log(f"queueing {args.messages} SIU^S12 deliveries")
        queue(deliveries, args.messages, args.per_patient)
        queued = time.monotonic() - queued_at
        done = wait_acknowledged(runtime, warm + args.messages, queued_at + args.timeout) - warm
        finished = time.monotonic()
        elapsed = finished - queued_at
        # CPU per message: this process queues and keeps the read models; the workers
        # pump and send.
        cpu = {
            "workers": round(_workers_cpu(workers) - worker_cpu, 2),
            "queue_projections_and_peer": round(time.process_time() - own_cpu, 2),
        }
    finally:
        stop_workers(workers)
        runtime.close()
        drop_database(url)
        shutil.rmtree(data_dir, ignore_errors=True)
    try:
        acks = sorted(peer.acks())
        ack_span = (acks[-1] - acks[0]) if len(acks) > 1 else 0.0
        result: dict[str, Any] = {
            "messages": args.messages,
            "acknowledged": done,
            "workers": args.workers,
            "threads_per_worker": args.threads,
            "per_patient": args.per_patient,
            "warm_up_messages": warm,
            "seconds_to_queue": round(queued, 2),
            "seconds_to_all_acknowledged": round(elapsed, 2),
            "rate_end_to_end_per_s": round(done / elapsed, 1),
            "peer_acks": len(acks),
            "peer_ack_rate_per_s": round(len(acks) / ack_span, 1) if ack_span else None,
            # Where the end-to-end time goes: from the first delivery queued to the first
            # ACK, the peer's ACKs, and the read model catching up after the last one.
            "seconds_to_first_ack": round(acks[0] - queued_at, 2) if acks else None,
            "seconds_last_ack_to_all_acknowledged": round(finished - acks[-1], 2) if acks else None,
            "cpu_seconds": cpu,
            "worker_cpu_ms_per_message": round(cpu["workers"] / max(done, 1) * 1000, 2),
            "cpus": os.cpu_count(),
            "loadavg_at_end": os.getloadavg()[0],
            "pg": args.pg,
            "broker": "rabbitmq" if os.environ.get("BROKER_URL", "").startswith("amqp") else "pg",
        }
        if args.floor_threads:
            log(f"transport floor: {args.messages} messages on {args.floor_threads} threads")
            result.update(transport_floor(peer.port, args.messages, args.floor_threads))
            result["ratio_to_floor"] = round(
                result["rate_end_to_end_per_s"] / result["floor_rate_per_s"], 2
            )
            log("durable floor: the same, with a row committed before and after each send")
            result.update(durable_floor(server, peer.port, args.messages, args.floor_threads))
            result["ratio_to_durable_floor"] = round(
                result["rate_end_to_end_per_s"] / result["durable_floor_rate_per_s"], 2
            )
        return result
    finally:
        peer.close()


def stop_workers(workers: list[subprocess.Popen[bytes]]) -> None:
    for worker in workers:
        worker.send_signal(signal.SIGTERM)
    for worker in workers:
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    parser.add_argument("--json", type=Path, default=None, help="also write the result here")
    add_check_argument(parser)
    args = parser.parse_args()
    result = run(args)
    checked = verdicts(result)
    result["targets"] = [verdict.line() for verdict in checked]
    print(json.dumps(result, indent=2))
    for verdict in checked:
        print(verdict.line())
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return exit_code(checked, args.no_check)


if __name__ == "__main__":
    sys.exit(main())
