"""``imaging-bridge staff create``: the first admin, with TOTP enrolment in the terminal."""

import os
import subprocess
import sys

import httpx
import pyotp
import pytest

pytestmark = pytest.mark.e2e


def test_staff_create_enrols_totp_and_prints_recovery_codes(database_url, tmp_path):
    env = {**os.environ, "DATABASE_URL": database_url, "DATA_DIR": str(tmp_path)}
    # stderr to a file: a pipe read only at the end could fill up and hang the command.
    errors = (tmp_path / "stderr.txt").open("w+", encoding="utf-8")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "imaging_bridge",
            "staff",
            "create",
            "--email",
            "first.admin@example.org",
            "--role",
            "admin",
            "--password-stdin",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=errors,
        text=True,
        env=env,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    process.stdin.write("an admin's long passphrase\n")
    process.stdin.flush()
    secret = None
    shown = []
    for line in process.stdout:
        shown.append(line)
        if line.startswith("secret: "):
            secret = line.split(": ", 1)[1].strip()
            break
    assert secret, "".join(shown)
    process.stdin.write(pyotp.TOTP(secret).now() + "\n")
    process.stdin.flush()
    out, _ = process.communicate(timeout=60)
    errors.seek(0)
    err = errors.read()
    errors.close()
    assert process.returncode == 0, err
    assert "Two-factor sign-in is on" in out
    codes = [line.strip() for line in out.splitlines() if line.startswith("  ")]
    assert len(codes) == 10
    assert "▀" in "".join(shown) or "█" in "".join(shown)  # the QR code was drawn

    again = subprocess.run(
        [
            sys.executable,
            "-m",
            "imaging_bridge",
            "staff",
            "create",
            "--email",
            "first.admin@example.org",
            "--password-stdin",
        ],
        input="another long passphrase\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert again.returncode == 2
    assert "already exists" in again.stderr


def test_serve_demo_prints_one_account_per_role_and_they_sign_in(database_url, tmp_path):
    from tests.e2e.test_cli import Served

    env = {**os.environ, "DATABASE_URL": database_url, "DATA_DIR": str(tmp_path)}
    with Served(env) as served:
        credentials = (tmp_path / "demo-credentials.json").read_text()
        import json

        accounts = json.loads(credentials)
        assert set(accounts) == {
            "patient",
            "scheduler",
            "billing",
            "compliance",
            "admin",
            "integration",
        }
        admin = accounts["admin"]
        first = httpx.post(
            f"{served.url}/v1/auth/token",
            data={"username": admin["email"], "password": admin["password"]},
        )
        assert first.status_code == 401
        second = httpx.post(
            f"{served.url}/v1/auth/token/second-factor",
            json={
                "challenge": first.json()["challenge"],
                "code": pyotp.TOTP(admin["totp_secret"]).now(),
            },
        )
        assert second.status_code == 200
    for entry in accounts.values():
        assert entry["email"] in served.output
        assert entry["password"] in served.output
