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
import time

import httpx

from _harness import BENCH_EMAIL, BENCH_PASSWORD, in_process_runtime, percentile, served_in_thread
from _targets import Target, Verdict, add_check_argument, exit_code
from adapters.passwords import Argon2PasswordHasher
from api.app import create_app
from domain.context import system_actor

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

    with in_process_runtime(
        args.pg, hasher=Argon2PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    ) as runtime:
        pair = runtime.services.auth.sign_in(BENCH_EMAIL, BENCH_PASSWORD, system_actor())
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

        headers = {"Authorization": f"Bearer {pair.access_token}"}
        with (
            served_in_thread(create_app(runtime.services)) as base_url,
            httpx.Client(base_url=base_url) as client,
        ):
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
    print(f"machine: {sys.platform}, python {sys.version.split()[0]}", file=sys.stderr)
    for verdict in checked:
        print(verdict.line())
    return exit_code(checked, args.no_check)


if __name__ == "__main__":
    sys.exit(main())
