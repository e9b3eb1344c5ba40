"""Transport security: TLS termination by ``serve``, secure headers on every response,
the CORS allowlist, and settings that refuse to run production without its own secrets."""

import base64
import hashlib
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trustme
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from pydantic import ValidationError

from adapters.settings import Settings, settings_problem
from api.app import create_app
from api.security import API_CSP, HSTS
from imaging_bridge.bootstrap import Runtime
from imaging_bridge.cli import _tls_options

pytestmark = pytest.mark.integration

PORTAL = "https://portal.example.org"
# Settings this module sets itself; the developer's own environment must not leak in.
CONTROLLED = (
    "ENVIRONMENT",
    "JWT_PRIVATE_KEY",
    "EVENT_CIPHER_KEY",
    "TLS_CERT_FILE",
    "TLS_KEY_FILE",
    "TLS_KEY_PASSWORD",
    "CORS_ORIGINS",
    "LOG_LEVEL",
    "LOG_JSON",
    "HL7_SENDERS",
    "HL7_TLS_CAFILE",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def base_env(**settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CONTROLLED}
    return {**env, **settings}


def production_secrets() -> dict[str, str]:
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return {
        "ENVIRONMENT": "production",
        "JWT_PRIVATE_KEY": pem.decode(),
        "EVENT_CIPHER_KEY": base64.b64encode(os.urandom(32)).decode(),
    }


class ServedProcess:
    """``python -m imaging_bridge serve`` as a child process, its output in files (a pipe
    nobody reads would block a chatty server), stopped with Ctrl-C."""

    def __init__(
        self,
        env: dict[str, str],
        folder: Path,
        *args: str,
        verify: ssl.SSLContext | bool = True,
        https: bool = False,
    ) -> None:
        self.port = free_port()
        self.url = f"{'https' if https else 'http'}://127.0.0.1:{self.port}"
        self.verify = verify
        self.stdout_path = folder / "serve.stdout"
        self.stderr_path = folder / "serve.stderr"
        with self.stdout_path.open("w") as out, self.stderr_path.open("w") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "imaging_bridge", "serve", "--port", str(self.port), *args],
                stdout=out,
                stderr=err,
                env=env,
            )

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text()

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def client(self, **kwargs: object) -> httpx.Client:
        return httpx.Client(base_url=self.url, verify=self.verify, timeout=30, **kwargs)  # type: ignore[arg-type]

    def __enter__(self) -> "ServedProcess":
        deadline = time.monotonic() + 90
        with self.client() as client:
            while time.monotonic() < deadline:
                try:
                    if client.get("/readyz", timeout=2).status_code == 200:
                        return self
                except httpx.TransportError:
                    pass
                if self.process.poll() is not None:
                    break
                time.sleep(0.2)
        self.stop()
        raise AssertionError(f"the server did not become ready:\n{self.stderr[-3000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def __exit__(self, *_: object) -> None:
        self.stop()


@pytest.fixture
def certificates(tmp_path: Path) -> tuple[trustme.CA, Path, Path]:
    """A throwaway CA, and a server certificate for 127.0.0.1 it signed."""
    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1", "localhost")
    cert, key = tmp_path / "server.pem", tmp_path / "server.key"
    for blob in issued.cert_chain_pems:
        blob.write_to_path(str(cert), append=True)
    issued.private_key_pem.write_to_path(str(key))
    return ca, cert, key


def trusting(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


# --- serve: TLS end to end -------------------------------------------------------------


@pytest.mark.e2e
def test_serve_terminates_tls_and_sends_hsts(database_url, tmp_path, certificates):
    ca, cert, key = certificates
    env = base_env(
        DATABASE_URL=database_url,
        DATA_DIR=str(tmp_path),
        ENVIRONMENT="test",
        TLS_CERT_FILE=str(cert),
        TLS_KEY_FILE=str(key),
    )
    with ServedProcess(env, tmp_path, "--demo", verify=trusting(ca), https=True) as served:
        with served.client() as client:
            response = client.get("/v1/catalog/locations")
        assert response.status_code == 200
        assert len(response.json()) == 3
        assert response.headers["Strict-Transport-Security"] == HSTS
        assert response.headers["X-Content-Type-Options"] == "nosniff"

        # A client that does not trust our CA refuses the connection ...
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(f"{served.url}/healthz", verify=ssl.create_default_context())
        # ... and nothing is served in clear text on the TLS port.
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{served.port}/healthz", timeout=5)
    assert served.process.returncode == 0
    assert f"on https://127.0.0.1:{served.port}" in served.stdout
    assert "TLS is off" not in served.stderr
    # Without HL7_SENDERS the MLLP listener takes loopback peers only, and says so.
    assert "(HL7_SENDERS unset: only loopback peers may send)" in served.stdout


@pytest.mark.e2e
def test_serve_warns_loudly_without_tls_in_production(database_url, tmp_path):
    env = base_env(
        DATABASE_URL=database_url,
        DATA_DIR=str(tmp_path),
        HL7_SENDERS="ris=127.0.0.1;app=RIS;facility=CENTRE",  # production needs its senders
        **production_secrets(),
    )
    with ServedProcess(env, tmp_path, "--mllp-port", "0") as served, served.client() as client:
        response = client.get("/healthz")
        assert response.status_code == 200
        assert "Strict-Transport-Security" not in response.headers
    assert "WARNING: TLS is off and ENVIRONMENT=production" in served.stderr
    assert "(senders: ris)" in served.stdout
    assert "JWT_PRIVATE_KEY" not in served.stderr


def test_tls_options_for_uvicorn(tmp_path, certificates, capsys):
    _, cert, key = certificates
    development = Settings(environment="development", data_dir=tmp_path)
    assert _tls_options(development) == {}
    assert capsys.readouterr().err == ""

    production = Settings(data_dir=tmp_path, **lowercase(production_secrets()))
    assert _tls_options(production) == {}
    assert "TLS is off" in capsys.readouterr().err

    with_tls = production.model_copy(update={"tls_cert_file": cert, "tls_key_file": key})
    assert _tls_options(with_tls) == {
        "ssl_certfile": str(cert),
        "ssl_keyfile": str(key),
        "ssl_keyfile_password": None,
    }
    assert capsys.readouterr().err == ""


def lowercase(settings: dict[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in settings.items()}


# --- settings refuse production without its own secrets ---------------------------------


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "imaging_bridge", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


# The database is unreachable on purpose: settings must refuse before anything connects
# (a connection attempt would end with exit code 3 instead).
UNREACHABLE = "postgresql://someone@127.0.0.1:9/nowhere"


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("settings", "names"),
    [
        ({"ENVIRONMENT": "production"}, ["JWT_PRIVATE_KEY", "EVENT_CIPHER_KEY"]),
        (
            {"ENVIRONMENT": "production", "JWT_PRIVATE_KEY": "from-the-tutorial"},
            ["JWT_PRIVATE_KEY"],
        ),
        ({"EVENT_CIPHER_KEY": "dG9vIHNob3J0"}, ["EVENT_CIPHER_KEY"]),
        ({"TLS_CERT_FILE": "/nonexistent/server.pem"}, ["TLS_CERT_FILE"]),
        ({"CORS_ORIGINS": "*"}, ["CORS_ORIGINS"]),
    ],
    ids=["production-without-keys", "bad-key", "short-cipher-key", "missing-cert", "wildcard"],
)
def test_serve_refuses_bad_settings_with_one_clear_line(tmp_path, settings, names):
    env = base_env(DATABASE_URL=UNREACHABLE, DATA_DIR=str(tmp_path), **settings)
    result = run_cli("serve", env=env)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: settings refused: ")
    for name in names:
        assert name in lines[0]
    assert "from-the-tutorial" not in result.stderr
    assert "dG9vIHNob3J0" not in result.stderr
    assert result.stdout == ""


def test_production_settings_with_their_own_keys_are_accepted(tmp_path):
    settings = Settings(data_dir=tmp_path, **lowercase(production_secrets()))
    assert not settings.development_like
    assert not settings.tls_enabled


@pytest.mark.parametrize("environment", ["development", "test"])
def test_development_and_test_generate_their_own_keys(tmp_path, environment):
    from adapters.keys import load_or_create_cipher_key
    from adapters.tokens import load_or_create_key

    settings = Settings(environment=environment, data_dir=tmp_path)
    assert settings.development_like
    signing = load_or_create_key(None, tmp_path, allow_generate=settings.development_like)
    cipher = load_or_create_cipher_key(None, tmp_path, allow_generate=settings.development_like)
    # Made once into the data folder, and the same ones read back on the next start.
    again = load_or_create_key(None, tmp_path, allow_generate=True)
    assert again.private_bytes_raw() == signing.private_bytes_raw()
    assert load_or_create_cipher_key(None, tmp_path, allow_generate=True) == cipher


def test_cors_origins_come_comma_separated(monkeypatch):
    monkeypatch.setenv("CORS_ORIGINS", f" {PORTAL} ,http://localhost:5173,")
    assert Settings().cors_origins == [PORTAL, "http://localhost:5173"]
    monkeypatch.setenv("CORS_ORIGINS", "")
    assert Settings().cors_origins == []
    monkeypatch.setenv("CORS_ORIGINS", f"{PORTAL}/app")
    with pytest.raises(ValidationError) as refused:
        Settings()
    assert "CORS_ORIGINS" in settings_problem(refused.value)


def test_tls_needs_both_certificate_and_key(tmp_path, certificates):
    _, cert, _ = certificates
    with pytest.raises(ValidationError, match="set both or neither"):
        Settings(data_dir=tmp_path, tls_cert_file=cert)


# --- secure headers on every response ----------------------------------------------------


def assert_secure(response: httpx.Response, *, https: bool = False) -> None:
    headers = response.headers
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["Cache-Control"] == "no-store"
    assert ("Strict-Transport-Security" in headers) is https
    if https:
        assert headers["Strict-Transport-Security"] == HSTS


def test_api_responses_carry_the_secure_headers_and_the_strict_policy(client):
    responses = [
        client.get("/v1/catalog/locations"),  # 200
        client.get("/v1/patients/me"),  # 401
        client.get("/v1/slots"),  # 422
        client.get("/v1/no-such-thing"),  # 404
        client.post("/v1/patients/register", content=b"x" * 70_000),  # 413
        client.get("/openapi.json"),
    ]
    assert [r.status_code for r in responses] == [200, 401, 422, 404, 413, 200]
    for response in responses:
        assert_secure(response)
        assert response.headers["Content-Security-Policy"] == API_CSP
        assert "Access-Control-Allow-Origin" not in response.headers


def test_hsts_only_over_https(runtime: Runtime):
    with TestClient(create_app(runtime.services), base_url="https://testserver") as https:
        assert_secure(https.get("/healthz"), https=True)
        assert_secure(https.get("/docs"), https=True)


@pytest.mark.parametrize("page", ["/docs", "/redoc", "/docs/oauth2-redirect"])
def test_docs_pages_load_only_this_servers_assets_and_run_only_their_own_inline_scripts(
    client, page
):
    # given the API; when a docs page is fetched
    response = client.get(page)
    # then it is served with the secure headers and a policy naming no other host
    assert response.status_code == 200
    assert_secure(response)
    policy = dict(
        part.strip().split(" ", 1)
        for part in response.headers["Content-Security-Policy"].split(";")
    )
    assert policy["default-src"] == "'none'"
    assert policy["frame-ancestors"] == "'none'"
    assert not re.search(r"https?:|//|\*", response.headers["Content-Security-Policy"])
    scripts = policy["script-src"].split()
    assert "'unsafe-inline'" not in scripts
    inline = re.findall(r"<script>(.*?)</script>", response.text, re.DOTALL)
    for script in inline:
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in scripts
    # and every asset it references is this server's, and is there (offline: no CDN)
    assets = re.findall(r'(?:src|href)="([^"]+)"', response.text)
    if page != "/docs/oauth2-redirect":
        assert "'self'" in scripts
        assert any(asset.endswith(".js") for asset in assets)
    for asset in assets:
        assert asset.startswith("/docs/assets/"), asset
        fetched = client.get(asset)
        assert fetched.status_code == 200, asset
        assert fetched.content
    assert "http" not in " ".join(re.findall(r"url: *'[^']*'", response.text))


# --- CORS allowlist ----------------------------------------------------------------------


@pytest.fixture
def cors_client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime.services, cors_origins=[PORTAL])) as test_client:
        yield test_client


