"""Read-model rebuild benchmark: how fast a read model catches up with a long log.

Imports ``--appointments`` bookings straight into the scheduling log (as
``reminders_schedule.py`` does: a bulk import, no read model running), then rebuilds
``--read-model`` (``Projections.rebuild``: empty it, apply the whole log) and reports
events/s. The same script runs on any commit that has ``Projections.rebuild``: it
compares one transaction per event (the library's runner) with batches
(``projections.log_follower``).

Runs on a fresh database ``ib_bench_<random>`` on the machine's PostgreSQL, or with
``--pg embedded`` on an embedded server in a temporary folder (Unix socket).

    python benchmarks/projection_rebuild.py                       # 20,000 bookings
    python benchmarks/projection_rebuild.py --read-model availability
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from uuid import uuid4

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from adapters.database import (  # noqa: E402
    drop_database,
    ensure_database,
    start_embedded,
    with_dbname,
)
from adapters.settings import Settings  # noqa: E402
from application.catalog_file import parse_catalog  # noqa: E402
from domain.context import system_actor  # noqa: E402
from imaging_bridge.bootstrap import TOOL, build  # noqa: E402
from imaging_bridge.catalog_loader import decode, demo_catalog_text  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import MACHINE_PG, log  # noqa: E402
from reminders_schedule import import_appointments, register_patients  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--appointments", type=int, default=20_000)
    parser.add_argument("--patients", type=int, default=500)
    parser.add_argument("--read-model", default="appointment_history")
    parser.add_argument("--pg", choices=["embedded", "machine"], default="machine")
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="ib-bench-rebuild-"))
    server = (
        MACHINE_PG if args.pg == "machine" else start_embedded(data_dir / "pg", delete_at_exit=True)
    )
    url = with_dbname(server, f"ib_bench_{uuid4().hex[:10]}")
    ensure_database(url)
    settings = Settings(environment="test", data_dir=data_dir, database_url=url, db_pool_size=5)
    runtime = build(settings, TOOL, url=url)
    try:
        services = runtime.services
        services.catalog.apply(
            parse_catalog(decode(demo_catalog_text())), system_actor(source="benchmark")
        )
        patients = register_patients(services.registry, args.patients)
        log(f"importing {args.appointments} appointments")
        import_appointments(services.scheduling, patients, args.appointments)
        log(f"rebuilding {args.read_model}")
        started, cpu_started = time.monotonic(), time.process_time()
        events = runtime.projections.rebuild(args.read_model)
        elapsed, cpu = time.monotonic() - started, time.process_time() - cpu_started
        result = {
            "read_model": args.read_model,
            "pg": args.pg,
            "events": events,
            "seconds": round(elapsed, 2),
            "events_per_s": round(events / elapsed),
            "process_cpu_seconds": round(cpu, 2),
            "cpus": os.cpu_count(),
            "load_average": [round(x, 2) for x in os.getloadavg()],
        }
        print(json.dumps(result, indent=2))
    finally:
        runtime.close()
        drop_database(url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
