"""The FastAPI application: routers, error bodies, request ids, secure headers."""

import re
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import structlog
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from api.consistency import LastWrites
from api.deps import record_object_refusal
from api.docs import install_docs
from api.errors import body, install_error_handlers
from api.metrics import observe_request
from api.routers import (
    admin_deliveries,
    admin_hl7,
    appointments,
    audit,
    auth,
    catalog,
    health,
    patients,
    slots,
    staff,
    staff_catalog,
)
from api.schemas.common import ErrorBody
from api.security import install_request_hygiene, install_security
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
        catalog,
        slots,
        appointments,
        staff,
        staff_catalog,
        audit,
        admin_deliveries,
        admin_hl7,
    )
    for router in routers:
        app.include_router(router.router, responses=ERROR_RESPONSES)
    install_docs(app)
    install_request_hygiene(app, max_body_bytes=MAX_BODY_BYTES)

    @app.middleware("http")
    async def request_context(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        given = request.headers.get("X-Request-ID", "")
        request_id = given if REQUEST_ID.match(given) else uuid.uuid4().hex
        request.state.request_id = request_id
        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            length = int(request.headers.get("content-length") or 0)
        except ValueError:
            length = MAX_BODY_BYTES + 1
        if length > MAX_BODY_BYTES:
            response: Response = JSONResponse(
                body("request_too_large", f"request bodies are limited to {MAX_BODY_BYTES} bytes"),
                status_code=413,
            )
        else:
            response = await call_next(request)
        response.headers["X-Request-ID"] = request_id
        # The route's template, not the path: paths carry ids, and whatever a client typed.
        route = getattr(request.scope.get("route"), "path", "(no route)")
        seconds = time.perf_counter() - started
        observe_request(route, request.method, response.status_code, seconds)
        log.info(
            "request",
            method=request.method,
            route=route,
            status=response.status_code,
            duration_ms=round(seconds * 1000, 1),
        )
        structlog.contextvars.unbind_contextvars("request_id")
        return response

    install_security(app, cors_origins=cors_origins)
    return app
