"""Reminder scheduling benchmark: a day's bulk import of appointments, caught up by the
communication policy.

Registers ``--patients`` patients (with an e-mail address, so each notice has one
channel) and saves ``--appointments`` ``Appointment.Booked`` events directly into the
scheduling log in batches (a bulk import: the calendars are not involved), spread over
the next 2-14 days at the demo catalog's Riverside CT. Then starts the communication
policy (one ``EventSourcedProjectionRunner`` on the scheduling log, as ``serve`` runs it)
and measures the time until it has processed every booking, i.e. until every
confirmation and reminder delivery exists (counted afterwards in the deliveries store).
Target (issue 11): 10,000 appointments in under 30 s.

Runs on a fresh database ``ib_bench_<random>`` on the machine's PostgreSQL
(127.0.0.1:5432) with ``--pg machine``, else on an embedded server in a temporary folder.

    python benchmarks/reminders_schedule.py                  # 10,000 appointments
    python benchmarks/reminders_schedule.py --appointments 2000 --pg machine
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from eventsourcing.projection import EventSourcedProjectionRunner  # noqa: E402

from adapters.clock import SystemClock  # noqa: E402
from adapters.database import (  # noqa: E402
    drop_database,
    ensure_database,
    start_embedded,
    with_dbname,
)
from adapters.settings import Settings  # noqa: E402
from application.catalog_file import parse_catalog  # noqa: E402
from application.scheduling import SchedulingLog  # noqa: E402
from domain.appointment import Appointment  # noqa: E402
from domain.appointment_type import AppointmentType  # noqa: E402
from domain.context import system_actor  # noqa: E402
from domain.location import Location  # noqa: E402
from domain.patient import Patient  # noqa: E402
from domain.resource import Resource  # noqa: E402
from domain.schedule import Interval  # noqa: E402
from imaging_bridge.bootstrap import TOOL, build  # noqa: E402
from imaging_bridge.catalog_loader import decode, demo_catalog_text  # noqa: E402
from imaging_bridge.outbound import communication_policy_of  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import MACHINE_PG  # noqa: E402
from _targets import Target, Verdict, add_check_argument, exit_code  # noqa: E402

TARGET_APPOINTMENTS = 10_000
TARGET = Target("reminders scheduled for 10,000 appointments", "<", 30, "s", "(policy catching up)")
EVERY_ONE = Target("bookings the policy had not processed before the timeout", "<=", 0, "")
BATCH = 500


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def register_patients(registry: Any, count: int) -> list[Any]:
    meta = system_actor(source="benchmark").meta()
    today = datetime.now(UTC).date()
    patients = [
        Patient.register(
            id=uuid4(),
            given_name="Bench",
            family_name=f"Patient{n}",
            birth_date=date(1980, 2, 29),
            email=f"bench-{n}@example.org",
            phone=None,
            today=today,
            meta=meta,
        )
        for n in range(count)
    ]
    for i in range(0, count, BATCH):
        registry.save(*patients[i : i + BATCH])
    return [patient.id for patient in patients]


def import_appointments(scheduling: Any, patients: list[Any], count: int) -> datetime:
    """``count`` bookings of 15 minutes, back to back from 2 days ahead; the last start."""
    meta = system_actor(source="benchmark-import").meta()
    now = datetime.now(UTC)
    first = (now + timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    exam = AppointmentType.create_id("ct-head")
    location = Location.create_id("riverside")
    resource = Resource.create_id("riverside-ct-1")
    batch, start = [], first
    for n in range(count):
        start = first + timedelta(minutes=15 * (n % 1152)) + timedelta(seconds=n // 1152)
        span = Interval(start, start + timedelta(minutes=15))
        batch.append(
            Appointment.book(
                id=uuid4(),
                patient_id=patients[n % len(patients)],
                appointment_type_id=exam,
                location_id=location,
                resource_id=resource,
                span=span,
                timezone="America/New_York",
                windows=[span],
                now=now,
                meta=meta,
            )
        )
        if len(batch) == BATCH:
            scheduling.save(*batch)
            batch = []
    if batch:
        scheduling.save(*batch)
    return start


def delivery_counts(runtime: Any) -> dict[str, int]:
    """Deliveries by kind, from the store's events (the read model is not running)."""
    deliveries = runtime.services.deliveries.deliveries
    counts: dict[str, int] = {}
    with runtime.pool.connection() as conn:
        ids = [
            row[0]
            for row in conn.execute(
                "SELECT originator_id FROM deliveries_events WHERE originator_version = 1"
            ).fetchall()
        ]
    for delivery_id in ids:
        kind = deliveries.repository.get(delivery_id).message_type
        counts[kind] = counts.get(kind, 0) + 1
    return counts


