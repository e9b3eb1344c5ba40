"""Logs never hold secrets or patient data.

A real server (``imaging-bridge serve --demo`` at DEBUG level) goes through what a patient
does: register, sign in, book, list, reschedule, cancel, refresh, two-factor enrolment and
a sign-in with a recovery code, a failed sign-in, a password reset. Everything the process
writes (its stdout and stderr: our structlog lines, uvicorn's, the libraries') is then
searched for each secret and each piece of personal data it was given or handed out."""

import email
import email.policy
import json
import mailbox
import re
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyotp
import pytest

from tests.integration.mllp_peer import wait_until
from tests.integration.test_transport import ServedProcess, base_env
from tests.support import reset_link_token_in

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

PATIENT = {
    "email": "zebulon.quartermaine@example.org",
    "password": "violet lantern orchard 1961",
    "given_name": "Zebulon",
    "family_name": "Quartermaine",
    "birth_date": "1961-07-23",
    "phone": "+1 555 014 2367",
}
NEW_PASSWORD = "a brand new passphrase for zeb"
RESCHEDULE_REASON = "my knee surgery moved"
CANCEL_REASON = "admitted to hospital"
CANARY = "logscan-canary-7f3a"


def sign_in(client, password=PATIENT["password"]):
    return client.post("/v1/auth/token", data={"username": PATIENT["email"], "password": password})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "X-Request-ID": CANARY}


def a_patients_day(client, data_dir: Path) -> list[str]:
    """What one patient does in a day; every secret the server handed out on the way."""
    handed_out: list[str] = []
    registered = client.post("/v1/patients/register", json=PATIENT)
    assert registered.status_code == 201, registered.text
    again = client.post("/v1/patients/register", json=PATIENT)
    assert again.status_code == 409

    tokens = sign_in(client).json()
    handed_out += [tokens["access_token"], tokens["refresh_token"]]
    headers = bearer(tokens["access_token"])
    me = client.get("/v1/patients/me", headers=headers)
    assert me.json()["family_name"] == PATIENT["family_name"]

    types = {t["code"]: t["id"] for t in client.get("/v1/catalog/appointment-types").json()}
    now = datetime.now(UTC)
    slots = client.get(
        "/v1/slots",
        params={
            "appointment_type_id": types["xr-chest"],
            "start": (now + timedelta(days=2)).isoformat(),
            "end": (now + timedelta(days=9)).isoformat(),
        },
    ).json()
    first, later = slots[0], slots[-1]
    booked = client.post(
        "/v1/appointments",
        headers={**headers, "Idempotency-Key": "logscan-booking"},
        json={
            "appointment_type_id": types["xr-chest"],
            "location_id": first["location_id"],
            "start": first["start"],
        },
    )
    assert booked.status_code == 201, booked.text
    appointment = booked.json()["id"]
    assert [a["id"] for a in client.get("/v1/appointments", headers=headers).json()] == [
        appointment
    ]
    moved = client.post(
        f"/v1/appointments/{appointment}/reschedule",
        headers=headers,
        json={
            "start": later["start"],
            "location_id": later["location_id"],
            "reason": RESCHEDULE_REASON,
        },
    )
    assert moved.status_code == 200, moved.text
    assert client.get(f"/v1/appointments/{appointment}", headers=headers).status_code == 200
    cancelled = client.post(
        f"/v1/appointments/{appointment}/cancel", headers=headers, json={"reason": CANCEL_REASON}
    )
    assert cancelled.status_code == 200, cancelled.text

    refreshed = client.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200
    handed_out += [refreshed.json()["access_token"], refreshed.json()["refresh_token"]]
    reused = client.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert reused.status_code == 401
    headers = bearer(sign_in(client).json()["access_token"])

    # Two-factor sign-in: the secret, a first code, recovery codes, a challenge.
    enrolment = client.post("/v1/auth/2fa/enrol", headers=headers).json()
    secret = enrolment["secret"]
    confirmed = client.post(
        "/v1/auth/2fa/confirm", headers=headers, json={"code": pyotp.TOTP(secret).now()}
    )
    assert confirmed.status_code == 200, confirmed.text
    recovery_codes = confirmed.json()["recovery_codes"]
    handed_out += [secret, *recovery_codes, confirmed.json()["tokens"]["access_token"]]
    challenged = sign_in(client)
    assert challenged.json()["code"] == "second_factor_required"
    challenge = challenged.json()["challenge"]
    second = client.post(
        "/v1/auth/token/second-factor",
        json={"challenge": challenge, "recovery_code": recovery_codes[0]},
    )
    assert second.status_code == 200, second.text
    handed_out += [challenge, second.json()["access_token"], second.json()["refresh_token"]]

    # Failures: a wrong password, an unknown address, a token that is not one.
    assert sign_in(client, "not my password at all").status_code == 401
    unknown = client.post(
        "/v1/auth/token", data={"username": "nobody@example.org", "password": "whatever123"}
    )
    assert unknown.status_code == 401
    forged = client.get("/v1/patients/me", headers=bearer(f"{tokens['access_token']}x"))
    assert forged.status_code == 401

    # Password reset by e-mailed link.
    assert (
        client.post("/v1/auth/password-reset", json={"email": PATIENT["email"]}).status_code == 202
    )

    # The server's e-mail worker sends it into its development Maildir (beside the
    # booking's confirmation).
    def reset_mail() -> list[email.message.EmailMessage]:
        found = [
            email.message_from_bytes(m.as_bytes(), policy=email.policy.default)
            for m in mailbox.Maildir(data_dir / "mail", create=True)
        ]
        return [m for m in found if m["Subject"] == "Reset your password"]  # type: ignore[misc]

    [text] = wait_until(reset_mail)
    reset_token = reset_link_token_in(text.get_body(("plain",)).get_content())  # type: ignore[union-attr]
    handed_out.append(reset_token)
    reset = client.post(
        "/v1/auth/password-reset/confirm",
        json={"token": reset_token, "new_password": NEW_PASSWORD},
    )
    assert reset.status_code == 204, reset.text
    return handed_out


