"""Booking benchmark: POST /v1/appointments from N concurrent patients booking different slots.

Target (from the issue): p95 under 60 ms with 20 concurrent clients.

Setup (not measured): register one patient per client, sign each in, and collect free
slots from GET /v1/slots for exam types whose (location, modality) has a single resource
and one exam type each, so that distinct slots never overlap. The slots are split
between the clients (see --partition); each client then books its own slots one after
the other as fast as it can, with its own keep-alive connection. Requests started during
the warm-up are not recorded. 201s, 409s and anything else are counted separately.

While a level runs, a monitor samples pg_locks every --lock-sample-ms on the
scheduling application's events table: how often its EXCLUSIVE table lock (taken by the
eventsourcing library for every insert) is held, and how many transactions queue for it.
From the time it is held and the number of saves, the mean time one save holds the lock,
and so the ceiling that lock puts on saves per second, follow.

    python benchmarks/booking.py                          # 20 then 40 clients
    python benchmarks/booking.py --concurrency 20 --partition interleaved
    python benchmarks/booking.py --pg machine --db-pool-size 4
"""

from __future__ import annotations

import argparse
import random
import secrets
import sys
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
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

TARGET_P95_MS = 60.0
TARGET_CLIENTS = 20
TARGET = Target("booking p95", "<", TARGET_P95_MS, "ms", f"at {TARGET_CLIENTS} clients")
EVENTS_TABLE = "scheduling_events"
SIGN_IN_PATIENCE = 150.0  # seconds to wait out the sign-in rate limit, at most

# One exam type per (location, modality), each with a single resource there, so two
# different slots of this list never compete for the same time on the same scanner.
PAIRS = (
    "ct-head@riverside",
    "ct-abdomen-pelvis@lakeshore",
    "xr-chest@riverside",
    "xr-chest@lakeshore",
    "us-abdomen@lakeshore",
    "mri-knee@lakeshore",
    "mammo-screening@prairie-mobile",
    "mammo-screening@riverside",
)


@dataclass(frozen=True)
class Slot:
    label: str
    type_id: str
    location_id: str
    resource_id: str
    start: str  # ISO-8601 with offset, as the API returned it

    @property
    def calendar(self) -> tuple[str, str]:
        """The resource-day aggregate this booking writes to."""
        return self.resource_id, self.start[:10]


# --- setup ------------------------------------------------------------------------------


def register_patients(base_url: str, count: int, run_id: str) -> list[str]:
    """Register ``count`` patients and sign each in; their access tokens."""
    password = secrets.token_urlsafe(18)

    def one(index: int) -> str:
        email = f"bench-{run_id}-{index}@example.org"
        with httpx.Client(base_url=base_url, timeout=60) as client:
            deadline = time.monotonic() + SIGN_IN_PATIENCE
            while True:
                created = client.post(
                    "/v1/patients/register",
                    json={
                        "email": email,
                        "password": password,
                        "given_name": "Bench",
                        "family_name": f"Patient{index}",
                        "birth_date": "1980-01-01",
                    },
                )
                if created.status_code != 429 or time.monotonic() > deadline:
                    break
                # Registration has a budget per client address too (30 a minute).
                time.sleep(float(created.headers.get("Retry-After", "2")))
            if created.status_code != 201:
                raise RuntimeError(f"register: {created.status_code} {created.text[:200]}")
            deadline = time.monotonic() + SIGN_IN_PATIENCE
            while True:
                token = client.post(
                    "/v1/auth/token", data={"username": email, "password": password}
                )
                if token.status_code != 429 or time.monotonic() > deadline:
                    break
                # The sign-in rate limit counts per client address; all of ours are
                # 127.0.0.1, so wait for the next window as a real client would.
                time.sleep(float(token.headers.get("Retry-After", "2")))
            if token.status_code != 200:
                raise RuntimeError(f"sign in: {token.status_code} {token.text[:200]}")
            return str(token.json()["access_token"])

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=4) as pool:
        tokens = list(pool.map(one, range(count)))
    log(f"registered and signed in {count} patients in {time.monotonic() - started:.1f} s")
    return tokens


