"""Slot search benchmark: GET /v1/slots for one location and 14 days, N concurrent clients.

Target (from the issue): p95 under 30 ms at 50 concurrent clients on the demo data.

Each client is a thread with its own keep-alive HTTP connection. It loops: pick a query
(exam type, location, a 14-day range starting at local midnight 1..N days ahead), send
it, wait for the whole response body, optionally think, repeat. Requests started during
the warm-up are not recorded. Latency is measured client-side (request sent to last byte
received), so it includes queueing in the server and in this client.

    python benchmarks/slot_search.py                       # 50 clients, mixed queries
    python benchmarks/slot_search.py --concurrency 1,10,50 --scenario ct-head@riverside
    python benchmarks/slot_search.py --pg machine --db-pool-size 4
"""

from __future__ import annotations

import argparse
import random
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (
    CpuMeter,
    Phase,
    Recorder,
    Server,
    add_server_arguments,
    cpu_text,
    http_client,
    log,
    machine_info,
    markdown_table,
    parse_levels,
    run_clients,
    server_from_args,
    wait_for_quiet,
    write_json,
)
from _targets import Target, Verdict, add_check_argument, exit_code

TARGET_P95_MS = 30.0
TARGET_CLIENTS = 50
TARGET = Target("slot search p95", "<", TARGET_P95_MS, "ms", f"at {TARGET_CLIENTS} clients")
RANGE_DAYS = 14
BASELINE = "healthz"  # --scenario healthz: GET /healthz, the stack's floor
RATIO = Target(
    "slot searches/s ÷ GET /healthz requests/s", ">=", 0.5, "", "same server, same clients"
)

# exam type code @ location code; CT at the 24-hour centre returns the most slots.
MIX = (
    "ct-head@riverside",
    "ct-abdomen-pelvis@lakeshore",
    "mri-brain@riverside",
    "mri-knee@lakeshore",
    "mammo-screening@prairie-mobile",
    "xr-chest@lakeshore",
    "us-abdomen@riverside",
)


@dataclass(frozen=True)
class Query:
    label: str
    type_id: str
    location_id: str
    timezone: ZoneInfo
    path: str = "/v1/slots"

    def params(self, days_ahead: int) -> dict[str, str]:
        if self.path != "/v1/slots":
            return {}
        today = datetime.now(self.timezone).date()
        first = today + timedelta(days=days_ahead)
        start = datetime(first.year, first.month, first.day, tzinfo=self.timezone)
        end_day = first + timedelta(days=RANGE_DAYS)
        end = datetime(end_day.year, end_day.month, end_day.day, tzinfo=self.timezone)
        return {
            "appointment_type_id": self.type_id,
            "location_id": self.location_id,
            "start": start.isoformat(),
            "end": end.isoformat(),
        }


def load_queries(base_url: str, labels: list[str]) -> list[Query]:
    with httpx.Client(base_url=base_url, timeout=30) as client:
        types = {t["code"]: t for t in client.get("/v1/catalog/appointment-types").json()}
        locations = {loc["code"]: loc for loc in client.get("/v1/catalog/locations").json()}
    queries = []
    for label in labels:
        if label == BASELINE:
            queries.append(Query(label, "", "", ZoneInfo("UTC"), path="/healthz"))
            continue
        type_code, _, location_code = label.partition("@")
        if type_code not in types or location_code not in locations:
            raise SystemExit(f"unknown exam type or location in {label!r}")
        location = locations[location_code]
        queries.append(
            Query(label, types[type_code]["id"], location["id"], ZoneInfo(location["timezone"]))
        )
    return queries


def describe_queries(base_url: str, queries: list[Query]) -> dict[str, Any]:
    """Slots and response size of each query for the first range (a sanity check)."""
    found = {}
    with httpx.Client(base_url=base_url, timeout=30) as client:
        for query in queries:
            deadline = time.monotonic() + 15
            while True:
                response = client.get(query.path, params=query.params(1))
                response.raise_for_status()
                body = response.json()
                # An empty answer right after start-up means the read models lag.
                if body or query.path != "/v1/slots" or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            found[query.label] = {
                "slots": len(body) if isinstance(body, list) else 0,
                "kib": round(len(response.content) / 1024, 1),
            }
            log(
                f"  {query.label}: {found[query.label]['slots']} slots, "
                f"{found[query.label]['kib']} KiB"
            )
    return found


