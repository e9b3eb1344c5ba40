"""The four ratios of issue 12, each measured in one run, printed beside its goal.

(a) booking      bookings/s through the API (20 patients booking distinct free slots back
                 to back, ``booking.run_level``) ÷ saves/s of the raw event store for the
                 same atomic save (two aggregates, one ~600-byte event each, AES-GCM,
                 eventsourcing, 20 threads) on the same PostgreSQL server, same run;
(b) slot search  14-day searches/s (the mix of every exam x location, 16 back-to-back
                 clients, ``slot_search.run_level``) ÷ ``GET /healthz``/s, same server;
(c) HL7 inbound  3,000 ADT^A04 (new patients) sent to ``serve``'s MLLP listener from 8
                 connections, each waiting for its ACK: applied/s (until none is left
                 ``received``) ÷ ACKed/s;
(d) outbound     SIU^S12 end to end with two worker processes (5,000 messages,
                 ``hl7_outbound.run``) ÷ the transport floor (a plain sender on 8 threads,
                 same messages, same loopback peer).

(a)-(c) share one ``serve --demo`` (``_harness.Server``); (d) runs its own workers. The
result goes to ``benchmarks/results/ratios-<UTC time>.json`` with the commit, the number
of CPUs and the machine's load (``uptime``) before and after.

    python benchmarks/ratios.py                        # all four, embedded PostgreSQL
    python benchmarks/ratios.py --quick --only outbound,search --pg machine
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate

sys.path.insert(0, str(Path(__file__).resolve().parent))

import booking
import hl7_inbound
import hl7_outbound
import http_floor
import slot_search
from _harness import Server, free_port, git_state, log, wait_for_quiet, write_json
from _targets import Target
from projections.deliveries_view import PENDING_SQL

ROOT = Path(__file__).resolve().parents[1]
GOAL = 0.5
RATIOS = ("booking", "search", "inbound", "outbound")
TARGETS = {
    "booking": Target("bookings/s ÷ raw event-store saves/s", ">=", GOAL, ""),
    "search": Target("14-day searches/s ÷ GET /healthz/s", ">=", GOAL, ""),
    "inbound": Target("HL7 applied/s ÷ ACKed/s", ">=", GOAL, ""),
    "outbound": Target("SIU^S12 end to end ÷ transport floor", ">=", GOAL, ""),
}
STATE = "x" * 560  # about a booking event's size once encoded


def run_settings(args: argparse.Namespace) -> argparse.Namespace:
    """The options the reused ``run_level`` functions read."""
    return argparse.Namespace(
        warmup=2.0 if args.quick else 3.0,
        duration=5.0 if args.quick else 10.0,
        seed=1,
        think=0.0,
        quiet_wait=args.quiet_wait,
        partition="shuffled",
        lock_sample_ms=0.0,
        spread_days=14,
    )


# --- (a) booking ---------------------------------------------------------------------------


class Booked(Aggregate):
    def __init__(self, state: str) -> None:
        self.state = state


class Reserved(Aggregate):
    def __init__(self, state: str) -> None:
        self.state = state


class RawStore(Application):  # type: ignore[type-arg]
    """The raw event store (a class per process: the library keeps topics by name)."""

    name = "rawstore"


def raw_saves(server_url: str, threads: int, seconds: float) -> dict[str, Any]:
    """Saves/s of the event store alone: two new aggregates, one event each, in one
    ``Application.save``, AES-GCM, from ``threads`` threads, in a scratch database on the
    server's PostgreSQL (dropped after)."""
    from eventsourcing.cryptography import AESCipher

    from adapters.database import drop_database, ensure_database, eventsourcing_env, with_dbname

    url = with_dbname(server_url, f"ib_bench_raw_{secrets.token_hex(4)}")
    ensure_database(url)
    env = {
        **eventsourcing_env(url, threads),
        "CIPHER_TOPIC": "eventsourcing.cryptography:AESCipher",
        "CIPHER_KEY": AESCipher.create_key(32),
    }
    app = RawStore(env)
    saved = [0]
    lock = threading.Lock()
    try:
        app.save(Booked(STATE), Reserved(STATE))  # tables and pool warm
        until = time.monotonic() + seconds

        def body() -> None:
            while time.monotonic() < until:
                app.save(Booked(STATE), Reserved(STATE))
                with lock:
                    saved[0] += 1

        elapsed = hl7_outbound.run_threads(threads, body, timeout=seconds + 60)
    finally:
        app.close()
        drop_database(url)
    return {"threads": threads, "saves": saved[0], "saves_per_s": round(saved[0] / elapsed, 1)}


