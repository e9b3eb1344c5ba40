"""What authentication and authorisation add to a request.

Measures, in one process against a real PostgreSQL database:
1. ``AuthService.principal(token)``: the EdDSA signature check plus the session lookup
   that every authenticated request does;
2. the same API call (``GET /v1/patients/me``-sized work is avoided: ``GET /v1/auth/…``
   would change state) compared end to end: ``GET /healthz`` (public, no auth) against
   ``GET /v1/appointments`` for a patient with no appointments, over real HTTP on loopback.

Run: ``python benchmarks/auth_overhead.py [--pg machine|embedded] [--calls 3000]``.
Loopback only, bounded in time.
"""

import argparse
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import date
from pathlib import Path

import httpx
import uvicorn

from _harness import percentile
from _targets import Target, Verdict, add_check_argument, exit_code
from adapters.database import drop_database, ensure_database, start_embedded, with_dbname
from adapters.passwords import Argon2PasswordHasher
from adapters.settings import Settings
from api.app import create_app
from domain.context import system_actor
from imaging_bridge.bootstrap import build

MACHINE_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
TARGET = Target("auth check (AuthService.principal) p95", "<", 2, "ms")


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)

    def at(p: float) -> float:
        return percentile(ordered, p * 100)

    return (
        f"p50 {at(0.50):.3f} ms  p95 {at(0.95):.3f} ms  p99 {at(0.99):.3f} ms"
        f"  mean {statistics.fmean(ordered):.3f} ms  (n={len(ordered)})"
    )


def verdicts(principal_ms: list[float]) -> list[Verdict]:
    """Auth checks add under 2 ms p95 to a request."""
    return [TARGET.check(round(percentile(sorted(principal_ms), 95), 3))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg", choices=["machine", "embedded"], default="machine")
    parser.add_argument("--calls", type=int, default=3000)
    add_check_argument(parser)
    args = parser.parse_args()

    server_url = (
        MACHINE_PG
        if args.pg == "machine"
        else start_embedded(Path(tempfile.mkdtemp(prefix="ib-bench-")), delete_at_exit=True)
    )
    url = with_dbname(server_url, f"ib_bench_{uuid.uuid4().hex[:8]}")
    ensure_database(url)
    data_dir = Path(tempfile.mkdtemp(prefix="ib-bench-data-"))
    runtime = build(
        Settings(environment="test", data_dir=data_dir, log_level="WARNING"),
        url=url,
        hasher=Argon2PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1),
    )
    try:
        runtime.services.registry.register_patient(
            email="bench@example.org",
            password="bench password long",
            given_name="Bench",
            family_name="Mark",
            birth_date=date(1980, 1, 1),
            phone=None,
            actor=system_actor(),
        )
        pair = runtime.services.auth.sign_in(
            "bench@example.org", "bench password long", system_actor()
        )
        auth = runtime.services.auth
        for _ in range(200):
            auth.principal(pair.access_token)
        samples = []
        for _ in range(args.calls):
            started = time.perf_counter()
            auth.principal(pair.access_token)
            samples.append((time.perf_counter() - started) * 1000)
        print(f"AuthService.principal (verify + session lookup): {percentiles(samples)}")
        checked = verdicts(samples)

        config = uvicorn.Config(
            create_app(runtime.services),
            host="127.0.0.1",
            port=0,
            log_level="warning",
            access_log=False,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        headers = {"Authorization": f"Bearer {pair.access_token}"}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            for path, extra in (("/healthz", {}), ("/v1/appointments", headers)):
                for _ in range(100):
                    client.get(path, headers=extra)
                timings = []
                for _ in range(args.calls // 3):
                    started = time.perf_counter()
                    response = client.get(path, headers=extra)
                    timings.append((time.perf_counter() - started) * 1000)
                    assert response.status_code == 200, response.text
                print(f"GET {path:<18} {percentiles(timings)}")
        server.should_exit = True
        thread.join(timeout=10)
    finally:
        runtime.close()
        drop_database(url)
    print(f"machine: {sys.platform}, python {sys.version.split()[0]}", file=sys.stderr)
    for verdict in checked:
        print(verdict.line())
    return exit_code(checked, args.no_check)


if __name__ == "__main__":
    sys.exit(main())