def preflight(client: TestClient, origin: str) -> httpx.Response:
    return client.options(
        "/v1/appointments",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
        },
    )


def test_an_allowed_origin_may_call_the_api(cors_client):
    allowed = preflight(cors_client, PORTAL)
    assert allowed.status_code == 200
    assert allowed.headers["Access-Control-Allow-Origin"] == PORTAL
    assert "POST" in allowed.headers["Access-Control-Allow-Methods"]
    allowed_headers = allowed.headers["Access-Control-Allow-Headers"].lower()
    assert {"authorization", "content-type", "idempotency-key"} <= {
        h.strip() for h in allowed_headers.split(",")
    }
    assert "Access-Control-Allow-Credentials" not in allowed.headers
    assert_secure(allowed)

    simple = cors_client.get("/v1/catalog/locations", headers={"Origin": PORTAL})
    assert simple.headers["Access-Control-Allow-Origin"] == PORTAL
    exposed = simple.headers["Access-Control-Expose-Headers"].lower()
    assert "x-consistency-token" in exposed
    assert "retry-after" in exposed


@pytest.mark.parametrize(
    "origin",
    ["https://evil.example.com", "http://portal.example.org", "https://portal.example.org.evil.io"],
)
def test_other_origins_get_no_cors_headers(cors_client, origin):
    refused = preflight(cors_client, origin)
    assert refused.status_code == 400
    assert "Access-Control-Allow-Origin" not in refused.headers
    simple = cors_client.get("/v1/catalog/locations", headers={"Origin": origin})
    assert simple.status_code == 200
    assert "Access-Control-Allow-Origin" not in simple.headers