def wait_for_confirmations(url: str, timeout: float, at_least: int = 0) -> dict[str, Any]:
    """Wait until at least ``at_least`` booking confirmations are queued and none is
    pending any more (the deliveries read model says so; one refused for good, e.g.
    without consent, is done too), or ``timeout``; how many were sent, and how long after
    the bookings ended."""
    started = time.monotonic()
    log("waiting for the booking confirmations to be sent")
    with psycopg.connect(url, autocommit=True) as conn:
        while True:
            row = conn.execute(
                "SELECT count(*), count(*) FILTER (WHERE status = 'acknowledged'),"
                f" count(*) FILTER (WHERE status IN ({PENDING_SQL}))"
                " FROM rm_deliveries WHERE message_type = 'booking_confirmation'"
            ).fetchone()
            queued, sent, pending = (int(v) for v in row) if row else (0, 0, 0)
            waited = time.monotonic() - started
            if (queued >= at_least and not pending) or waited > timeout:
                break
            time.sleep(0.5)
    return {
        "queued": queued,
        "sent": sent,
        "pending": pending,
        "seconds_after": round(waited, 1),
    }


def outbound_children(server: Server) -> list[int]:
    """The pids of ``serve``'s outbound child process (``--outbound process``)."""
    assert server.process is not None
    parent = str(server.process.pid)
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            command = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if fields[1] == parent and b"outbound_process" in command:
            found.append(int(stat.parent.name))
    return found


def measure_booking(server: Server, args: argparse.Namespace) -> dict[str, Any]:
    settings = run_settings(args)
    clients = booking.TARGET_CLIENTS
    tokens = booking.register_patients(server.base_url, clients, secrets.token_hex(4))
    slots = booking.collect_slots(server.base_url, 62)
    random.Random(1).shuffle(slots)
    shares = booking.partition(slots, clients, "shuffled", random.Random(1))
    paused = outbound_children(server) if args.pause_outbound else []
    for pid in paused:  # an experiment: what the API path alone reaches
        os.kill(pid, signal.SIGSTOP)
    try:
        level = booking.run_level(server, tokens, shares, settings)
    finally:
        for pid in paused:
            os.kill(pid, signal.SIGCONT)
    rows = level["rows"]["ALL"]
    url = server.monitor_url()
    assert url is not None
    # The confirmations the bookings queued are sent after: the raw store is measured
    # once they are, not beside their backlog.
    booked = int(rows["outcomes"].get("201", 0))
    confirmations = wait_for_confirmations(url, args.confirmation_timeout, at_least=booked)
    log("raw event store: the same save from 20 threads")
    raw = raw_saves(url, clients, settings.duration)
    # Beside the ratio: the same save behind a bare FastAPI with as many workers, the most
    # any booking through this web stack could reach here.
    try:
        floor = http_floor.measure(
            url, server.workers or 1, clients, settings.warmup, settings.duration
        )
        beside = (
            f"against the same save behind a bare FastAPI ({floor['workers']} workers):"
            f" {floor['saves_per_s']}/s, ratio"
            f" {round(level['bookings_per_s'] / floor['saves_per_s'], 2)}"
        )
    except Exception as error:  # noqa: BLE001 - a note beside the ratio, not the ratio
        floor = {"error": repr(error)[:200]}
        beside = f"the bare FastAPI save not measured: {floor['error']}"
    five_xx = sum(n for outcome, n in rows["outcomes"].items() if outcome.startswith("5"))
    return {
        "numerator": level["bookings_per_s"],
        "denominator": raw["saves_per_s"],
        "ratio": round(level["bookings_per_s"] / raw["saves_per_s"], 2),
        "note": ("outbound paused for the level (an experiment, not the ratio); " if paused else "")
        + f"p95 {rows['p95_ms']} ms, {five_xx} 5xx, outcomes {rows['outcomes']};"
        f" confirmation e-mails: {confirmations['sent']} of {confirmations['queued']} sent"
        f" {confirmations['seconds_after']} s after the last booking; {beside}",
        "valid": five_xx == 0 and not paused,
        "outbound_paused": bool(paused),
        "confirmations": confirmations,
        "api": level,
        "raw_store": raw,
        "http_floor": floor,
    }


# --- (b) slot search -----------------------------------------------------------------------


def measure_search(server: Server, args: argparse.Namespace) -> dict[str, Any]:
    settings = run_settings(args)
    clients = 16
    floor = slot_search.run_level(
        server.base_url,
        slot_search.load_queries(server.base_url, [slot_search.BASELINE]),
        clients,
        settings,
        server,
    )
    searches = slot_search.run_level(
        server.base_url,
        slot_search.load_queries(server.base_url, list(slot_search.MIX)),
        clients,
        settings,
        server,
    )
    rows, base = searches["rows"]["ALL"], floor["rows"]["ALL"]
    return {
        "numerator": rows["ok_per_s"],
        "denominator": base["ok_per_s"],
        "ratio": round(rows["ok_per_s"] / base["ok_per_s"], 2),
        "note": f"search p95 {rows['p95_ms']} ms, outcomes {rows['outcomes']}",
        "valid": rows["ok"] == rows["count"],
        "healthz": floor,
        "searches": searches,
    }


