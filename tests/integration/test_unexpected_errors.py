"""An error nobody expected answers like every other error: the ``{code, detail}`` JSON
body (code ``internal_error``, a generic detail quoting the request id), with the secure
headers and ``X-Request-ID``, through the test client and through a real uvicorn server;
the log says what failed and where, without the error's message."""

import io
import json
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send

from adapters.log_setup import configure_logging
from api.app import create_app
from api.security import API_CSP
from imaging_bridge.bootstrap import Runtime
from tests.conftest import LiveServer
from tests.integration.test_transport import assert_secure

pytestmark = pytest.mark.integration

# What a database error's message may quote: it must not reach the client or the log.
SECRET_IN_MESSAGE = "patient-name-Quillfeather"


def failing_app(runtime: Runtime) -> FastAPI:
    """The real API plus one route that fails the way a bug would."""
    app = create_app(runtime.services)

    def broken() -> None:
        raise RuntimeError(f"duplicate key value (family_name)=({SECRET_IN_MESSAGE})")

    app.add_api_route("/v1/test-only/broken", broken, methods=["GET"])
    return app


def assert_internal_error(response: httpx.Response, request_id: str | None = None) -> None:
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    assert set(response.json()) == {"code", "detail"}
    assert response.json()["code"] == "internal_error"
    assert SECRET_IN_MESSAGE not in response.text
    assert "Traceback" not in response.text
    assert_secure(response)
    assert response.headers["Content-Security-Policy"] == API_CSP
    given = response.headers["X-Request-ID"]
    assert given
    if request_id is not None:
        assert given == request_id
    # The detail quotes the id, so that a user's report finds the log line.
    assert given in response.json()["detail"]


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging("INFO", json=True, stream=stream)
    yield stream
    configure_logging("INFO", json=True)


def test_a_route_that_raises_answers_the_json_error_with_the_headers(runtime, log_lines):
    # given the API with a route that raises
    with TestClient(failing_app(runtime), raise_server_exceptions=False) as client:
        # when it is called (with and without a request id of the caller's)
        chosen = client.get("/v1/test-only/broken", headers={"X-Request-ID": "trace-123"})
        generated = client.get("/v1/test-only/broken")
        # and the API goes on answering afterwards
        after = client.get("/v1/catalog/locations")

    # then both answers are the JSON error with every header
    assert_internal_error(chosen, request_id="trace-123")
    assert_internal_error(generated)
    assert generated.headers["X-Request-ID"] != "trace-123"
    assert after.status_code == 200
    # and the log names the error's kind and where it happened, never its message
    records = [json.loads(line) for line in log_lines.getvalue().splitlines() if line]
    failures = [r for r in records if r["event"] == "unhandled_error"]
    assert [r["request_id"] for r in failures] == ["trace-123", generated.headers["X-Request-ID"]]
    assert all(r["error"] == "RuntimeError" for r in failures)
    assert any("in broken" in where for where in failures[0]["where"])
    requests = [r for r in records if r["event"] == "request" and r.get("status") == 500]
    assert [r["route"] for r in requests] == ["/v1/test-only/broken"] * 2
    assert SECRET_IN_MESSAGE not in log_lines.getvalue()


def test_a_real_server_answers_the_json_error_with_the_headers(runtime):
    # given the API with a failing route, served by uvicorn
    with (
        LiveServer(runtime, failing_app(runtime)) as server,
        httpx.Client(base_url=server.url, timeout=30) as http,
    ):
        # when the route fails, then the answer is the JSON error with every header
        assert_internal_error(
            http.get("/v1/test-only/broken", headers={"X-Request-ID": "live-1"}),
            request_id="live-1",
        )
        # and the same connection and server go on serving
        assert http.get("/healthz").status_code == 200


class FailingMiddleware:
    """A middleware with a bug, outside all of ours: Starlette's own error handler answers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and Request(scope).url.path == "/v1/test-only/mw":
            raise RuntimeError(SECRET_IN_MESSAGE)
        await self.app(scope, receive, send)


def test_an_error_in_a_middleware_still_answers_json_with_the_headers(runtime):
    # given an app whose outermost middleware fails on one path
    app = create_app(runtime.services)
    app.add_middleware(FailingMiddleware)
    with TestClient(app, raise_server_exceptions=False) as client:
        # when that path is called
        response = client.get("/v1/test-only/mw")
    # then the answer is still the JSON error with the secure headers and a request id
    assert_internal_error(response)
