"""What a patient's orders and results cost to read, beside their appointments.

One process, a fresh database (the machine's PostgreSQL by default), one patient with a
few orders from the RIS (some booked, one with a preliminary and one with a final result)
and a few appointments; one client over real HTTP on loopback sends, in turn,
``GET /v1/me/orders``, ``GET /v1/me/results`` and ``GET /v1/appointments``, so the three
share the same moments of machine load. Target: the two new reads' p95 within 2x of
``GET /v1/appointments``' p95.

Run: ``python benchmarks/orders_results.py [--pg machine|embedded] [--rounds 1000]``.
Loopback only, bounded in time.
"""

import argparse
import os
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from _harness import (
    BENCH_EMAIL,
    BENCH_PASSWORD,
    _machine_busy,
    in_process_runtime,
    percentile,
    served_in_thread,
)
from _targets import Target, Verdict, add_check_argument, exit_code
from adapters.passwords import Argon2PasswordHasher
from api.app import create_app
from application.base import Position
from application.ris.orders import Orders
from domain.appointment_type import AppointmentType
from domain.context import Actor, system_actor
from domain.location import Location
from domain.ris.order import OrderIntent, ResultReference

ROUTES = ("/v1/me/orders", "/v1/me/results", "/v1/appointments")
BASELINE = "/v1/appointments"
TARGETS = {
    "/v1/me/orders": Target("GET /v1/me/orders p95 / GET /v1/appointments p95", "<=", 2, "x"),
    "/v1/me/results": Target("GET /v1/me/results p95 / GET /v1/appointments p95", "<=", 2, "x"),
}
# (procedure code, exam it is booked as, or None: left waiting; result status or None)
ORDERS = (
    ("70551", "mri-brain", "final"),
    ("70450", "ct-head", "preliminary"),
    ("71046", "xr-chest", None),
    ("76700", None, None),
)


def seed(runtime: Any, patient_id: Any) -> None:
    """The patient's orders, their bookings and results, and two more appointments."""
    orders = Orders(runtime.services.scheduling)
    inbound = system_actor(source="hl7-inbound")
    actor = Actor(id="bench", role="patient", source="bench")
    scheduling = runtime.services.scheduling
    now = runtime.services.clock.now()
    riverside = Location.create_id("riverside")
    for n, (code, exam, result) in enumerate(ORDERS, 1):
        orders.receive_order(
            intent=OrderIntent.NEW,
            patient_id=patient_id,
            placer=f"PLC:B{n}",
            filler=f"RIS:B{n}",
            accession_number=f"BACC{n}",
            procedure_code=code,
            procedure_text=f"procedure {code}",
            reason="",
            message_id=f"bench-orm-{n}",
            actor=inbound,
        )
        order = orders.find_order(f"PLC:B{n}", f"RIS:B{n}")
        assert order is not None
        if exam is not None:
            start = next_slot(runtime, exam, now + timedelta(days=n))
            scheduling.book(
                patient_id=patient_id,
                appointment_type_id=AppointmentType.create_id(exam),
                location_id=riverside,
                start=start,
                actor=actor,
                order_id=order.id,
            )
        if result is not None:
            orders.reference_result(
                ResultReference(f"BACC{n}", "", "", result, now, ""),
                placer=f"PLC:B{n}",
                filler=f"RIS:B{n}",
                patient_identifier="",
                message_id=f"bench-oru-{n}",
                actor=inbound,
            )
    for days in (6, 7):
        scheduling.book(
            patient_id=patient_id,
            appointment_type_id=AppointmentType.create_id("ct-head"),
            location_id=riverside,
            start=next_slot(runtime, "ct-head", now + timedelta(days=days)),
            actor=actor,
        )
    head = scheduling.recorder.max_notification_id()
    assert runtime.services.sync.wait(Position("scheduling", head), timeout=30)


def next_slot(runtime: Any, exam: str, after: Any) -> Any:
    found = runtime.services.slots.find(
        appointment_type_id=AppointmentType.create_id(exam),
        location_id=Location.create_id("riverside"),
        start=after,
        end=after + timedelta(days=7),
    )
    return found[0].start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg", choices=["machine", "embedded"], default="machine")
    parser.add_argument("--rounds", type=int, default=1000, help="requests per route")
    add_check_argument(parser)
    args = parser.parse_args()

    hasher = Argon2PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    with in_process_runtime(args.pg, hasher=hasher) as runtime:
        change = runtime.services.catalog.apply(demo_specs(), system_actor(source="bench"))
        assert runtime.services.sync.wait(change.position, timeout=30)
        pair = runtime.services.auth.sign_in(BENCH_EMAIL, BENCH_PASSWORD, system_actor())
        patient = runtime.services.auth.principal(pair.access_token).patient_id
        seed(runtime, patient)
        headers = {"Authorization": f"Bearer {pair.access_token}"}
        timings: dict[str, list[float]] = {route: [] for route in ROUTES}
        load_before = Path("/proc/loadavg").read_text().split()[:3]
        busy0, total0 = _machine_busy()
        with (
            served_in_thread(create_app(runtime.services)) as base_url,
            httpx.Client(base_url=base_url) as client,
        ):
            for route in ROUTES:  # warm up
                for _ in range(50):
                    assert client.get(route, headers=headers).status_code == 200
            counts = {route: len(items(client.get(route, headers=headers))) for route in ROUTES}
            for _ in range(args.rounds):
                for route in ROUTES:
                    started = time.perf_counter()
                    response = client.get(route, headers=headers)
                    timings[route].append((time.perf_counter() - started) * 1000)
                    assert response.status_code == 200, response.text
        busy1, total1 = _machine_busy()
        load_after = Path("/proc/loadavg").read_text().split()[:3]

    cores = (busy1 - busy0) / max(total1 - total0, 1) * _cpus()
    p95 = {route: percentile(sorted(values), 95) for route, values in timings.items()}
    for route in ROUTES:
        ordered = sorted(timings[route])
        print(
            f"GET {route:<16} ({counts[route]} items)  p50 {percentile(ordered, 50):.3f} ms"
            f"  p95 {p95[route]:.3f} ms  p99 {percentile(ordered, 99):.3f} ms  (n={len(ordered)})"
        )
    print(
        f"machine: load average {' '.join(load_before)} before, {' '.join(load_after)} after;"
        f" {cores:.2f} of {_cpus()} cores busy during the run"
    )
    checked = verdicts(p95)
    for verdict in checked:
        print(verdict.line())
    return exit_code(checked, args.no_check)


def verdicts(p95: dict[str, float]) -> list[Verdict]:
    """Each new read's p95 as a multiple of ``GET /v1/appointments``' p95, at most 2."""
    return [target.check(round(p95[route] / p95[BASELINE], 2)) for route, target in TARGETS.items()]


def items(response: httpx.Response) -> list[Any]:
    body = response.json()
    return body["items"] if isinstance(body, dict) else body


def _cpus() -> int:
    return os.cpu_count() or 1


def demo_specs() -> Any:
    from application.catalog_file import parse_catalog
    from imaging_bridge.catalog_loader import decode, demo_catalog_text

    return parse_catalog(decode(demo_catalog_text()))


if __name__ == "__main__":
    sys.exit(main())
