"""The ``imaging-bridge`` command, run as a user runs it."""

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.support import hl7_corpus

pytestmark = pytest.mark.e2e

COMMANDS = [
    [],
    ["serve"],
    ["migrate"],
    ["catalog"],
    ["catalog", "load"],
    ["projections"],
    ["projections", "status"],
    ["projections", "rebuild"],
    ["staff"],
    ["staff", "create"],
    ["hl7"],
    ["hl7", "list"],
    ["hl7", "show"],
    ["hl7", "replay"],
    ["deliveries"],
    ["deliveries", "list"],
    ["deliveries", "show"],
    ["deliveries", "redrive"],
    ["mllp-listen"],
    ["worker"],
]


def run(*args: str, env: dict[str, str] | None = None, timeout: int = 120):
    return subprocess.run(
        [sys.executable, "-m", "imaging_bridge", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "top")
def test_every_command_has_help(command):
    result = run(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout
    assert "--help" in result.stdout


@pytest.fixture
def cli_env(database_url: str, tmp_path: Path) -> dict[str, str]:
    return {"DATABASE_URL": database_url, "DATA_DIR": str(tmp_path), "LOG_JSON": "true"}


def test_catalog_load_is_idempotent(cli_env, tmp_path):
    demo = Path(__file__).parents[2] / "src" / "imaging_bridge" / "demo" / "catalog.yaml"
    first = run("catalog", "load", str(demo), env=cli_env)
    assert first.returncode == 0, first.stderr
    assert "21 created, 0 revised, 0 unchanged" in first.stdout
    second = run("catalog", "load", str(demo), env=cli_env)
    assert "0 created, 0 revised, 21 unchanged" in second.stdout

    # The same catalog in JSON, with one exam lengthened: one revision, nothing else.
    import yaml

    document = yaml.safe_load(demo.read_text())
    document["appointment_types"][0]["duration_minutes"] = 60
    changed = tmp_path / "catalog.json"
    changed.write_text(json.dumps(document, default=str))
    third = run("catalog", "load", str(changed), env=cli_env)
    assert "0 created, 1 revised, 20 unchanged" in third.stdout


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("locations: [{code: x}]", "catalog locations.0"),
        (
            "resources:\n  - {code: r1, name: R, modality: CT, location: nowhere, hours: {mon: ['08:00-09:00']}}",
            "unknown location",
        ),
        ("locations: [ unclosed", "not valid YAML"),
        (
            "locations:\n  - {code: aa, name: A, timezone: Mars/Olympus, address: {line1: x, city: y}}",
            "unknown time zone",
        ),
    ],
)
def test_catalog_load_explains_bad_files(cli_env, tmp_path, content, message):
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    result = run("catalog", "load", str(path), env=cli_env)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_catalog_load_of_a_missing_file(cli_env, tmp_path):
    result = run("catalog", "load", str(tmp_path / "missing.yaml"), env=cli_env)
    assert result.returncode == 2
    assert "cannot read" in result.stderr


def test_migrate_then_rebuild_and_status(cli_env):
    migrated = run("migrate", env=cli_env)
    assert migrated.returncode == 0, migrated.stderr
    assert "0001_read_models" in migrated.stdout
    assert "none needed" in run("migrate", env=cli_env).stdout
    rebuilt = run("projections", "rebuild", "catalog_view", env=cli_env)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "rebuilt" in rebuilt.stdout
    unknown = run("projections", "rebuild", "nonsense", env=cli_env)
    assert unknown.returncode == 2
    status = run("projections", "status", env=cli_env)
    assert "appointment_history: 0 behind" in status.stdout


# The served process runs on the real clock: bookings and searches are relative to today.


def next_week() -> dict[str, str]:
    """A slot search window from tomorrow, a week long (always holds weekdays)."""
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    return {"start": start.isoformat(), "end": (start + timedelta(days=7)).isoformat()}


