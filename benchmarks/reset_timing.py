"""Does a password-reset request take as long for an unknown address as for a real one?

Serves the API in this process (production argon2id cost, real PostgreSQL, uvicorn on a
free loopback port) with one patient registered, then asks for reset links over HTTP,
alternating the patient's address and addresses without an account, and compares the
median answer times. Exits 1 if they differ by more than ``--tolerance`` (default 20 %),
0 otherwise. The application clock is moved on five minutes before each request, so that
the per-address reset budget (5 per 5 minutes) never answers instead of the route.

Run: ``python benchmarks/reset_timing.py [--pg machine|embedded] [--requests 40]``.
Loopback only, bounded in time (about requests x 0.4 s).
"""

import argparse
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import uvicorn

from adapters.database import drop_database, ensure_database, start_embedded, with_dbname
from adapters.settings import Settings
from api.app import create_app
from application.ports import Clock
from domain.context import system_actor
from imaging_bridge.bootstrap import build

MACHINE_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
KNOWN = "reset-bench@example.org"


class SteppedClock(Clock):
    """The wall clock plus an offset the benchmark moves on."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


def serve(app: object) -> tuple[uvicorn.Server, threading.Thread, str]:
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", access_log=False)  # type: ignore[arg-type]
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the server did not start within 30 s")
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, thread, f"http://127.0.0.1:{port}"


def measure(base_url: str, clock: SteppedClock, requests: int) -> dict[str, list[float]]:
    """Milliseconds per answer, by path; the two paths alternate."""
    timings: dict[str, list[float]] = {"known": [], "unknown": []}
    with httpx.Client(base_url=base_url, timeout=30) as client:
        for index in range(requests * 2):
            path = "known" if index % 2 == 0 else "unknown"
            address = KNOWN if path == "known" else f"nobody-{uuid.uuid4().hex[:8]}@example.org"
            clock.offset += timedelta(minutes=5, seconds=1)
            started = time.perf_counter()
            response = client.post("/v1/auth/password-reset", json={"email": address})
            elapsed = (time.perf_counter() - started) * 1000
            if response.status_code != 202:
                raise RuntimeError(f"{path}: {response.status_code} {response.text[:200]}")
            if index >= 4:  # the first two of each warm up connections and caches
                timings[path].append(elapsed)
    return timings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg", choices=["machine", "embedded"], default="machine")
    parser.add_argument("--requests", type=int, default=40, help="per path (default 40)")
    parser.add_argument("--tolerance", type=float, default=0.20, help="default 0.20 (20 %%)")
    args = parser.parse_args()

    server_url = (
        MACHINE_PG
        if args.pg == "machine"
        else start_embedded(Path(tempfile.mkdtemp(prefix="ib-bench-")), delete_at_exit=True)
    )
    url = with_dbname(server_url, f"ib_bench_{uuid.uuid4().hex[:8]}")
    ensure_database(url)
    clock = SteppedClock()
    data_dir = Path(tempfile.mkdtemp(prefix="ib-bench-data-"))
    # The default hasher: argon2id at production cost, as the red team measured it.
    runtime = build(
        Settings(environment="test", data_dir=data_dir, log_level="WARNING"), url=url, clock=clock
    )
    try:
        runtime.services.registry.register_patient(
            email=KNOWN,
            password="bench password long",
            given_name="Bench",
            family_name="Mark",
            birth_date=date(1980, 1, 1),
            phone=None,
            actor=system_actor(),
        )
        server, thread, base_url = serve(create_app(runtime.services))
        try:
            timings = measure(base_url, clock, args.requests)
        finally:
            server.should_exit = True
            thread.join(timeout=10)
    finally:
        runtime.close()
        drop_database(url)

    medians = {path: statistics.median(samples) for path, samples in timings.items()}
    for path, samples in timings.items():
        ordered = sorted(samples)
        print(
            f"{path:<8} median {medians[path]:7.1f} ms  min {ordered[0]:7.1f} ms"
            f"  max {ordered[-1]:7.1f} ms  (n={len(ordered)})"
        )
    difference = abs(medians["known"] - medians["unknown"]) / min(medians.values())
    verdict = "PASS" if difference <= args.tolerance else "FAIL"
    print(f"medians differ by {difference:.1%} (tolerance {args.tolerance:.0%}): {verdict}")
    print(f"machine: {sys.platform}, python {sys.version.split()[0]}", file=sys.stderr)
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
