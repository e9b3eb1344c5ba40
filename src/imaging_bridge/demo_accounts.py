"""Demo accounts for ``serve --demo``: one per role, credentials printed at start-up.

Passwords and TOTP secrets are generated on first seeding and kept in
``DATA_DIR/demo-credentials.json`` (mode 0600), so every later start prints the same
ones. Development data only: never seed these where real patients are.
"""

import json
import secrets
from datetime import date
from pathlib import Path
from typing import Any

from application.services import Services
from domain.context import system_actor

ROLES = ("scheduler", "billing", "compliance", "admin", "integration")
PATIENT_EMAIL = "demo.patient@example.org"


def seed_demo_accounts(services: Services, data_dir: Path) -> list[dict[str, Any]]:
    """Create whatever demo account is missing; the credentials of all of them."""
    path = data_dir / "demo-credentials.json"
    known: dict[str, dict[str, Any]] = json.loads(path.read_text()) if path.exists() else {}
    actor = system_actor(source="demo")
    if services.registry.account_by_email(PATIENT_EMAIL) is None:
        password = secrets.token_urlsafe(12)
        services.registry.register_patient(
            email=PATIENT_EMAIL,
            password=password,
            given_name="Demo",
            family_name="Patient",
            birth_date=date(1985, 6, 15),
            phone="+1 555 0100 000",
            actor=actor,
        )
        known["patient"] = {"role": "patient", "email": PATIENT_EMAIL, "password": password}
    for role in ROLES:
        email = f"demo.{role}@example.org"
        if services.registry.account_by_email(email) is not None:
            continue
        password = secrets.token_urlsafe(12)
        account_id = services.registry.open_staff_account(
            email=email, password=password, role=role, centres=[], actor=actor
        )
        enrolment = services.auth.enrol_account(account_id, actor)
        services.registry.enable_totp(account_id, [], actor)
        known[role] = {
            "role": role,
            "email": email,
            "password": password,
            "totp_secret": enrolment.secret,
            "totp_uri": enrolment.provisioning_uri,
        }
    data_dir.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(json.dumps(known, indent=2))
    return list(known.values())


def describe(credentials: list[dict[str, Any]]) -> str:
    lines = ["demo accounts (development only):"]
    for entry in credentials:
        line = f"  {entry['role']:<12} {entry['email']:<34} password {entry['password']}"
        if entry.get("totp_secret"):
            line += f"  TOTP secret {entry['totp_secret']}"
        lines.append(line)
    return "\n".join(lines)
