"""Inbound HL7 throughput: 8 concurrent MLLP connections send ORU^R01 and ADT^A08
messages to the listener for a fixed time; each connection waits for its ACK before
sending the next message (as interface engines do). Reports messages/s ACKed and ACK
latency, then checks that every ACKed message is in PostgreSQL (stored, committed with
synchronous_commit on, before its ACK left).

``--serve`` measures what the issue asks of ``imaging-bridge serve`` instead: 3,000
ADT^A04 (new patients, one each) from 8 connections back to back through the running
server's listener and inbound processors; ACKed/s, applied/s (until no message is left
``received``) and their ratio.

The listener runs in its own process (one asyncio loop, as ``imaging-bridge
mllp-listen`` runs it); the load generator in this one. Loopback only; a fresh
database ``ib_bench_hl7_<random>`` on the machine's PostgreSQL, dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import multiprocessing
import os
import platform
import secrets
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
from psycopg.conninfo import make_conninfo

if TYPE_CHECKING:
    from adapters.at_rest import AtRestCipher

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from _harness import percentile
from _targets import Target, Verdict, add_check_argument, exit_code

MACHINE_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
TARGET_CONNECTIONS = 8
TARGET = Target("messages ACKed", ">=", 300, "messages/s", "from 8 connections")


def oru(n: int, connection: int) -> bytes:
    return (
        "MSH|^~\\&|RIS|CENTRE|BRIDGE|US|20261127120000||ORU^R01^ORU_R01|"
        f"B{connection}-{n}|P|2.5.1|||||FRA|8859/1\r"
        f"PID|1||MRN{n}^^^CENTRE^MR||DOE^JANE||19800101|F\r"
        f"OBR|1|ORD{n}|ACC{n}|71020^CHEST XRAY^CPT|||20261127110000||||||||||||||||||F\r"
        "OBX|1|RP|VIEWER^Viewer link||https://pacs.example.org/viewer?study=1.2.3^URL||||||F\r"
        "OBX|2|TX|REPORT||No acute findings. Heart size normal. Lungs clear.||||||F\r"
    ).encode("latin-1")


def adt(n: int, connection: int) -> bytes:
    return (
        "MSH|^~\\&|RIS|CENTRE|BRIDGE|US|20261127120000||ADT^A08^ADT_A01|"
        f"A{connection}-{n}|P|2.3\r"
        "EVN|A08|20261127120000\r"
        f"PID|1||MRN{n}^^^CENTRE^MR||MÜLLER^ANNA||19700101|F|||1 MAIN ST^^TOWN^^12345\r"
        "PV1|1|O\r"
    ).encode("latin-1")


def run_listener(url: str, ready: multiprocessing.Queue, stop: multiprocessing.Event) -> None:
    from adapters.hl7.listener import ListenerConfig, MllpListener

    async def main() -> None:
        config = ListenerConfig(host="127.0.0.1", port=0, pool_size=8)
        async with MllpListener(url, config, cipher=bench_cipher()) as listener:
            ready.put(listener.port)
            while not stop.is_set():
                await asyncio.sleep(0.1)

    quiet_logs()
    asyncio.run(main())


async def peer(
    port: int, connection: int, until: float, warmup_until: float, latencies: list[float]
) -> tuple[int, int, int]:
    """Send messages back to back until ``until``; (measured AA, measured other answers,
    every answer including the warm-up)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    accepted = refused = answered = 0
    n = 0
    try:
        while time.monotonic() < until:
            n += 1
            payload = oru(n, connection) if n % 2 else adt(n, connection)
            started = time.monotonic()
            writer.write(b"\x0b" + payload + b"\x1c\x0d")
            await writer.drain()
            answer = await asyncio.wait_for(reader.readuntil(b"\x1c\x0d"), timeout=30)
            finished = time.monotonic()
            answered += 1
            if started < warmup_until:
                continue
            latencies.append(finished - started)
            if b"MSA|AA|" in answer:
                accepted += 1
            else:
                refused += 1
    finally:
        writer.close()
    return accepted, refused, answered


async def drive(port: int, connections: int, seconds: float, warmup: float) -> dict[str, object]:
    latencies: list[float] = []
    start = time.monotonic()
    warmup_until = start + warmup
    until = warmup_until + seconds
    results = await asyncio.gather(
        *(peer(port, c, until, warmup_until, latencies) for c in range(connections))
    )
    elapsed = time.monotonic() - warmup_until
    accepted = sum(r[0] for r in results)
    refused = sum(r[1] for r in results)
    latencies.sort()

    def pct(q: float) -> float:
        return percentile(latencies, q * 100) * 1000

    return {
        "connections": connections,
        "seconds": round(elapsed, 2),
        "acked_aa": accepted,
        "other_answers": refused,
        "messages_per_second": round(accepted / elapsed, 1),
        "ack_p50_ms": round(pct(0.50), 2),
        "ack_p95_ms": round(pct(0.95), 2),
        "ack_p99_ms": round(pct(0.99), 2),
        "ack_max_ms": round(latencies[-1] * 1000, 2),
        "answered_including_warmup": sum(r[2] for r in results),
    }