def collect_slots(base_url: str, horizon_days: int) -> list[Slot]:
    """Free slots from tomorrow (local time) to ``horizon_days`` ahead, for every pair."""
    started = time.monotonic()
    found: list[Slot] = []
    with httpx.Client(base_url=base_url, timeout=60) as client:
        types = {t["code"]: t for t in client.get("/v1/catalog/appointment-types").json()}
        locations = {loc["code"]: loc for loc in client.get("/v1/catalog/locations").json()}
        for label in PAIRS:
            type_code, _, location_code = label.partition("@")
            exam, location = types[type_code], locations[location_code]
            tz = ZoneInfo(location["timezone"])
            first = datetime.now(tz).date() + timedelta(days=1)
            for offset in range(0, horizon_days, 31):
                day = first + timedelta(days=offset)
                last = first + timedelta(days=min(offset + 31, horizon_days))
                response = client.get(
                    "/v1/slots",
                    params={
                        "appointment_type_id": exam["id"],
                        "location_id": location["id"],
                        "start": datetime(day.year, day.month, day.day, tzinfo=tz).isoformat(),
                        "end": datetime(last.year, last.month, last.day, tzinfo=tz).isoformat(),
                    },
                )
                response.raise_for_status()
                found.extend(
                    Slot(label, exam["id"], location["id"], s["resource_id"], s["start"])
                    for s in response.json()
                )
    log(
        f"collected {len(found)} free slots over {horizon_days} days "
        f"in {time.monotonic() - started:.1f} s"
    )
    return found


def partition(slots: list[Slot], clients: int, how: str, rng: random.Random) -> list[list[Slot]]:
    """Deal ``slots`` to ``clients``.

    shuffled     random order, dealt round-robin: clients meet on a calendar by chance
    by-calendar  whole resource-days per client: no two clients ever write one calendar
    interleaved  in time order, dealt round-robin: all clients write the same calendar at
                 once (worst case for the per-resource-per-day optimistic concurrency)
    """
    shares: list[list[Slot]] = [[] for _ in range(clients)]
    if how == "by-calendar":
        calendars: dict[tuple[str, str], list[Slot]] = defaultdict(list)
        for slot in slots:
            calendars[slot.calendar].append(slot)
        groups = list(calendars.values())
        rng.shuffle(groups)
        for group in groups:
            min(shares, key=len).extend(group)
        for share in shares:
            rng.shuffle(share)
        return shares
    ordered = sorted(slots, key=lambda s: s.start) if how == "interleaved" else list(slots)
    if how == "shuffled":
        rng.shuffle(ordered)
    for index, slot in enumerate(ordered):
        shares[index % clients].append(slot)
    return shares


# --- the table-lock monitor ---------------------------------------------------------------