def days_ahead_at_10(days: int, timezone: str) -> str:
    """10:00 local time ``days`` days after today there (riverside's CT is open 24/7)."""
    zone = ZoneInfo(timezone)
    day: date = datetime.now(zone).date() + timedelta(days=days)
    return datetime.combine(day, clock_time(10, 0), tzinfo=zone).isoformat()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Served:
    """``imaging-bridge serve --demo`` as a child process, stopped with Ctrl-C.

    Its output goes to files, not pipes: a server logging every request would fill a
    pipe nobody reads and hang."""

    def __init__(self, env: dict[str, str], *extra: str, stop_signal: int = signal.SIGINT) -> None:
        self.stop_signal = stop_signal
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._stdout = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115
        self._stderr = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "imaging_bridge",
                "serve",
                "--demo",
                "--port",
                str(self.port),
                *extra,
            ],
            stdout=self._stdout,
            stderr=self._stderr,
            text=True,
            env=env,
        )
        self.output = ""
        self.errors = ""

    def _read_output(self) -> None:
        for stream in (self._stdout, self._stderr):
            stream.flush()
            stream.seek(0)
        self.output, self.errors = self._stdout.read(), self._stderr.read()
        self._stdout.close()
        self._stderr.close()

    def __enter__(self) -> "Served":
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if self.process.poll() is not None:
                self._read_output()
                raise AssertionError(self.errors)
            if time.monotonic() > deadline:
                self.__exit__()
                raise AssertionError(f"server did not become ready:\n{self.errors[-4000:]}")
            time.sleep(0.2)

    def __exit__(self, *_: object) -> None:
        self.process.send_signal(self.stop_signal)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self._read_output()


def test_serve_demo_runs_the_api_and_seeding_twice_duplicates_nothing(cli_env):
    for attempt in range(2):
        with Served({**os.environ, **cli_env}) as served:
            locations = httpx.get(f"{served.url}/v1/catalog/locations").json()
            types = httpx.get(f"{served.url}/v1/catalog/appointment-types").json()
            assert len(locations) == 3
            assert len(types) == 7
        assert served.process.returncode == 0
        # The demo catalog goes into an empty catalog only: edits survive restarts.
        expected = "21 created" if attempt == 0 else "demo catalog: not loaded"
        assert expected in served.output