def machine(url: str) -> dict[str, object]:
    with psycopg.connect(url) as conn:
        version = conn.execute("SHOW server_version").fetchone()[0]
        sync = conn.execute("SHOW synchronous_commit").fetchone()[0]
        fsync = conn.execute("SHOW fsync").fetchone()[0]
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "postgresql": version,
        "synchronous_commit": sync,
        "fsync": fsync,
        "load_average_at_start": os.getloadavg()[0],
    }


def bench_cipher() -> AtRestCipher:
    """The at-rest cipher under a fixed benchmark key (messages are stored sealed)."""
    from adapters.at_rest import AtRestCipher

    return AtRestCipher(base64.b64encode(b"benchmark-key-32-bytes-long-0000").decode())


def quiet_logs() -> None:
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))


def drain(pool: object, handler: object, seconds: float) -> dict[str, object]:
    """Run the processing stage with ``handler`` over the stored messages for at most
    ``seconds``; how many it handled, and how fast."""
    from adapters.hl7.processor import InboundProcessor

    processor = InboundProcessor(pool, handler, bench_cipher())  # type: ignore[arg-type]
    done = 0
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        batch = processor.process_pending(100)
        done += batch
        if not batch:
            break
    elapsed = time.monotonic() - started
    return {"processed": done, "processed_per_second": round(done / elapsed, 1)}


def processing_rate(url: str, seconds: float) -> dict[str, object]:
    """The processing stage behind the listener, with a handler that does nothing: the
    cost of claiming, reading the envelope, decoding and marking by one processor, up to
    ``CLAIM_BATCH`` messages per transaction; the real handler's own cost comes on top."""
    from adapters.database import reader_pool
    from application.ris.inbound_ports import InboundHandler, InboundMessage

    class NoOp(InboundHandler):
        def handle(self, message: InboundMessage) -> str:
            return "ignored"

    pool = reader_pool(url, 2)
    try:
        return drain(pool, NoOp(), seconds)
    finally:
        pool.close()


def applying_rate(url: str, seconds: float) -> dict[str, object]:
    """The processing stage with the real handler, as ``serve`` runs it: hl7apy parse,
    then the application command (ORU: a result kept for review, as no order matches;
    ADT^A08: the patient created or updated under the RIS MRN), one processor."""
    import shutil
    import tempfile

    from adapters.settings import Settings
    from imaging_bridge.bootstrap import TOOL, build

    data_dir = Path(tempfile.mkdtemp(prefix="ib-bench-hl7-"))
    settings = Settings(environment="test", data_dir=data_dir, database_url=url)
    runtime = build(settings, TOOL, url=url)
    try:
        with runtime.pool.connection() as conn:
            started = conn.execute("SELECT clock_timestamp()").fetchone()[0]
        result = drain(runtime.pool, runtime.inbound, seconds)
        with runtime.pool.connection() as conn:
            outcomes = conn.execute(
                "SELECT message_type || ' ' || coalesce(outcome, error, status), count(*)"
                " FROM hl7_inbound WHERE processed_at >= %s GROUP BY 1 ORDER BY 1",
                (started,),
            ).fetchall()
        result["outcomes"] = dict(outcomes)  # of this run only (not the no-op run's)
        return result
    finally:
        runtime.close()
        shutil.rmtree(data_dir, ignore_errors=True)


def a04(n: int, connection: int) -> bytes:
    """A new patient: one of its own per message."""
    return (
        "MSH|^~\\&|RIS|CENTRE|BRIDGE|US|20261127120000||ADT^A04^ADT_A01|"
        f"N{connection}-{n}|P|2.5.1\r"
        "EVN|A04|20261127120000\r"
        f"PID|1||NEW{connection}X{n}^^^CENTRE^MR||DOE^JOHN||19700101|M\r"
        "PV1|1|O\r"
    ).encode("latin-1")


