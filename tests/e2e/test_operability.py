"""What a new operator meets: start-up refusals in one line, commands that do not create
databases by accident, keys checked against the database, the demo seeded once, catalog
files that say what they do, and help texts that read alike."""

import base64
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from psycopg.conninfo import conninfo_to_dict

from adapters.database import describe, with_dbname
from tests.e2e.test_cli import COMMANDS, Served, free_port

pytestmark = pytest.mark.e2e

DEMO = Path(__file__).parents[2] / "src" / "imaging_bridge" / "demo" / "catalog.yaml"
NOT_CREATING = [
    ["hl7", "list"],
    ["deliveries", "list"],
    ["projections", "status"],
    ["projections", "rebuild", "catalog_view"],
    ["catalog", "load", str(DEMO)],
    ["worker"],
]


@pytest.fixture
def cli_env(database_url: str, tmp_path: Path) -> dict[str, str]:
    return {"DATABASE_URL": database_url, "DATA_DIR": str(tmp_path), "LOG_JSON": "true"}


def run(
    *args: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    without: tuple[str, ...] = (),
) -> subprocess.CompletedProcess[str]:
    """``imaging-bridge ARGS`` with ``env`` over this process's environment, less the
    variables ``without`` names."""
    full = {k: v for k, v in {**os.environ, **(env or {})}.items() if k not in without}
    return subprocess.run(
        [sys.executable, "-m", "imaging_bridge", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=full,
        cwd=cwd,
        check=False,
    )


NO_DATABASE = ("DATABASE_URL", "DATA_DIR")


def event_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def signing_key() -> str:
    return (
        Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, stderr
    assert "Traceback" not in stderr
    return errors[0]


# A database only where the operator asked for one ---------------------------------------


@pytest.mark.parametrize("command", NOT_CREATING, ids=" ".join)
def test_a_command_without_a_database_says_where_it_looked_and_creates_none(command, tmp_path):
    result = run(*command, cwd=tmp_path, without=NO_DATABASE)

    assert result.returncode == 2
    line = one_error_line(result.stderr)
    assert str(tmp_path / ".imaging-bridge") in line
    assert "serve, migrate or staff create" in line
    assert not (tmp_path / ".imaging-bridge" / "pgdata").exists()


def test_a_command_names_the_missing_database_on_a_server_and_does_not_create_it(database_url):
    missing = with_dbname(database_url, f"{conninfo_to_dict(database_url)['dbname']}_absent")
    result = run("deliveries", "list", env={"DATABASE_URL": missing})

    assert result.returncode == 2
    line = one_error_line(result.stderr)
    assert f"there is no database {describe(missing)}" in line
    assert "serve, migrate or staff create" in line
    with psycopg.connect(database_url) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (conninfo_to_dict(missing)["dbname"],)
        ).fetchone()
    assert exists is None


def test_migrate_creates_the_embedded_database_without_the_xdg_warning(tmp_path):
    without = (*NO_DATABASE, "XDG_RUNTIME_DIR")
    result = run("migrate", "--data-dir", str(tmp_path / "data"), cwd=tmp_path, without=without)

    assert result.returncode == 0, result.stderr
    assert "0001_read_models" in result.stdout
    assert (tmp_path / "data" / "pgdata" / "PG_VERSION").exists()
    assert "XDG_RUNTIME_DIR" not in result.stderr + result.stdout
    listed = run("deliveries", "list", "--data-dir", str(tmp_path / "data"), without=without)
    assert listed.returncode == 0, listed.stderr


def test_an_unsupported_database_url_is_one_line_without_its_password(tmp_path):
    result = run("serve", env={"DATABASE_URL": "mysql://someone:s3cret@db/ib"}, cwd=tmp_path)

    assert result.returncode == 2
    line = one_error_line(result.stderr)
    assert "DATABASE_URL" in line
    assert "mysql://" in line
    assert "s3cret" not in result.stderr + result.stdout


# Keys checked against the database ------------------------------------------------------


def test_another_event_key_is_refused_before_anything_starts(cli_env):
    first = {**cli_env, "EVENT_CIPHER_KEY": event_key()}
    assert run("catalog", "load", str(DEMO), env=first).returncode == 0

    other = {**cli_env, "EVENT_CIPHER_KEY": event_key(), "PORT": str(free_port())}
    for command in (["projections", "status"], ["serve"], ["worker"]):
        result = run(*command, env=other)
        assert result.returncode == 2, result.stderr
        line = one_error_line(result.stderr)
        assert "EVENT_CIPHER_KEY is not the key this database was started with" in line
        assert "API on" not in result.stdout
        assert first["EVENT_CIPHER_KEY"] not in result.stderr
        assert other["EVENT_CIPHER_KEY"] not in result.stderr
    assert run("projections", "status", env=first).returncode == 0


def test_a_database_from_before_key_checks_is_checked_against_its_events(cli_env, database_url):
    key = event_key()
    assert (
        run("catalog", "load", str(DEMO), env={**cli_env, "EVENT_CIPHER_KEY": key}).returncode == 0
    )
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM key_checks")  # as before migration 0015

    refused = run("projections", "status", env={**cli_env, "EVENT_CIPHER_KEY": event_key()})
    accepted = run("projections", "status", env={**cli_env, "EVENT_CIPHER_KEY": key})

    assert refused.returncode == 2
    line = one_error_line(refused.stderr)
    assert "EVENT_CIPHER_KEY cannot decrypt the events already in this database" in line
    assert accepted.returncode == 0, accepted.stderr


def test_another_signing_key_is_a_warning_and_becomes_the_recorded_one(cli_env):
    assert run("migrate", env={**cli_env, "JWT_PRIVATE_KEY": signing_key()}).returncode == 0
    changed = {**cli_env, "JWT_PRIVATE_KEY": signing_key()}

    warned = run("migrate", env=changed)
    again = run("migrate", env=changed)

    assert warned.returncode == 0, warned.stderr
    assert "warning: the access-token signing key (JWT_PRIVATE_KEY) changed" in warned.stderr
    assert again.returncode == 0
    assert "signing key" not in again.stderr


# Start-up ------------------------------------------------------------------------------


def test_the_http_port_in_use_is_one_line_before_anything_starts(cli_env):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run("serve", "--port", str(port), env=cli_env)

    assert result.returncode == 2
    assert f"cannot listen for HTTP on 127.0.0.1:{port}" in one_error_line(result.stderr)
    assert "API on" not in result.stdout


def test_the_mllp_port_in_use_is_one_line_without_asyncio_noise(cli_env):
    assert run("migrate", env=cli_env).returncode == 0
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        served = run("serve", "--port", str(free_port()), env={**cli_env, "MLLP_PORT": str(port)})
        listened = run("mllp-listen", "--mllp-port", str(port), env=cli_env)

    for result in (served, listened):
        assert result.returncode == 2
        assert f"cannot listen for HL7 on 127.0.0.1:{port}" in one_error_line(result.stderr)
        assert "Task was destroyed" not in result.stderr
        assert "API on" not in result.stdout


def test_serve_prints_the_hl7_destinations(cli_env):
    env = {
        **os.environ,
        **cli_env,
        "HL7_DESTINATIONS": "ris=127.0.0.1:6661;version=2.3,pacs=127.0.0.1:6662;tls=1",
    }
    with Served(env) as served:
        pass

    assert "HL7 out to ris at 127.0.0.1:6661 (v2.3, ACK timeout 10 s)" in served.output
    assert "HL7 out to pacs at 127.0.0.1:6662 (v2.5.1, TLS, ACK timeout 10 s)" in served.output
    assert served.output.index("HL7 out") < served.output.index("API on")


def test_bad_hl7_destinations_are_refused_in_one_line(cli_env):
    result = run("serve", env={**cli_env, "HL7_DESTINATIONS": "ris=nowhere"})

    assert result.returncode == 2
    assert "HL7_DESTINATIONS: bad HL7 destination 'ris=nowhere'" in one_error_line(result.stderr)


@pytest.mark.parametrize(
    ("setting", "value", "said"),
    [
        ("HL7_DESTINATIONS", "ris=nowhere", "HL7_DESTINATIONS: bad HL7 destination 'ris=nowhere'"),
        ("VAPID_PRIVATE_KEY", "not-a-key", "VAPID_PRIVATE_KEY: "),
    ],
    ids=["destinations", "vapid"],
)
def test_the_outbound_worker_refuses_bad_settings_as_serve_does(cli_env, setting, value, said):
    """The worker wires only the outbound part, but checks what serve checks."""
    env = {**cli_env, setting: value, "PORT": str(free_port())}
    served, worker = run("serve", env=env), run("worker", env=env)

    assert served.returncode == worker.returncode == 2
    assert said in one_error_line(worker.stderr)
    assert one_error_line(worker.stderr) == one_error_line(served.stderr)
    assert "API on" not in served.stdout


# The demo catalog is seeded once --------------------------------------------------------


def test_serve_demo_keeps_catalog_edits_across_restarts(cli_env, tmp_path):
    import httpx

    env = {**os.environ, **cli_env}
    with Served(env) as first:
        pass
    assert "demo catalog: 21 created" in first.output

    document = yaml.safe_load(DEMO.read_text())
    document["appointment_types"][0]["duration_minutes"] = 75
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(document, default=str))
    assert run("catalog", "load", str(edited), env=cli_env).returncode == 0

    with Served(env) as second:
        types = httpx.get(f"{second.url}/v1/catalog/appointment-types").json()
    code = document["appointment_types"][0]["code"]
    assert {t["code"]: t["duration_minutes"] for t in types}[code] == 75
    assert "demo catalog: not loaded" in second.output

    def accounts(output: str) -> list[str]:
        return [line for line in output.splitlines() if "@example.org" in line]

    assert len(accounts(first.output)) == 6
    assert accounts(second.output) == accounts(first.output)  # none created again


