"""The FastAPI application: routers, error bodies, request ids, secure headers."""

import re
import time
import uuid
from collections.abc import Sequence
from typing import Any

import structlog
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.consistency import LastWrites
from api.deps import record_object_refusal
from api.docs import install_docs
from api.errors import install_error_handlers
from api.metrics import observe_request
from api.routers import (
    activation,
    admin_deliveries,
    admin_hl7,
    appointments,
    audit,
    audit_communications,
    auth,
    catalog,
    health,
    jwks,
    messages,
    notifications,
    patients,
    preferences,
    records,
    slots,
    sms_hooks,
    staff,
    staff_catalog,
    staff_messages,
    staff_patients,
    staff_preferences,
)
from api.schemas.common import ErrorBody
from api.security import install_request_hygiene, install_security
from api.web.app import mount_portal
from application.services import Services

REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
MAX_BODY_BYTES = 64 * 1024
log = structlog.get_logger("api")
# The error answers any route may give, all as ``{code, detail}`` (see api.errors); routes
# declare their own models for codes where they say more (e.g. the sign-in challenge).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "Not signed in, or the session has ended"},
    403: {"model": ErrorBody, "description": "Signed in, but not allowed to do this"},
    404: {"model": ErrorBody, "description": "No such record (or not one of yours)"},
    409: {"model": ErrorBody, "description": "Conflicts with the record's current state"},
    413: {"model": ErrorBody, "description": "The request body is too large"},
    422: {"model": ErrorBody, "description": "The request is not valid"},
    429: {
        "model": ErrorBody,
        "description": "Too many attempts",
        "headers": {
            "Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}
        },
    },
    503: {"model": ErrorBody, "description": "Busy or not ready; try again"},
}


def create_app(
    services: Services, *, cors_origins: Sequence[str] = (), several_workers: bool = False
) -> FastAPI:
    """The API over ``services``; browsers on ``cors_origins`` may call it (CORS)."""
    app = FastAPI(
        title="Imaging Bridge",
        version="0.1.0",
        description="Patient self-service in front of an imaging centre's RIS.",
        docs_url=None,
        redoc_url=None,
    )
    app.state.services = services
    app.state.last_writes = LastWrites()
    app.state.several_workers = several_workers
    install_error_handlers(app, on_refusal=record_object_refusal)
    routers = (
        health,
        auth,
        patients,
        activation,
        catalog,
        slots,
        appointments,
        records,
        preferences,
        messages,
        jwks,
        staff,
        staff_patients,
        staff_preferences,
        staff_catalog,
        staff_messages,
        audit,
        admin_deliveries,
        admin_hl7,
        sms_hooks,
        notifications,
        audit_communications,
    )
    for router in routers:
        app.include_router(router.router, responses=ERROR_RESPONSES)
    install_docs(app)
    # The portal's pages, last: they take only the paths no API route serves.
    api_paths = {context.path or "" for context in iter_route_contexts(app.routes)}
    portal = mount_portal(app, services, api_paths)
    install_request_hygiene(app, max_body_bytes=MAX_BODY_BYTES, pages=portal)

    app.add_middleware(RequestContext)
    install_security(app, cors_origins=cors_origins)
    return app


class RequestContext:
    """Pure ASGI middleware: a request id for every request (the client's ``X-Request-ID``
    when it is a plain token, else a new one), bound to the logs and echoed in the answer;
    then the request's metric and log line, by route template (paths carry ids, and
    whatever a client typed). A client that leaves before the answer is logged as such."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        given = Headers(scope=scope).get("x-request-id", "")
        request_id = given if REQUEST_ID.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.bind_contextvars(request_id=request_id)
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)["X-Request-ID"] = request_id
            await send(message)

        outcome = "abandoned"  # the client left before an answer
        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            outcome = "failed"  # answered 500 by the outermost handler, logged there
            raise
        finally:
            route = getattr(scope.get("route"), "path", "(no route)")
            seconds = time.perf_counter() - started
            method = scope["method"]
            if status:
                observe_request(route, method, status, seconds)
                log.info(
                    "request",
                    method=method,
                    route=route,
                    status=status,
                    duration_ms=round(seconds * 1000, 1),
                )
            else:
                log.info(f"request_{outcome}", method=method, route=route)
            structlog.contextvars.unbind_contextvars("request_id")
