"""Every error body is ``{code, detail}`` with a stable code."""

import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from domain.errors import DomainError

STATUS_BY_CODE = {
    "not_found": 404,
    "slot_unavailable": 409,
    "email_taken": 409,
    "invalid_transition": 409,
    "idempotency_key_reused": 409,
    "invalid_credentials": 401,
    "invalid_token": 401,
    "second_factor_required": 401,
    "account_disabled": 403,
    "second_factor_state": 409,
    "delivery_state": 409,
    "forbidden": 403,
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


def _validation_detail(error: RequestValidationError) -> str:
    parts = []
    for problem in error.errors()[:5]:
        where = ".".join(str(p) for p in problem.get("loc", ()) if p not in ("body", "query"))
        parts.append(
            f"{where}: {problem.get('msg', 'invalid')}" if where else problem.get("msg", "")
        )
    return "; ".join(parts) or "the request is not valid"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    def domain_error(_: Request, error: DomainError) -> JSONResponse:
        status = STATUS_BY_CODE.get(error.code, DEFAULT_STATUS)
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
        return JSONResponse(body("validation_error", _validation_detail(error)), status_code=422)

    @app.exception_handler(HTTPException)
    def http_error(_: Request, error: HTTPException) -> JSONResponse:
        code = getattr(error, "code", None) or CODE_BY_STATUS.get(error.status_code, "http_error")
        detail: Any = error.detail if isinstance(error.detail, str) else str(error.detail)
        return JSONResponse(
            body(code, detail),
            status_code=error.status_code,
            headers=getattr(error, "headers", None),
        )