# catalog load says what it does ---------------------------------------------------------


def test_catalog_load_names_the_file_and_the_unknown_key(cli_env, tmp_path):
    path = tmp_path / "typo.yaml"
    path.write_text(
        "locations:\n  - {code: aa, name: A, timezone: UTC, colour: red,"
        " address: {line1: x, city: y}}\n"
    )
    result = run("catalog", "load", str(path), env=cli_env)

    assert result.returncode == 2
    assert f"{path}: catalog locations.0: unknown key 'colour'" in one_error_line(result.stderr)


def test_catalog_load_may_reference_locations_already_there_and_names_what_it_keeps(
    cli_env, tmp_path
):
    assert run("catalog", "load", str(DEMO), env=cli_env).returncode == 0
    location = yaml.safe_load(DEMO.read_text())["locations"][0]["code"]
    extra = tmp_path / "extra.yaml"
    extra.write_text(
        "resources:\n"
        f"  - {{code: extra-us-1, name: Extra US, modality: US, location: {location},"
        " hours: {mon: ['08:00-12:00']}}\n"
    )

    result = run("catalog", "load", str(extra), env=cli_env)

    assert result.returncode == 0, result.stderr
    assert "catalog: 1 created, 0 revised, 0 unchanged" in result.stdout
    kept = [line for line in result.stdout.splitlines() if line.startswith("kept, not in")]
    assert [line.split(":")[1].split()[0] for line in kept] == ["locations", "resources", "exam"]
    assert location in kept[0]
    assert "extra-us-1" not in kept[1]
    assert f"{extra}: 0 locations, 1 resources, 0 exam types" in result.stderr