class LockMonitor:
    """Samples, during a phase's measured window, who holds and who waits for the
    EXCLUSIVE lock on one events table, and counts the events committed meanwhile."""

    LOCKS = (
        "SELECT count(*) FILTER (WHERE l.granted), count(*) FILTER (WHERE NOT l.granted)"
        " FROM pg_locks l JOIN pg_class c ON c.oid = l.relation"
        " WHERE c.relname = %s AND l.mode = 'ExclusiveLock'"
    )

    def __init__(self, url: str | None, table: str, interval: float, phase: Phase) -> None:
        self.url = url
        self.table = table
        self.interval = interval
        self.phase = phase
        self.samples: list[tuple[int, int]] = []
        self.error = "" if url else "no database URL to monitor"
        self.wall = 0.0
        self.committed = 0
        self.ids_used = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._guarded, daemon=True)

    def __enter__(self) -> LockMonitor:
        if self.url and self.interval > 0:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _guarded(self) -> None:
        try:
            self._run()
        except Exception as error:  # noqa: BLE001 - monitoring must not break the benchmark
            self.error = f"lock monitor failed: {str(error).strip()}"
            log(self.error)

    def _run(self) -> None:
        import psycopg
        from psycopg import sql

        head = sql.SQL("SELECT coalesce(max(notification_id), 0) FROM {}").format(
            sql.Identifier(self.table)
        )
        since = sql.SQL("SELECT count(*) FROM {} WHERE notification_id > %s").format(
            sql.Identifier(self.table)
        )
        with psycopg.connect(str(self.url), autocommit=True, connect_timeout=5) as conn:
            while not self.phase.t_start or time.monotonic() < self.phase.t_measure:
                if self._stop.wait(0.01):
                    return
            first = int(conn.execute(head).fetchone()[0])  # type: ignore[index]
            t0 = time.monotonic()
            while time.monotonic() < self.phase.t_end and not self._stop.is_set():
                row = conn.execute(self.LOCKS, (self.table,)).fetchone()
                assert row is not None
                self.samples.append((int(row[0]), int(row[1])))
                self._stop.wait(self.interval)
            self.wall = time.monotonic() - t0
            last = int(conn.execute(head).fetchone()[0])  # type: ignore[index]
            self.committed = int(conn.execute(since, (first,)).fetchone()[0])  # type: ignore[index]
            self.ids_used = last - first

    def result(self, saves: int) -> dict[str, Any]:
        """``saves``: transactions that inserted into the table during the window."""
        if not self.samples:
            return {"error": self.error or "no samples"}
        n = len(self.samples)
        held = sum(1 for h, _ in self.samples if h) / n
        waiting = [w for _, w in self.samples]
        out: dict[str, Any] = {
            "table": self.table,
            "samples": n,
            "lock_held_fraction": round(held, 3),
            "mean_waiting": round(sum(waiting) / n, 2),
            "max_waiting": max(waiting),
            "fraction_with_waiters": round(sum(1 for w in waiting if w) / n, 3),
            "events_committed": self.committed,
            "event_ids_rolled_back": self.ids_used - self.committed,
            "saves": saves,
        }
        if saves:
            hold = held * self.wall / saves
            out["events_per_save"] = round(self.committed / saves, 2)
            out["mean_hold_ms"] = round(hold * 1000, 2)
            out["ceiling_saves_per_s"] = round(1 / hold) if hold else None
        return out


# --- one level ----------------------------------------------------------------------------


def outcome_of(response: httpx.Response) -> str:
    if response.status_code == 201:
        return "201"
    try:
        code = response.json().get("code", "")
    except ValueError:
        code = ""
    return f"{response.status_code} {code}".strip()


def run_level(
    server: Server,
    tokens: list[str],
    shares: list[list[Slot]],
    args: argparse.Namespace,
) -> dict[str, Any]:
    clients = len(shares)
    recorder = Recorder()
    phase = Phase(args.warmup, args.duration)
    exhausted = [0]
    booked = [0]
    attempts_in_window = [0]

    def worker(index: int, phase: Phase, stop: threading.Event) -> None:
        headers = {"Authorization": f"Bearer {tokens[index]}"}
        rng = random.Random(args.seed * 1000 + index)
        with http_client(server.base_url) as client:
            for slot in shares[index]:
                started = time.monotonic()
                if stop.is_set() or started >= phase.t_end:
                    return
                try:
                    response = client.post(
                        "/v1/appointments",
                        json={
                            "appointment_type_id": slot.type_id,
                            "location_id": slot.location_id,
                            "start": slot.start,
                        },
                        headers=headers,
                    )
                    outcome = outcome_of(response)
                except httpx.HTTPError as error:
                    outcome = type(error).__name__
                elapsed = time.monotonic() - started
                if started >= phase.t_measure:
                    recorder.add(slot.label, elapsed, outcome)
                    attempts_in_window[0] += 1
                    if outcome == "201":
                        booked[0] += 1
                if args.think > 0:
                    stop.wait(rng.uniform(0, 2 * args.think))
            exhausted[0] += 1

    idle = wait_for_quiet(args.quiet_wait, server) if args.quiet_wait > 0 else None
    log(
        f"level: {clients} clients, {sum(map(len, shares))} slots "
        f"({min(map(len, shares))}+ each, partition {args.partition}), "
        f"warm-up {args.warmup:.0f} s, measure {args.duration:.0f} s"
    )
    monitor = LockMonitor(server.monitor_url(), EVENTS_TABLE, args.lock_sample_ms / 1000, phase)
    with CpuMeter(server) as cpu, monitor:
        run_clients(clients, phase, worker, progress=lambda: f"{booked[0]} booked")
    if exhausted[0]:
        log(f"WARNING: {exhausted[0]} clients ran out of slots before the end")
    rows = recorder.summary(args.duration, ok=lambda outcome: outcome == "201")
    # Saves in the sampled window: every successful booking is one save (one transaction).
    lock = monitor.result(saves=booked[0])
    return {
        "clients": clients,
        "partition": args.partition,
        "think_s": args.think,
        "machine_busy_before": idle,
        "cpu": cpu.result,
        "rows": rows,
        "bookings_per_s": rows["ALL"]["ok_per_s"],
        "clients_out_of_slots": exhausted[0],
        "lock": lock,
    }