def test_without_an_allowlist_there_is_no_cors_at_all(client):
    assert "Access-Control-Allow-Origin" not in preflight(client, PORTAL).headers
    simple = client.get("/v1/catalog/locations", headers={"Origin": PORTAL})
    assert "Access-Control-Allow-Origin" not in simple.headers
    assert "Access-Control-Expose-Headers" not in simple.headers


# --- requests refused before any route: NUL characters, oversized chunked bodies -------


@pytest.mark.parametrize(
    ("method", "url", "kwargs"),
    [
        ("post", "/v1/patients/register", {"json": {"email": "a\u0000b@example.org"}}),
        ("get", "/v1/slots?appointment_type_id=%00", {}),
        ("get", "/v1/staff/catalog/locations/river%00side", {}),
        ("post", "/v1/auth/token", {"data": {"username": "x\u0000@example.org", "password": "p"}}),
    ],
    ids=["json-body", "query", "path", "form"],
)
def test_nul_characters_are_refused_before_any_route(client, method, url, kwargs):
    response = getattr(client, method)(url, **kwargs)
    assert response.status_code == 422
    assert response.json() == {
        "code": "validation_error",
        "detail": "text must not contain NUL characters (U+0000)",
    }
    assert_secure(response)
    assert response.headers["X-Request-ID"]


def test_an_escaped_backslash_before_u0000_is_just_text(client):
    # JSON "\\u0000" is a backslash followed by the letters u0000: no NUL at all.
    response = client.post(
        "/v1/patients/register",
        content=b'{"email": "x\\\\u0000@example.org"}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert "NUL" not in response.json()["detail"]


def test_a_chunked_body_over_the_limit_is_refused(client):
    def chunks() -> Iterator[bytes]:
        for _ in range(80):
            yield b"x" * 1024

    response = client.post(
        "/v1/patients/register", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["code"] == "request_too_large"