# Operator commands ----------------------------------------------------------------------


def test_deliveries_list_says_when_it_is_empty_and_refuses_unknown_statuses(cli_env):
    assert run("migrate", env=cli_env).returncode == 0

    empty = run("deliveries", "list", "--status", "dead_lettered", env=cli_env)
    unknown = run("deliveries", "list", "--status", "lost", env=cli_env)

    assert empty.returncode == 0, empty.stderr
    assert empty.stdout.strip() == "no deliveries with status dead_lettered"
    assert unknown.returncode == 2
    assert "unknown status 'lost'; choose from queued" in one_error_line(unknown.stderr)


def test_projections_list_every_read_model_and_rebuild_shows_progress(cli_env):
    read_models = ["catalog_view", "appointment_history", "availability", "orders"]
    read_models += ["deliveries_view", "patient_merges", "patient_lookup", "patient_phones"]
    read_models += ["secure_threads"]
    assert run("catalog", "load", str(DEMO), env=cli_env).returncode == 0

    status = run("projections", "status", env=cli_env)
    unknown = run("projections", "rebuild", "nonsense", env=cli_env)
    rebuilt = run("projections", "rebuild", "catalog_view", env=cli_env)
    helped = run("projections", "rebuild", "--help")

    assert [line.split(":")[0] for line in status.stdout.splitlines()] == read_models
    assert all(name in one_error_line(unknown.stderr) for name in read_models)
    assert all(name in helped.stdout for name in read_models)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert re.search(r"^catalog_view: (\d+)/\1 \(100%\)$", rebuilt.stderr, re.M), rebuilt.stderr


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "top")
def test_help_reads_alike_on_every_command(command):
    result = run(*command, "--help")

    assert result.returncode == 0, result.stderr
    assert "`" not in result.stdout
    assert "as they land" not in result.stdout
    if "--data-dir" in result.stdout:
        text = re.sub(r"[│\s]+", " ", result.stdout)
        assert (
            "--data-dir <path> Data folder: the embedded PostgreSQL (when DATABASE_URL is unset)"
            " and the development keys (default: DATA_DIR, else ./.imaging-bridge/)"
        ) in text


def test_hl7_replay_of_a_processed_message_asks_for_force(runtime, tmp_path):
    from adapters.hl7.listener import BackgroundListener, ListenerConfig
    from adapters.hl7.processor import InboundProcessor
    from tests.integration.test_hl7_listener import adt, exchange

    with BackgroundListener(runtime.url, ListenerConfig(port=0), cipher=runtime.cipher) as listener:
        exchange(listener.port, adt("FORCE1"))
    assert InboundProcessor(runtime.pool, runtime.inbound, runtime.cipher).process_pending(10) == 1
    env = {"DATABASE_URL": runtime.url, "DATA_DIR": str(tmp_path)}
    listed = run("hl7", "list", "--status", "processed", env=env)
    assert listed.returncode == 0, listed.stderr
    [message_id] = [line.split()[0] for line in listed.stdout.splitlines() if "FORCE1" in line]

    refused = run("hl7", "replay", message_id, "--reason", "again", env=env)
    forced = run("hl7", "replay", message_id, "--reason", "again", "--force", env=env)

    assert refused.returncode == 2
    assert "processed already" in one_error_line(refused.stderr)
    assert "--force" in refused.stderr
    assert forced.returncode == 0, forced.stderr
    assert f"{message_id} is received again" in forced.stdout