def forms_of(value: str) -> set[str]:
    """A value and the ways a log line might spell it (JSON-escaped, url-encoded)."""
    return {value, json.dumps(value)[1:-1], value.replace(" ", "+"), value.replace(" ", "%20")}


def test_a_patients_day_leaves_no_secret_and_no_patient_data_in_the_logs(database_url, tmp_path):
    env = base_env(
        DATABASE_URL=database_url,
        DATA_DIR=str(tmp_path),
        ENVIRONMENT="development",
        LOG_LEVEL="DEBUG",
        LOG_JSON="true",
    )
    with ServedProcess(env, tmp_path, "--demo") as served, served.client() as client:
        handed_out = a_patients_day(client, tmp_path)
    assert served.process.returncode == 0
    # Demo accounts' credentials are printed at start-up on purpose; the rest is the log.
    logs = served.stderr + served.stdout.split("Imaging Bridge API on", 1)[-1]

    # The scan sees the request log: each request is there, by route, with its id.
    requests = [json.loads(line) for line in logs.splitlines() if '"event": "request"' in line]
    assert len(requests) >= 20
    assert any(
        r["request_id"] == CANARY and r["route"] == "/v1/appointments/{appointment_id}"
        for r in requests
    )

    birth = datetime.fromisoformat(PATIENT["birth_date"])
    personal = [
        PATIENT["email"],
        PATIENT["email"].split("@")[0],
        PATIENT["given_name"],
        PATIENT["family_name"],
        PATIENT["birth_date"],
        birth.strftime("%d/%m/%Y"),
        birth.strftime("%m/%d/%Y"),
        birth.strftime("%Y%m%d"),
        PATIENT["phone"],
        re.sub(r"\D", "", PATIENT["phone"]),
        RESCHEDULE_REASON,
        CANCEL_REASON,
        "nobody@example.org",
    ]
    secrets = [PATIENT["password"], NEW_PASSWORD, "not my password at all", *handed_out]
    for value in personal + secrets:
        for form in forms_of(value):
            assert form.lower() not in logs.lower(), f"the logs hold {value!r}"


def test_the_safety_net_masks_what_slips_through():
    """Should a statement ever log a secret, the processors mask it: by name for ours,
    by shape (e-mail, bearer, JWT) everywhere, tracebacks of library records included."""
    program = textwrap.dedent(
        """
        import logging
        import structlog
        from adapters.log_setup import configure_logging

        configure_logging("DEBUG", json=True)
        log = structlog.get_logger("probe")
        log.info("signed_in", password="hunter2-secret", refresh_token="rt-secret",
                 email="leak@example.org", given_name="Zebulon", account_id="a-1")
        log.info("note", detail="mail leak@example.org with Bearer abc.def-secret")
        logging.getLogger("library").info(
            "user leak@example.org sent eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl")
        try:
            raise ValueError("Key (email)=(leak@example.org) already exists")
        except ValueError:
            logging.getLogger("library").exception("insert failed")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", program],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    assert len(lines) == 4
    for secret in ("hunter2", "rt-secret", "leak@example.org", "Zebulon", "abc.def", "eyJ"):
        assert secret not in result.stderr
    assert lines[0]["account_id"] == "a-1"
    assert lines[0]["password"] == "[redacted]"
    assert lines[2]["logger"] == "library"
    assert "[email]" in lines[2]["event"]
    assert "[jwt]" in lines[2]["event"]
    assert "ValueError" in lines[3]["exception"]
