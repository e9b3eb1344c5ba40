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
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx

from _harness import in_process_runtime, served_in_thread
from api.app import create_app
from application.ports import Clock

KNOWN = "reset-bench@example.org"


class SteppedClock(Clock):
    """The wall clock plus an offset the benchmark moves on."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


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

    clock = SteppedClock()
    # The default hasher: argon2id at production cost, as the red team measured it.
    with (
        in_process_runtime(args.pg, email=KNOWN, clock=clock) as runtime,
        served_in_thread(create_app(runtime.services)) as base_url,
    ):
        timings = measure(base_url, clock, args.requests)

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
