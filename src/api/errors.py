"""Every error body is ``{code, detail}`` with a stable code, the unexpected ones too."""

import math
import traceback
from collections.abc import Callable
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from domain.errors import DomainError

log = structlog.get_logger("api")

STATUS_BY_CODE = {
    "not_found": 404,
    "slot_unavailable": 409,
    "email_taken": 409,
    "activation_failed": 400,
    "invalid_transition": 409,
    "idempotency_key_reused": 409,
    "booking_limit_reached": 409,
    "order_not_waiting": 409,
    "no_viewer": 409,
    "thread_closed": 409,
    "invalid_credentials": 401,
    "invalid_token": 401,
    "second_factor_required": 401,
    "account_disabled": 403,
    "second_factor_state": 409,
    "delivery_state": 409,
    "forbidden": 403,
    "bad_signature": 403,
    "too_many_attempts": 429,
    "try_again": 503,
}
DEFAULT_STATUS = 422
CODE_BY_STATUS = {
    400: "bad_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
}


class ApiError(HTTPException):
    """An HTTP error with a stable code, raised by the API layer itself."""

    def __init__(
        self, status_code: int, code: str, detail: str, headers: dict[str, str] | None = None
    ):
        super().__init__(status_code=status_code, detail=detail, headers=headers)
        self.code = code


def body(code: str, detail: str) -> dict[str, str]:
    return {"code": code, "detail": detail}


def internal_error_body(request_id: str) -> dict[str, str]:
    """The answer to an error nobody expected: generic, but quotable by its request id."""
    return body(
        "internal_error",
        f"something went wrong on our side and it has been logged; quote request id"
        f" {request_id} when you report it",
    )


def log_unhandled(error: BaseException, request_id: str) -> None:
    """Log an unexpected error by its kind and where it happened, never its message:
    messages (a database's in particular) can quote the values of the request."""
    frames = traceback.extract_tb(error.__traceback__)[-8:]
    log.error(
        "unhandled_error",
        request_id=request_id,
        error=type(error).__name__,
        where=[f"{frame.filename}:{frame.lineno} in {frame.name}" for frame in frames],
    )


class UnhandledErrors:
    """Pure ASGI middleware, the innermost one: an exception no handler took becomes the
    ``internal_error`` JSON body (500), logged. The middleware outside it (request id,
    request log line, secure headers) then handle it as any other answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched)
        # A catch-all on purpose: this is the last resort, where any error gets one body.
        except Exception as error:
            request_id = str(scope.get("state", {}).get("request_id", ""))
            log_unhandled(error, request_id)
            if started:
                raise  # half an answer went out: only closing the connection tells the client
            answer = JSONResponse(internal_error_body(request_id), status_code=500)
            await answer(scope, receive, send)


def _validation_detail(error: RequestValidationError) -> str:
    parts = []
    for problem in error.errors()[:5]:
        where = ".".join(str(p) for p in problem.get("loc", ()) if p not in ("body", "query"))
        parts.append(
            f"{where}: {problem.get('msg', 'invalid')}" if where else problem.get("msg", "")
        )
    return "; ".join(parts) or "the request is not valid"


RefusalHook = Callable[[Request, int, str], None]


def install_error_handlers(app: FastAPI, on_refusal: RefusalHook | None = None) -> None:
    """The ``{code, detail}`` handlers, and ``UnhandledErrors``: call it before adding any
    other middleware, so that it sits inside all of them. ``on_refusal(request, status,
    detail)`` hears of every 403 and 404 answer (the API logs them: api.deps)."""
    app.add_middleware(UnhandledErrors)

    def refused(request: Request, status: int, detail: str) -> None:
        if on_refusal is not None and status in (403, 404):
            on_refusal(request, status, detail)

    @app.exception_handler(DomainError)
    def domain_error(request: Request, error: DomainError) -> JSONResponse:
        status = STATUS_BY_CODE.get(error.code, DEFAULT_STATUS)
        refused(request, status, error.detail)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
        content: dict[str, Any] = body(error.code, error.detail)
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
        challenge = getattr(error, "challenge", None)
        if challenge is not None:
            content["challenge"] = challenge
        return JSONResponse(content, status_code=status, headers=headers)

    @app.exception_handler(RequestValidationError)
    def invalid_request(_: Request, error: RequestValidationError) -> JSONResponse:
        # A value outside the accepted range (a date in 9999, an offset of +23:59) has its
        # own code, so that a client can tell it from a malformed request.
        kinds = {problem.get("type") for problem in error.errors()}
        code = "out_of_range" if kinds == {"out_of_range"} else "validation_error"
        return JSONResponse(body(code, _validation_detail(error)), status_code=422)

    @app.exception_handler(HTTPException)
    def http_error(request: Request, error: HTTPException) -> JSONResponse:
        code = getattr(error, "code", None) or CODE_BY_STATUS.get(error.status_code, "http_error")
        detail: Any = error.detail if isinstance(error.detail, str) else str(error.detail)
        refused(request, error.status_code, detail)
        return JSONResponse(
            body(code, detail),
            status_code=error.status_code,
            headers=getattr(error, "headers", None),
        )
