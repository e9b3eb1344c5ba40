"""Notice burst benchmark: 1,000 due reminders handed to the local providers.

Queues ``--messages`` due reminders directly as ``MessageDelivery`` aggregates (half
e-mail, half SMS, as the notice policy queues them: recipient the patient, ordering key
the cause, the latest template version) for ``--patients`` registered patients with an
e-mail address and a phone, then starts ``--workers`` notice workers (each an outbound
part as ``serve`` runs it: its pump and a dramatiq worker on the PostgreSQL broker with
``--threads`` sending threads) that render each reminder, send it to a real SMTP server
on loopback (aiosmtpd) or through the official Twilio client to the local Messages API
(``tests/providers``), and record each attempt. Measured: from the workers' start until
the deliveries read model shows every reminder acknowledged. Target (communication
engine): all 1,000 within 60 s with two workers.

The workers run in this process (the read model's projection too), so they share one
interpreter: pessimistic against worker processes. Every patient has consented to SMS
(the worker's preferences lookup says so) and there are no quiet hours.

    python benchmarks/notices_burst.py                      # 1000 reminders, 2 workers
    python benchmarks/notices_burst.py --pg machine --messages 2000
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from pydantic import SecretStr  # noqa: E402
from tests.providers.fake_twilio import FakeTwilio  # noqa: E402
from tests.providers.smtp_server import SmtpServer  # noqa: E402

from adapters.clock import SystemClock  # noqa: E402
from adapters.database import (  # noqa: E402
    drop_database,
    ensure_database,
    start_embedded,
    with_dbname,
)
from adapters.log_setup import configure_logging  # noqa: E402
from adapters.passwords import Argon2PasswordHasher  # noqa: E402
from adapters.settings import Settings  # noqa: E402
from application.base import Position  # noqa: E402
from application.notices.envelope import NoticeEnvelope  # noqa: E402
from application.notices.kinds import Reminder, Visit  # noqa: E402
from application.notices.renderer import NoticeTemplates  # noqa: E402
from domain.contact_preferences import Consent, ContactPreferences  # noqa: E402
from domain.context import system_actor  # noqa: E402
from domain.ris.message_delivery import MessageDelivery  # noqa: E402
from imaging_bridge.bootstrap import Runtime, build  # noqa: E402
from imaging_bridge.outbound import Outbound  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import MACHINE_PG  # noqa: E402
from _targets import Target, Verdict, add_check_argument, exit_code  # noqa: E402

TARGET_WORKERS = 2
TARGET_MESSAGES = 1000
TARGET = Target("1,000 due reminders acknowledged by the providers", "<", 60, "s", "with 2 workers")
EVERY_ONE = Target("reminders not acknowledged before the timeout", "<=", 0, "")
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def consenting(patient: Any) -> ContactPreferences:
    """Every benchmark patient allows e-mail and SMS."""
    return ContactPreferences(
        consents=(Consent("email", True, EPOCH, "portal"), Consent("sms", True, EPOCH, "portal"))
    )


def register(runtime: Runtime, count: int) -> list[UUID]:
    actor = system_actor(source="benchmark")
    return [
        runtime.services.registry.register_patient(
            email=f"bench{n}@example.org",
            password="benchmark password long enough",
            given_name="Bench",
            family_name=f"Patient{n}",
            birth_date=date(1980, 2, 29),
            phone=f"+1555{n:07d}",
            actor=actor,
        ).patient_id
        for n in range(count)
    ]


def queue(runtime: Runtime, patients: list[UUID], messages: int) -> None:
    deliveries = runtime.services.deliveries.deliveries
    templates = NoticeTemplates()
    now = datetime.now(UTC)
    meta = system_actor(source="benchmark").meta()
    batch = []
    for n in range(messages):
        channel = "email" if n % 2 == 0 else "sms"
        patient = patients[n % len(patients)]
        notice = Reminder(
            Visit(
                appointment_id=str(uuid4()),
                start=now + timedelta(days=1, minutes=15 * n),
                zone="America/Chicago",
                location_name="Riverside",
                location_address="1 River Road, Springfield",
                exam_name="CT head",
                preparation="Nothing to eat for 4 hours before.",
            )
        )
        envelope = NoticeEnvelope(
            patient_id=patient,
            notice=notice,
            language="es" if n % 3 == 0 else "en",
            version=templates.versions("reminder", channel, "en")[-1],
        )
        cause = f"bench-reminder:{n}"
        batch.append(
            MessageDelivery.queue(
                channel=channel,
                recipient=str(patient),
                message_type="reminder",
                cause=cause,
                cause_at=now + timedelta(microseconds=n),
                ordering_key=cause,
                payload=envelope.to_payload(),
                meta=meta,
                due_at=now - timedelta(minutes=1),
            )
        )
        if len(batch) == 200:
            deliveries.save(*batch)
            batch = []
    if batch:
        deliveries.save(*batch)


def acknowledged(runtime: Runtime) -> dict[str, int]:
    with runtime.pool.connection() as conn:
        rows = conn.execute(
            "SELECT status, count(*) FROM rm_deliveries WHERE channel IN ('email', 'sms')"
            " GROUP BY status"
        ).fetchall()
    return {status: int(count) for status, count in rows}


def verdicts(result: dict[str, Any]) -> list[Verdict]:
    missing = result["messages"] - result["acknowledged"]
    seconds = (
        result["seconds_to_all_acknowledged"]
        if result["workers"] == TARGET_WORKERS
        and result["messages"] == TARGET_MESSAGES
        and missing == 0
        else None
    )
    return [EVERY_ONE.check(missing), TARGET.check(seconds)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=TARGET_MESSAGES)
    parser.add_argument("--patients", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2, help="notice workers")
    parser.add_argument("--threads", type=int, default=4, help="sending threads per worker")
    parser.add_argument("--pg", choices=["embedded", "machine"], default="embedded")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--json", type=Path, default=None, help="also write the result here")
    add_check_argument(parser)
    args = parser.parse_args()
    configure_logging("WARNING", json=False)  # one line per message would drown the result

    data_dir = Path(tempfile.mkdtemp(prefix="ib-bench-notices-"))
    if args.pg == "machine":
        server = MACHINE_PG
    else:
        server = start_embedded(data_dir / "pg", delete_at_exit=True)
    url = with_dbname(server, f"ib_bench_{uuid4().hex[:10]}")
    ensure_database(url)
    smtp = SmtpServer().__enter__()
    twilio = FakeTwilio().__enter__()
    settings = Settings(
        environment="test",
        data_dir=data_dir,
        database_url=url,
        db_pool_size=5,
        smtp_url=SecretStr(f"smtp://127.0.0.1:{smtp.port}"),
        twilio_account_sid=twilio.account_sid,
        twilio_auth_token=SecretStr(twilio.auth_token),
        twilio_from="+15550100",
        twilio_base_url=twilio.base_url,
        default_quiet_hours="",
        log_level="WARNING",
    )
    cheap = Argon2PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    runtime = build(settings, url=url, hasher=cheap)
    outbounds: list[Outbound] = []
    checked: list[Verdict] = []
    try:
        log(f"registering {args.patients} patients, queueing {args.messages} reminders")
        patients = register(runtime, args.patients)
        queue(runtime, patients, args.messages)
        deliveries = runtime.services.deliveries.deliveries
        head = deliveries.recorder.max_notification_id() or 0
        assert runtime.projections.wait(Position(deliveries.name, head), timeout=120)
        log(f"starting {args.workers} workers x {args.threads} threads")
        started = time.monotonic()
        for _ in range(args.workers):
            outbound = Outbound(
                runtime.env,
                runtime.url,
                SystemClock(),
                settings,
                policy=False,
                pump=True,
                workers=args.threads,
                deliveries=deliveries,
                patients=runtime.services.registry.patient_by_id,
                preferences=consenting,
            )
            outbounds.append(outbound.start())
        deadline = started + args.timeout
        counts: dict[str, int] = {}
        while counts.get("acknowledged", 0) < args.messages and time.monotonic() < deadline:
            time.sleep(0.2)
            counts = acknowledged(runtime)
        elapsed = time.monotonic() - started
        done = counts.get("acknowledged", 0)
        result = {
            "messages": args.messages,
            "acknowledged": done,
            "statuses": counts,
            "emails_received": len(smtp.received),
            "sms_received": len(twilio.messages),
            "workers": args.workers,
            "threads_per_worker": args.threads,
            "patients": args.patients,
            "seconds_to_all_acknowledged": round(elapsed, 2),
            "rate_per_s": round(done / elapsed, 1),
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
        for outbound in outbounds:
            outbound.stop()
        runtime.close()
        twilio.__exit__(None, None, None)
        smtp.__exit__(None, None, None)
        drop_database(url)
        shutil.rmtree(data_dir, ignore_errors=True)
    return exit_code(checked, args.no_check)


if __name__ == "__main__":
    sys.exit(main())