def run_level(
    base_url: str,
    queries: list[Query],
    clients: int,
    args: argparse.Namespace,
    server: Server,
) -> dict[str, Any]:
    recorder = Recorder()
    phase = Phase(args.warmup, args.duration)
    done = [0]

    def worker(index: int, phase: Phase, stop: threading.Event) -> None:
        rng = random.Random(args.seed * 1000 + index)
        with http_client(base_url) as client:
            while not stop.is_set():
                query = rng.choice(queries)
                params = query.params(1 + rng.randrange(args.spread_days))
                started = time.monotonic()
                if started >= phase.t_end:
                    return
                try:
                    response = client.get(query.path, params=params)
                    outcome = str(response.status_code)
                    if response.status_code == 200 and not response.content.startswith(
                        b"[" if query.path == "/v1/slots" else b"{"
                    ):
                        outcome = "200-bad-body"
                except httpx.HTTPError as error:
                    outcome = type(error).__name__
                elapsed = time.monotonic() - started
                if started >= phase.t_measure:
                    recorder.add(query.label, elapsed, outcome)
                    done[0] += 1
                if args.think > 0:
                    stop.wait(rng.uniform(0, 2 * args.think))

    idle = wait_for_quiet(args.quiet_wait, server) if args.quiet_wait > 0 else None
    log(f"level: {clients} clients, warm-up {args.warmup:.0f} s, measure {args.duration:.0f} s")
    with CpuMeter(server) as cpu:
        run_clients(clients, phase, worker, progress=lambda: f"{done[0]} measured requests")
    rows = recorder.summary(args.duration, ok=lambda outcome: outcome == "200")
    return {
        "clients": clients,
        "think_s": args.think,
        "machine_busy_before": idle,
        "cpu": cpu.result,
        "rows": rows,
    }


def verdicts(levels: list[dict[str, Any]], labels: list[str]) -> list[Verdict]:
    """The target held against the level run at the target's concurrency (GET /healthz
    alone is not a slot search: nothing to compare)."""
    measured = [
        level["rows"]["ALL"]["p95_ms"]
        for level in levels
        if level["clients"] == TARGET_CLIENTS and labels != [BASELINE]
    ]
    return [TARGET.check(p95) for p95 in measured] or [TARGET.check(None)]


def ratio_verdicts(levels: list[dict[str, Any]]) -> list[Verdict]:
    """With --ratio each concurrency ran GET /healthz, then the searches: the ratio of
    their throughputs (the searches counted only when every answer was a 200)."""
    checked = []
    for floor, level in zip(levels[::2], levels[1::2], strict=True):
        rows = level["rows"]["ALL"]
        all_ok = rows["ok"] == rows["count"]
        ratio = rows["ok_per_s"] / floor["rows"]["ALL"]["ok_per_s"]
        log(f"{level['clients']} clients: ratio {ratio:.2f}")
        checked.append(RATIO.check(ratio if all_ok else 0.0))
    return checked


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--concurrency",
        type=parse_levels,
        default=[TARGET_CLIENTS],
        help=f"concurrent clients; a comma list runs several levels (default {TARGET_CLIENTS})",
    )
    parser.add_argument("--duration", type=float, default=20.0, help="measured seconds per level")
    parser.add_argument("--warmup", type=float, default=5.0, help="warm-up seconds per level")
    parser.add_argument(
        "--think",
        type=float,
        default=0.0,
        help="mean think time between a client's requests, seconds (uniform 0..2x); "
        "0 = closed loop, each client sends its next request at once (default)",
    )
    parser.add_argument(
        "--scenario",
        action="append",
        default=None,
        help="exam-type-code@location-code, or 'healthz' for the no-op GET /healthz as a "
        f"baseline; repeat for a mix (default: a mix of {len(MIX)}: {', '.join(MIX)})",
    )
    parser.add_argument(
        "--spread-days", type=int, default=14, help="ranges start 1..N days ahead (default 14)"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--ratio",
        action="store_true",
        help="at each concurrency, run GET /healthz first on the same server, and hold the"
        " searches' throughput against it (target >= 0.5) instead of the p95 target",
    )
    add_server_arguments(parser)
    add_check_argument(parser)
    args = parser.parse_args(argv)
    labels = args.scenario or list(MIX)

    with server_from_args(args) as server:
        info = machine_info(server)
        log(f"machine: {info}")
        queries = load_queries(server.base_url, labels)
        sizes = describe_queries(server.base_url, queries)
        levels = []
        for n in args.concurrency:
            if args.ratio:
                floor = load_queries(server.base_url, [BASELINE])
                levels.append(run_level(server.base_url, floor, n, args, server))
            levels.append(run_level(server.base_url, queries, n, args, server))
    problems = server.problems

    print(f"\n## Slot search: {', '.join(labels)}\n")
    print(
        f"think time {args.think} s, {args.duration:.0f} s measured per level, "
        f"{info['postgres']} ({info['postgres_where']})\n"
    )
    for level in levels:
        rate = level["rows"]["ALL"]["throughput_per_s"]
        print(f"### {level['clients']} concurrent clients  ({cpu_text(level['cpu'], rate)})\n")
        print(markdown_table(level["rows"], "query"))
    checked = ratio_verdicts(levels) if args.ratio else verdicts(levels, labels)
    for verdict in checked:
        print(f"{verdict.line()}\n")
    if problems:
        print(f"server log: {len(problems)} warning/error lines, first: {problems[:3]}\n")
    if server.stop_note:
        print(f"server stop: {server.stop_note}\n")
    write_json(
        args.json,
        {
            "benchmark": "slot_search",
            "argv": sys.argv,
            "machine": info,
            "sizes": sizes,
            "levels": levels,
            "server_log_problems": problems[:20],
            "server_stop": server.stop_note,
            "targets": [verdict.line() for verdict in checked],
        },
    )
    return exit_code(checked, args.no_check)


if __name__ == "__main__":
    sys.exit(main())