def verdicts(levels: list[dict[str, Any]]) -> list[Verdict]:
    """The target held against the level run at the target's concurrency."""
    measured = [
        level["rows"]["ALL"]["p95_ms"] for level in levels if level["clients"] == TARGET_CLIENTS
    ]
    return [TARGET.check(p95) for p95 in measured] or [TARGET.check(None)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--concurrency",
        type=parse_levels,
        default=[TARGET_CLIENTS, 40],
        help="concurrent clients (patients); a comma list runs several levels "
        f"(default {TARGET_CLIENTS},40)",
    )
    parser.add_argument("--duration", type=float, default=15.0, help="measured seconds per level")
    parser.add_argument("--warmup", type=float, default=3.0, help="warm-up seconds per level")
    parser.add_argument(
        "--think",
        type=float,
        default=0.0,
        help="mean think time between a client's bookings, seconds (uniform 0..2x); "
        "0 = closed loop, the next booking is sent at once (default)",
    )
    parser.add_argument(
        "--partition",
        choices=["shuffled", "by-calendar", "interleaved"],
        default="shuffled",
        help="how slots are dealt to clients (default shuffled; see the module doc)",
    )
    parser.add_argument(
        "--horizon-days", type=int, default=62, help="collect slots this far ahead (default 62)"
    )
    parser.add_argument(
        "--lock-sample-ms",
        type=float,
        default=20.0,
        help="pg_locks sampling interval; 0 turns the lock monitor off (default 20)",
    )
    parser.add_argument("--seed", type=int, default=1)
    add_server_arguments(parser)
    add_check_argument(parser)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)

    with server_from_args(args) as server:
        info = machine_info(server)
        log(f"machine: {info}")
        tokens = register_patients(server.base_url, max(args.concurrency), secrets.token_hex(4))
        pool = collect_slots(server.base_url, args.horizon_days)
        rng.shuffle(pool)
        levels = []
        for number, clients in enumerate(args.concurrency):
            # Each level gets its own, untouched share of the slots.
            left = len(args.concurrency) - number
            take = len(pool) // left
            mine, pool = pool[:take], pool[take:]
            shares = partition(mine, clients, args.partition, rng)
            levels.append(run_level(server, tokens, shares, args))

    print(
        f"\n## Booking: POST /v1/appointments, partition {args.partition}, "
        f"think time {args.think} s\n"
    )
    print(
        f"{args.duration:.0f} s measured per level, {info['postgres']} ({info['postgres_where']})\n"
    )
    for level in levels:
        rate = level["rows"]["ALL"]["throughput_per_s"]
        print(f"### {level['clients']} concurrent clients  ({cpu_text(level['cpu'], rate)})\n")
        print(markdown_table(level["rows"], "exam@location"))
        print(f"bookings/s: {level['bookings_per_s']}   table lock: {level['lock']}\n")
    checked = verdicts(levels)
    for verdict in checked:
        print(f"{verdict.line()}\n")
    if server.problems:
        print(
            f"server log: {len(server.problems)} warning/error lines, "
            f"first: {server.problems[:3]}\n"
        )
    if server.stop_note:
        print(f"server stop: {server.stop_note}\n")
    write_json(
        args.json,
        {
            "benchmark": "booking",
            "argv": sys.argv,
            "machine": info,
            "levels": levels,
            "server_log_problems": server.problems[:20],
            "server_stop": server.stop_note,
            "targets": [verdict.line() for verdict in checked],
        },
    )
    return exit_code(checked, args.no_check)


if __name__ == "__main__":
    sys.exit(main())
