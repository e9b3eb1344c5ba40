"""The web stack's floor under ratio (a): the raw event store's save behind a bare FastAPI.

Ratio (a) divides bookings/s through the API by saves/s of the raw event store (one
Python process, 20 threads, no HTTP). This measures what the same save reaches once it
is behind the web stack ``serve`` uses (uvicorn with httptools and uvloop, FastAPI, a
sync route in the thread pool, JSON in and out, ``--workers`` processes) and nothing
else: no session, no middleware of ours, no catalog, no calendar, no read model, no
outbound work. Bookings cannot go faster than this; its ratio to the raw store is the
highest (a) this machine can show with this stack.

Same run, same PostgreSQL server: first the HTTP level (20 client threads posting back
to back for a warm-up and a measured window), then the raw store (``ratios.raw_saves``).

    python benchmarks/http_floor.py                       # machine PostgreSQL, 2 workers
    python benchmarks/http_floor.py --workers 1 --seconds 5
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (
    MACHINE_PG,
    Phase,
    Recorder,
    free_port,
    git_state,
    http_client,
    log,
    run_clients,
    write_json,
)

ROOT = Path(__file__).resolve().parents[1]
URL_ENV = "HTTP_FLOOR_DATABASE_URL"
KEY_ENV = "HTTP_FLOOR_CIPHER_KEY"
POOL_ENV = "HTTP_FLOOR_POOL"


def create() -> Any:
    """The app a uvicorn worker runs: ``POST /save`` saves two new aggregates, one event
    each, AES-GCM (``ratios.RawStore``, the raw store's own save)."""
    from fastapi import FastAPI

    from adapters.database import eventsourcing_env
    from ratios import STATE, Booked, RawStore, Reserved

    store = RawStore(
        {
            **eventsourcing_env(os.environ[URL_ENV], int(os.environ[POOL_ENV])),
            "CIPHER_TOPIC": "eventsourcing.cryptography:AESCipher",
            "CIPHER_KEY": os.environ[KEY_ENV],
        }
    )
    app = FastAPI()

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/save", status_code=201)
    def save(body: dict[str, str]) -> dict[str, str]:
        booked = Booked(body.get("state", STATE))
        store.save(booked, Reserved(STATE))
        return {"id": str(booked.id)}

    return app


def serve(url: str, key: str, port: int, workers: int, pool: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, URL_ENV: url, KEY_ENV: key, POOL_ENV: str(pool)}
    command = (
        "import uvicorn; uvicorn.run('http_floor:create', factory=True, host='127.0.0.1',"
        f" port={port}, workers={workers}, log_level='warning',"
        f" app_dir={str(Path(__file__).resolve().parent)!r})"
    )
    process = subprocess.Popen([sys.executable, "-c", command], env=env, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("the bare server did not answer in 60 s")


def http_level(port: int, threads: int, warmup: float, seconds: float) -> dict[str, Any]:
    """``threads`` clients posting back to back, each on one keep-alive connection as the
    booking clients are (``_harness.run_clients``); saves/s over the measured window."""
    from ratios import STATE

    recorder = Recorder()
    phase = Phase(warmup, seconds)

    def worker(index: int, phase: Phase, stop: threading.Event) -> None:
        with http_client(f"http://127.0.0.1:{port}") as client:
            while not stop.is_set() and (started := time.monotonic()) < phase.t_end:
                try:
                    outcome = str(client.post("/save", json={"state": STATE}).status_code)
                except httpx.HTTPError as error:
                    outcome = type(error).__name__
                if started >= phase.t_measure:
                    recorder.add("save", time.monotonic() - started, outcome)

    run_clients(threads, phase, worker)
    rows = recorder.summary(seconds, ok=lambda outcome: outcome == "201")["ALL"]
    return {
        "saved": rows["ok"],
        "failed": rows["count"] - rows["ok"],
        "saves_per_s": rows["ok_per_s"],
        "p95_ms": rows["p95_ms"],
    }


def measure(
    server_url: str, workers: int, threads: int, warmup: float, seconds: float
) -> dict[str, Any]:
    """The HTTP level on a scratch database of the PostgreSQL server at ``server_url``
    (dropped after)."""
    from eventsourcing.cryptography import AESCipher

    from adapters.database import drop_database, ensure_database, with_dbname

    url = with_dbname(server_url, f"ib_bench_floor_{secrets.token_hex(4)}")
    ensure_database(url)
    port = free_port()
    try:
        log(f"bare FastAPI, {workers} workers, {threads} clients")
        # Connections: each worker gets about its share of the clients (an embedded server
        # allows few, and ``serve`` holds its own meanwhile).
        pool = threads // workers + 2
        server = serve(url, AESCipher.create_key(32), port, workers, pool)
        try:
            return {"workers": workers, **http_level(port, threads, warmup, seconds)}
        finally:
            server.terminate()
            server.wait(timeout=30)
    finally:
        drop_database(url)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--threads", type=int, default=20, help="client threads (and raw)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds before measuring")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured window")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    from ratios import raw_saves, uptime

    started = datetime.now(UTC)
    before = uptime()
    http = measure(MACHINE_PG, args.workers, args.threads, args.warmup, args.seconds)
    log(f"raw event store: {args.threads} threads")
    raw = raw_saves(MACHINE_PG, args.threads, args.seconds)
    ratio = round(http["saves_per_s"] / raw["saves_per_s"], 2)
    print(
        f"\nsaves/s behind bare FastAPI: {http['saves_per_s']} ({http['failed']} failed);"
        f" raw store: {raw['saves_per_s']}; ratio {ratio}\nload before: {before}\n"
        f"load after:  {uptime()}"
    )
    path = args.json or ROOT / "benchmarks" / "results" / f"http-floor-{started:%Y%m%dT%H%M%S}.json"
    write_json(
        path,
        {
            "benchmark": "http_floor",
            "date": started.isoformat(timespec="seconds"),
            "commit": git_state(),
            "nproc": os.cpu_count(),
            "workers": args.workers,
            "http": http,
            "raw_store": raw,
            "ratio": ratio,
            "uptime_before": before,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