def test_serve_on_the_embedded_default(tmp_path):
    """The README's first command: no DATABASE_URL, so an embedded PostgreSQL in the data dir."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "TEST_DATABASE_URL")}
    with Served(env, "--data-dir", str(tmp_path / "data")) as served:
        types = {
            t["code"]: t["id"]
            for t in httpx.get(f"{served.url}/v1/catalog/appointment-types").json()
        }
        slots = httpx.get(
            f"{served.url}/v1/slots",
            params={
                "appointment_type_id": types["xr-chest"],
                **next_week(),
            },
        )
        assert slots.status_code == 200
        assert slots.json()
    assert served.process.returncode == 0
    assert (tmp_path / "data" / "pgdata" / "PG_VERSION").exists()


def test_serve_stopped_by_sigterm_shuts_down_as_after_ctrl_c(tmp_path):
    """docker stop and systemd send SIGTERM: the runtime closes and the embedded PostgreSQL
    it started stops (uvicorn's re-raised SIGTERM ended the process before either)."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "TEST_DATABASE_URL")}
    data = tmp_path / "data"
    extra = ("--data-dir", str(data), "--mllp-port", str(free_port()))
    with Served(env, *extra, stop_signal=signal.SIGTERM) as served:
        assert (data / "pgdata" / "postmaster.pid").exists()
    assert served.process.returncode == 0, served.errors[-2000:]
    assert not (data / "pgdata" / "postmaster.pid").exists()


def test_an_unreachable_database_gets_a_clear_error_without_the_password(tmp_path):
    result = run(
        "migrate",
        env={
            "DATABASE_URL": "postgresql://someone:s3cret-pw@127.0.0.1:9/nowhere",
            "DATA_DIR": str(tmp_path),
        },
    )
    assert result.returncode == 3
    assert "cannot connect to PostgreSQL at 127.0.0.1:9/nowhere" in result.stderr
    assert "s3cret-pw" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_serve_with_several_api_workers_keeps_read_your_writes(cli_env, tmp_path):
    """Two API worker processes; this process runs the projections. A patient's next
    read reflects their booking whichever worker answers it."""
    # One patient books eight times: the per-patient caps are lifted for this server.
    env = {**os.environ, **cli_env, "MAX_BOOKINGS_PER_EXAM_TYPE": "0", "MAX_BOOKINGS_OVERALL": "0"}
    with Served(env, "--workers", "2") as served:
        credentials = json.loads((tmp_path / "demo-credentials.json").read_text())["patient"]
        token = httpx.post(
            f"{served.url}/v1/auth/token",
            data={"username": credentials["email"], "password": credentials["password"]},
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        types = {
            t["code"]: t["id"]
            for t in httpx.get(f"{served.url}/v1/catalog/appointment-types").json()
        }
        locations = {
            loc["code"]: loc["id"] for loc in httpx.get(f"{served.url}/v1/catalog/locations").json()
        }
        for day in range(1, 9):
            booked = httpx.post(
                f"{served.url}/v1/appointments",
                headers=headers,
                json={
                    "appointment_type_id": types["ct-head"],
                    "location_id": locations["riverside"],
                    "start": days_ahead_at_10(day, "America/New_York"),
                },
            )
            assert booked.status_code == 201, booked.text
            listed = httpx.get(f"{served.url}/v1/appointments", headers=headers).json()
            assert len(listed) == day
    assert served.process.returncode == 0


def test_serve_receives_hl7_and_applies_it(cli_env, tmp_path):
    """``serve`` runs the MLLP listener and the processing stage: a RIS registration is
    ACKed, then applied, as the operator view shows."""
    import pyotp

    mllp_port = free_port()
    env = {**os.environ, **cli_env, "MLLP_PORT": str(mllp_port)}
    corpus = hl7_corpus()
    message = (corpus / "ADT_A04" / "mirth_1.hl7").read_bytes()
    with Served(env) as served:
        with socket.create_connection(("127.0.0.1", mllp_port), timeout=10) as peer:
            peer.sendall(b"\x0b" + message + b"\x1c\x0d")
            ack = b""
            while not ack.endswith(b"\x1c\x0d"):
                chunk = peer.recv(4096)
                assert chunk, "connection closed before the ACK"
                ack += chunk
        assert b"MSA|AA" in ack
        admin = json.loads((tmp_path / "demo-credentials.json").read_text())["admin"]
        challenge = httpx.post(
            f"{served.url}/v1/auth/token",
            data={"username": admin["email"], "password": admin["password"]},
        ).json()["challenge"]
        token = httpx.post(
            f"{served.url}/v1/auth/token/second-factor",
            json={"challenge": challenge, "code": pyotp.TOTP(admin["totp_secret"]).now()},
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        deadline = time.monotonic() + 30
        while True:
            listed = httpx.get(
                f"{served.url}/v1/admin/hl7/inbound",
                params={"status": "processed"},
                headers=headers,
            )
            assert listed.status_code == 200, listed.text
            if listed.json():
                break
            assert time.monotonic() < deadline, "the message was not processed"
            time.sleep(0.2)
        assert [m["outcome"] for m in listed.json()] == ["applied"]


def test_a_client_that_leaves_mid_body_is_logged_as_abandoned_not_as_an_error(cli_env):
    # given the server
    with Served({**os.environ, **cli_env}) as served:
        # when a client announces a body, sends part of it and hangs up
        with socket.create_connection(("127.0.0.1", served.port), timeout=10) as sock:
            sock.sendall(
                b"POST /v1/patients/register HTTP/1.1\r\nHost: x\r\n"
                b'Content-Type: application/json\r\nContent-Length: 400\r\n\r\n{"email":'
            )
        # then it goes on serving
        assert httpx.get(f"{served.url}/healthz").status_code == 200
    # and the request is logged as abandoned, not as an unhandled error with a traceback
    entries = [json.loads(line) for line in served.errors.splitlines() if line.startswith("{")]
    abandoned = [e for e in entries if e["event"] == "request_abandoned"]
    assert [(e["method"], e["route"]) for e in abandoned] == [("POST", "(no route)")]
    assert not [e for e in entries if e["level"] in ("error", "critical")]
    assert "Traceback" not in served.errors