# --- (c) HL7 inbound -----------------------------------------------------------------------


def measure_inbound(server: Server, mllp_port: int, args: argparse.Namespace) -> dict[str, Any]:
    messages, connections = (600 if args.quick else 3000), 8
    url = server.monitor_url()
    assert url is not None
    if args.quiet_wait > 0:
        wait_for_quiet(args.quiet_wait, server)

    with psycopg.connect(url, autocommit=True) as conn:
        before = conn.execute("SELECT coalesce(max(seq), 0) FROM hl7_inbound").fetchone()
        assert before is not None
        log(f"HL7 inbound: {messages} ADT^A04 from {connections} connections")
        started = time.monotonic()
        accepted = asyncio.run(hl7_inbound.feed(mllp_port, connections, messages))
        acked = time.monotonic() - started
        deadline = started + args.inbound_timeout
        left = accepted
        while left and time.monotonic() < deadline:
            row = conn.execute(
                "SELECT count(*) FROM hl7_inbound WHERE seq > %s AND status = 'received'",
                (before[0],),
            ).fetchone()
            left = int(row[0]) if row else 0
            if left:
                time.sleep(0.1)
        applied = time.monotonic() - started
        outcomes: dict[str, int] = dict(
            conn.execute(
                "SELECT coalesce(outcome, error, status), count(*) FROM hl7_inbound"
                " WHERE seq > %s GROUP BY 1",
                (before[0],),
            ).fetchall()
        )
    ack_rate = accepted / acked
    applied_rate = (accepted - left) / applied
    return {
        "numerator": round(applied_rate, 1),
        "denominator": round(ack_rate, 1),
        "ratio": round(applied_rate / ack_rate, 2),
        "note": f"{accepted} AA of {messages}, {left} still received, outcomes {outcomes}",
        "valid": left == 0 and accepted == messages // connections * connections,
        "seconds_to_ack": round(acked, 2),
        "seconds_to_apply": round(applied, 2),
    }


# --- (d) outbound --------------------------------------------------------------------------


def measure_outbound(args: argparse.Namespace) -> dict[str, Any]:
    if args.quiet_wait > 0:
        wait_for_quiet(args.quiet_wait)
    result = hl7_outbound.run(
        argparse.Namespace(
            messages=1000 if args.quick else 5000,
            per_patient=1,
            workers=hl7_outbound.TARGET_WORKERS,
            threads=4,
            floor_threads=8,
            pg=args.pg,
            timeout=300.0,
        )
    )
    rate = result["rate_end_to_end_per_s"]
    return {
        "numerator": rate,
        "denominator": result["floor_rate_per_s"],
        "ratio": result["ratio_to_floor"],
        "note": f"{result['acknowledged']} of {result['messages']} acknowledged; "
        f"goal also >= {hl7_outbound.TARGET.limit:g} SIU/s: "
        f"{'met' if rate >= hl7_outbound.TARGET.limit else 'not met'}; against the durable"
        f" floor (a row committed before and after each send):"
        f" {result['durable_floor_rate_per_s']}/s, ratio {result['ratio_to_durable_floor']}",
        "valid": result["acknowledged"] == result["messages"],
        "run": result,
    }


# --- the run -------------------------------------------------------------------------------


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def parse_only(text: str) -> list[str]:
    chosen = [part.strip() for part in text.split(",") if part.strip()]
    unknown = sorted(set(chosen) - set(RATIOS))
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"choose from {', '.join(RATIOS)} (got {text!r})")
    return chosen


def table(results: dict[str, dict[str, Any]]) -> str:
    lines = [
        "| ratio | numerator /s | denominator /s | ratio | goal | verdict | notes |",
        "|---|---:|---:|---:|---|---|---|",
    ]
    for name, row in results.items():
        target = TARGETS[name]
        if "error" in row:
            lines.append(f"| {target.what} | | | | ≥ {GOAL} | not measured | {row['error']} |")
            continue
        verdict = target.check(row["ratio"] if row["valid"] else 0.0)
        met = "met" if verdict.met else "NOT met"
        lines.append(
            f"| {target.what} | {row['numerator']} | {row['denominator']} | {row['ratio']}"
            f" | ≥ {GOAL} | {met}{'' if row['valid'] else ' (run not valid)'} | {row['note']} |"
        )
    return "\n".join(lines)


