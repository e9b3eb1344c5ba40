"""The FastAPI application: routers, error bodies, request ids, secure headers."""

import re
import uuid
from collections.abc import Awaitable, Callable

import structlog
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from api.consistency import HEADER, LastWrites
from api.errors import body, install_error_handlers
from api.routers import (
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
from application.services import Services

REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
MAX_BODY_BYTES = 64 * 1024
log = structlog.get_logger("api")


def create_app(services: Services) -> FastAPI:
    app = FastAPI(
        title="Imaging Bridge",
        version="0.1.0",
        description="Patient self-service in front of an imaging centre's RIS.",
    )
    app.state.services = services
    app.state.last_writes = LastWrites()
    install_error_handlers(app)
    routers = (health, auth, patients, catalog, slots, appointments, staff, staff_catalog, audit)
    for router in routers:
        app.include_router(router.router)

    @app.middleware("http")
    async def request_context(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
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
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cache-Control"] = "no-store"
        response.headers.setdefault("Access-Control-Expose-Headers", HEADER)
        log.info(
            "request",
            method=request.method,
            path=request.url.path,
            status=response.status_code,
        )
        structlog.contextvars.unbind_contextvars("request_id")
        return response

    return app