def verdicts(result: dict[str, Any]) -> list[Verdict]:
    seconds = (
        result["seconds_to_catch_up"]
        if result["appointments"] == TARGET_APPOINTMENTS and result["unprocessed"] == 0
        else None
    )
    return [EVERY_ONE.check(result["unprocessed"]), TARGET.check(seconds)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--appointments", type=int, default=TARGET_APPOINTMENTS)
    parser.add_argument("--patients", type=int, default=2000)
    parser.add_argument("--pg", choices=["embedded", "machine"], default="embedded")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--json", type=Path, default=None, help="also write the result here")
    add_check_argument(parser)
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="ib-bench-reminders-"))
    server = (
        MACHINE_PG if args.pg == "machine" else start_embedded(data_dir / "pg", delete_at_exit=True)
    )
    url = with_dbname(server, f"ib_bench_{uuid4().hex[:10]}")
    ensure_database(url)
    settings = Settings(environment="test", data_dir=data_dir, database_url=url, db_pool_size=5)
    runtime = build(settings, TOOL, url=url)
    checked: list[Verdict] = []
    try:
        services = runtime.services
        services.catalog.apply(
            parse_catalog(decode(demo_catalog_text())), system_actor(source="benchmark")
        )
        log(f"registering {args.patients} patients")
        patients = register_patients(services.registry, args.patients)
        log(f"importing {args.appointments} appointments")
        last = import_appointments(services.scheduling, patients, args.appointments)
        head = services.scheduling.recorder.max_notification_id() or 0
        policy = communication_policy_of(settings, SystemClock())
        log(f"starting the communication policy (scheduling log head {head})")
        started = time.monotonic()
        cpu_started = time.process_time()
        runner: Any = EventSourcedProjectionRunner(
            application_class=SchedulingLog, projection_class=policy, env=runtime.env
        )
        with runner:
            deadline = started + args.timeout
            done = 0
            while done < head and time.monotonic() < deadline:
                with contextlib.suppress(TimeoutError):
                    runner.wait(head, timeout=1.0)
                done = runner.projection.recorder.max_tracking_id(SchedulingLog.name) or 0
            elapsed = time.monotonic() - started
            cpu = time.process_time() - cpu_started
        processed = done
        log("counting the deliveries")
        counts = delivery_counts(runtime)
        result = {
            "appointments": args.appointments,
            "patients": args.patients,
            "last_exam_start": last.isoformat(),
            "scheduling_events": head,
            "unprocessed": head - processed,
            "seconds_to_catch_up": round(elapsed, 2),
            "appointments_per_s": round(args.appointments / elapsed, 1),
            # The policy runs in this process: the CPU it used (PostgreSQL's not included).
            "policy_cpu_seconds": round(cpu, 2),
            "deliveries": counts,
            "reminder_offsets": settings.reminder_offsets,
            "quiet_hours": settings.default_quiet_hours,
            "cpus": os.cpu_count(),
            "load_average": [round(x, 2) for x in os.getloadavg()],
            "pg": args.pg,
        }
        checked = verdicts(result)
        result["targets"] = [verdict.line() for verdict in checked]
        print(json.dumps(result, indent=2))
        for verdict in checked:
            print(verdict.line())
        if args.json:
            args.json.write_text(json.dumps(result, indent=2))
    finally:
        runtime.close()
        drop_database(url)
        shutil.rmtree(data_dir, ignore_errors=True)
    return exit_code(checked, args.no_check)


if __name__ == "__main__":
    sys.exit(main())
