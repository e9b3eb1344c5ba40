"""Notices through the whole outbound machinery: the pump hands due e-mail deliveries to
the ``send_notice`` actor (dramatiq on PostgreSQL), whose worker sends them to a real
SMTP server on loopback. A password reset arrives and its link resets the password; a
worker killed in the middle of a send neither loses a message nor lets the receiving
side see one under two identities (the Message-ID is the delivery's)."""

import os
import signal
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
from pydantic import SecretStr

from imaging_bridge.bootstrap import Runtime
from tests.integration.mllp_peer import wait_until
from tests.integration.notices import new_patient, queue_notice
from tests.providers.smtp_server import SmtpServer
from tests.support import register, reset_link_token_in

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
WORKER = "import typer; from imaging_bridge.deliveries_cli import worker; typer.run(worker)"
PORTAL = "https://portal.centre.example"


def test_a_reset_link_sent_by_the_worker_resets_the_password(runtime, client, smtp_server):
    # Given a process sending e-mail over SMTP, and a patient who forgot their password
    settings = runtime.settings.model_copy(
        update={
            "smtp_url": SecretStr(f"smtp://127.0.0.1:{smtp_server.port}"),
            "public_base_url": PORTAL,
        }
    )
    runtime.start_outbound(settings, policy=False, pump=True, workers=1, pump_interval=0.05)
    register(client, "ana@example.org")

    # When they ask for a reset link
    asked = client.post("/v1/auth/password-reset", json={"email": "ana@example.org"})
    assert asked.status_code == 202

    # Then the worker sends it to their address, in both parts, with a link to the portal
    [mail] = wait_until(lambda: smtp_server.received)
    assert mail.rcpt_tos == ["ana@example.org"]
    text = mail.message.get_body(("plain",)).get_content()
    html = mail.message.get_body(("html",)).get_content()
    assert f"{PORTAL}/reset-password?token=" in text
    token = reset_link_token_in(text)
    assert token in html

    # And the link resets the password
    reset = client.post(
        "/v1/auth/password-reset/confirm",
        json={"token": token, "new_password": "a brand new passphrase"},
    )
    assert reset.status_code == 204, reset.text
    signed_in = client.post(
        "/v1/auth/token",
        data={"username": "ana@example.org", "password": "a brand new passphrase"},
    )
    assert signed_in.status_code == 200
    # And the delivery is acknowledged, visible as an e-mail delivery
    [delivery] = wait_until(
        lambda: [
            d
            for d in runtime.services.deliveries.search(channel="email")
            if d.status == "acknowledged"
        ]
    )
    assert delivery.message_type == "password_reset"


def start_worker(runtime: Runtime, data_dir: Path, smtp: SmtpServer) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": runtime.url,
        "ENVIRONMENT": "test",
        "SMTP_URL": f"smtp://127.0.0.1:{smtp.port}",
        "DELIVERY_BASE_DELAY": "0.05",
        "DELIVERY_MAX_DELAY": "0.2",
        "DELIVERY_LEASE_SECONDS": "1",
        "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}",
    }
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, "--threads", "2", "--data-dir", str(data_dir)],
        env=env,
        cwd=str(data_dir),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_a_worker_killed_mid_send_loses_no_notice_and_shows_none_twice(
    runtime, client, tmp_path, smtp_server
):
    # Given four reminders, and an SMTP server that keeps the first patient's message
    # and then says nothing: the worker is in the middle of that send
    patients = [new_patient(client, f"p{i}@example.org") for i in range(4)]
    smtp_server.stall_after_data.add("p0@example.org")
    deliveries = [queue_notice(runtime, p, "email", exempt=True) for p in patients]
    worker = start_worker(runtime, tmp_path, smtp_server)
    try:
        wait_until(lambda: smtp_server.stalls >= 1, timeout=60)
    finally:
        # When the worker is killed there
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)

    # And another worker starts
    restarted = start_worker(runtime, tmp_path, smtp_server)
    try:
        app = runtime.services.deliveries.deliveries
        wait_until(
            lambda: all(app.delivery(d.id).status == "acknowledged" for d in deliveries),
            timeout=90,
        )
    finally:
        restarted.send_signal(signal.SIGTERM)
        restarted.wait(timeout=20)

    # Then every reminder arrived, and each under one Message-ID (its delivery's), even
    # the one the server got twice
    ids_by_recipient: dict[str, set[str]] = defaultdict(set)
    for mail in smtp_server.received:
        ids_by_recipient[mail.rcpt_tos[0]].add(mail.message["Message-ID"])
    assert sorted(ids_by_recipient) == [f"p{i}@example.org" for i in range(4)]
    assert all(len(ids) == 1 for ids in ids_by_recipient.values())
    assert {next(iter(ids)).strip("<>").split("@")[0] for ids in ids_by_recipient.values()} == {
        str(d.id) for d in deliveries
    }
    copies = [m for m in smtp_server.received if m.rcpt_tos == ["p0@example.org"]]
    assert len(copies) == 2  # kept before the kill, sent again after: recognisably one