async def send_all(port: int, connection: int, count: int) -> int:
    """Send ``count`` A04s back to back, each after the previous ACK; how many got AA."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    accepted = 0
    try:
        for n in range(count):
            writer.write(b"\x0b" + a04(n, connection) + b"\x1c\x0d")
            await writer.drain()
            answer = await asyncio.wait_for(reader.readuntil(b"\x1c\x0d"), timeout=30)
            accepted += b"MSA|AA|" in answer
    finally:
        writer.close()
    return accepted


async def feed(port: int, connections: int, messages: int) -> int:
    share = messages // connections
    results = await asyncio.gather(*(send_all(port, c, share) for c in range(connections)))
    return sum(results)


def statuses(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT status || coalesce(' ' || outcome, ''), count(*) FROM hl7_inbound GROUP BY 1"
        ).fetchall()
    return {str(status): int(count) for status, count in rows}


def serve_ratio(messages: int, connections: int, timeout: float) -> dict[str, object]:
    """``serve`` on a fresh database of the machine's PostgreSQL: ACKed/s and applied/s
    of ``messages`` new-patient A04s, both timed from the first message sent."""
    from _harness import Server, free_port, git_state

    os.environ["MLLP_PORT"] = str(mllp_port := free_port())
    with Server(pg="machine") as server:
        url = server.database_url
        assert url is not None
        load = Path("/proc/loadavg").read_text().split()[:3]
        started = time.monotonic()
        accepted = asyncio.run(feed(mllp_port, connections, messages))
        acked = time.monotonic() - started
        while time.monotonic() - started < timeout:
            if statuses(url).get("received", 0) == 0:
                break
            time.sleep(0.05)
        applied = time.monotonic() - started
        outcome = statuses(url)
    sent = messages // connections * connections
    return {
        "mode": "serve",
        "git": git_state(),
        "messages": sent,
        "connections": connections,
        "acked_aa": accepted,
        "ack_seconds": round(acked, 2),
        "acked_per_second": round(accepted / acked, 1),
        "applied_seconds": round(applied, 2),
        "applied_per_second": round(sent / applied, 1),
        "ratio_applied_to_acked": round((sent / applied) / (accepted / acked), 3),
        "statuses": outcome,
        "loadavg_at_start": load,
        "loadavg_at_end": Path("/proc/loadavg").read_text().split()[:3],
        "cpus": os.cpu_count(),
    }


def verdicts(result: dict[str, object], connections: int) -> list[Verdict]:
    """The ACK rate target, at its number of connections."""
    rate = result["messages_per_second"] if connections == TARGET_CONNECTIONS else None
    return [TARGET.check(float(rate) if rate is not None else None)]  # type: ignore[arg-type]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="measured time (max 120)")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured time first")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument(
        "--postgres", default=os.environ.get("BENCH_PG", MACHINE_PG), help="server to use"
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON only")
    parser.add_argument(
        "--serve",
        action="store_true",
        help="measure imaging-bridge serve: --messages new-patient A04s, applied/s / ACKed/s",
    )
    parser.add_argument("--messages", type=int, default=3000, help="with --serve")
    add_check_argument(parser)
    args = parser.parse_args()
    if args.serve:
        quiet_logs()
        print(json.dumps(serve_ratio(args.messages, args.connections, 600.0), indent=2))
        return 0
    seconds = min(max(args.seconds, 1.0), 120.0)
    quiet_logs()

    from adapters.database import drop_database, ensure_database
    from adapters.migrations import apply_migrations

    url = make_conninfo(args.postgres, dbname=f"ib_bench_hl7_{secrets.token_hex(4)}")
    ensure_database(url)
    context = multiprocessing.get_context("spawn")
    ready = context.Queue()
    stop = context.Event()
    listener = context.Process(target=run_listener, args=(url, ready, stop), daemon=True)
    try:
        apply_migrations(url)
        facts = machine(url)
        listener.start()
        port = ready.get(timeout=60)
        result = asyncio.run(drive(port, args.connections, seconds, args.warmup))
        with psycopg.connect(url) as conn:
            stored = conn.execute("SELECT count(*) FROM hl7_inbound").fetchone()[0]
        result["stored_rows"] = stored
        result["processing_no_op_handler"] = processing_rate(url, 10.0)
        result["processing_real_handler"] = applying_rate(url, 20.0)
        result["machine"] = facts
    finally:
        stop.set()
        listener.join(15)
        if listener.is_alive():
            listener.kill()
            listener.join(5)
        drop_database(url)
    # Every message answered (warm-up included) is exactly one stored row.
    assert stored == result["answered_including_warmup"], "ACKed and stored counts differ"
    checked = verdicts(result, args.connections)
    result["targets"] = [verdict.line() for verdict in checked]
    if args.json:
        print(json.dumps(result))
    else:
        print(json.dumps(result, indent=2))
        for verdict in checked:
            print(verdict.line())
    return exit_code(checked, args.no_check)


if __name__ == "__main__":
    sys.exit(main())