def one_round(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Each ratio of ``args.only`` measured once: (a)-(c) on one fresh ``serve``."""
    results: dict[str, dict[str, Any]] = {}
    on_server = [name for name in args.only if name != "outbound"]
    if on_server:
        mllp_port = free_port()
        os.environ["MLLP_PORT"] = str(mllp_port)  # the server inherits it (no 2575 clash)
        with Server(pg=args.pg, workers=args.server_workers) as server:
            for name in on_server:
                log(f"--- {name}")
                try:
                    if name == "booking":
                        results[name] = measure_booking(server, args)
                    elif name == "search":
                        results[name] = measure_search(server, args)
                    else:
                        results[name] = measure_inbound(server, mllp_port, args)
                except Exception as error:  # noqa: BLE001 - report it, measure the rest
                    log(f"{name} failed: {error!r}")
                    results[name] = {"error": repr(error)[:200]}
    if "outbound" in args.only:
        log("--- outbound")
        try:
            results["outbound"] = measure_outbound(args)
        except Exception as error:  # noqa: BLE001 - report it
            log(f"outbound failed: {error!r}")
            results["outbound"] = {"error": repr(error)[:200]}
    return results


def median_row(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The run of median ratio among ``rows`` (the lower one of an even count: never the
    kinder), noting every run's ratio; valid only when every run measured and was valid."""
    measured = [row for row in rows if "error" not in row]
    if len(rows) == 1 or not measured:
        return rows[0]
    ordered = sorted(measured, key=lambda row: float(row["ratio"]))
    median = dict(ordered[(len(ordered) - 1) // 2])
    runs = ", ".join(str(row["ratio"]) if "error" not in row else "failed" for row in rows)
    median["note"] = f"median of {len(rows)} runs ({runs}); " + median["note"]
    median["valid"] = len(measured) == len(rows) and all(row["valid"] for row in measured)
    return median


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--only",
        type=parse_only,
        default=list(RATIOS),
        help=f"comma list of ratios to run (default all: {','.join(RATIOS)})",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="shorter runs: 2+5 s levels, 600 inbound and 1,000 outbound messages",
    )
    parser.add_argument("--pg", choices=["embedded", "machine"], default="embedded")
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=0.0,
        help="before each measurement wait up to this many seconds for a quiet machine"
        " (default 0: do not wait)",
    )
    parser.add_argument(
        "--server-workers",
        type=int,
        default=None,
        help="serve --workers N for (a)-(c) (default: serve's own default)",
    )
    parser.add_argument(
        "--pause-outbound",
        action="store_true",
        help="an experiment, not the ratio: stop serve's outbound child (SIGSTOP) for the"
        " booking level and resume it after, to see what the API path alone reaches",
    )
    parser.add_argument("--inbound-timeout", type=float, default=300.0)
    parser.add_argument(
        "--confirmation-timeout",
        type=float,
        default=300.0,
        help="after the bookings, wait at most this long for their confirmation e-mails",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        choices=range(1, 10),
        metavar="N",
        help="measure everything N times (a fresh server each time) and report each ratio's"
        " median run, with every run's ratio in its notes (default 1)",
    )
    parser.add_argument(
        "--json", type=Path, default=None, help="default benchmarks/results/ratios-<time>.json"
    )
    args = parser.parse_args(argv)
    started = datetime.now(UTC)
    facts: dict[str, Any] = {
        "date": started.isoformat(timespec="seconds"),
        "commit": git_state(),
        "nproc": os.cpu_count(),
        "uptime_before": uptime(),
        "pg": args.pg,
        "quick": args.quick,
        "server_workers": args.server_workers,
        "pause_outbound": args.pause_outbound,
        "repeat": args.repeat,
        # serve's outbound child's priority (the server inherits this environment)
        "outbound_nice": os.environ.get("OUTBOUND_NICE", "default (10)"),
        "argv": sys.argv,
    }
    rounds = []
    for number in range(1, args.repeat + 1):
        if args.repeat > 1:
            log(f"=== round {number} of {args.repeat}")
        rounds.append(one_round(args))
    facts["uptime_after"] = uptime()
    ordered = {name: median_row([r[name] for r in rounds]) for name in RATIOS if name in rounds[0]}
    print(f"\n## Issue 12 ratios ({facts['date']}, {facts['commit']}, nproc {facts['nproc']})\n")
    print(f"load before: {facts['uptime_before']}\nload after:  {facts['uptime_after']}\n")
    print(table(ordered))
    path = args.json or ROOT / "benchmarks" / "results" / f"ratios-{started:%Y%m%dT%H%M%S}.json"
    record = {"benchmark": "ratios", **facts, "ratios": ordered}
    if args.repeat > 1:
        record["rounds"] = rounds
    write_json(path, record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
