"""Transport security for every response, in one place: secure headers, HSTS over HTTPS,
and the CORS allowlist.

API responses get the strictest Content-Security-Policy there is (they are JSON; nothing
in them should ever run or be framed). The interactive docs (/docs, /redoc; see
api.docs) are HTML pages that load Swagger UI and ReDoc from this server and start them
with an inline script: their policy allows scripts from this origin only, and the inline
scripts only by their SHA-256 hashes, computed from the page actually served, so no other
script can run there. No other host appears in it. Styles stay ``'unsafe-inline'`` on
those pages only, because both UIs inject ``<style>`` elements at run time.

Before any route sees a request, ``RequestHygiene`` refuses NUL characters anywhere in its
text (path, query, form or JSON body): PostgreSQL text cannot hold them, and one stored in
an event would stop every projection that copies that text. It also holds bodies to the
size limit when they come without a Content-Length (chunked). The API's paths get its JSON
error body; the portal's get the portal's own error page (``PageRefusals``).
"""

import base64
import hashlib
import re
import sys
import uuid
from collections.abc import Collection, Sequence
from typing import Protocol

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.consistency import HEADER as CONSISTENCY_HEADER
from api.docs import PAGES as DOCS_PAGES
from api.errors import body as error_body
from api.errors import internal_error_body, log_unhandled

HSTS = "max-age=31536000; includeSubDomains"
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# The portal's pages (api.web): no script at all, styles and images from this server only,
# forms posted back to it only.
WEB_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self';"
    " frame-ancestors 'none'; base-uri 'none'"
)
WEB_SCRIPTS = "script-src 'self'; worker-src 'self'"


def web_csp(form_targets: tuple[str, ...] = (), *, scripts: bool = False) -> str:
    """The portal's policy; ``form_targets`` are origins a page's forms may also end up at
    (browsers hold a form's redirect to ``form-action`` too: the results page's "Open
    result" answers with a redirect to the centre's viewer). ``scripts``: the page runs
    scripts from this server and may register this server's service worker (the
    notification preferences page); never inline ones."""
    policy = WEB_CSP
    if form_targets:
        policy = policy.replace(
            "form-action 'self';", f"form-action 'self' {' '.join(form_targets)};"
        )
    if scripts:
        policy = policy.replace("default-src 'none';", f"default-src 'none'; {WEB_SCRIPTS};")
    return policy


DOCS_CSP = (
    "default-src 'none'; script-src {scripts}; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; worker-src blob:; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'none'"
)
ALWAYS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
INLINE_SCRIPT = re.compile(rb"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", re.DOTALL)

# NUL as sent: raw, percent-encoded (query strings, forms), or a JSON escape that is not
# itself an escaped backslash.
NUL_IN_QUERY = re.compile(rb"\x00|%00")
NUL_BY_MEDIA_TYPE = (
    ("json", re.compile(rb"\x00|(?<!\\)(?:\\\\)*\\u0000")),
    ("x-www-form-urlencoded", re.compile(rb"\x00|%00")),
    ("", re.compile(rb"\x00")),
)

CORS_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
CORS_REQUEST_HEADERS = (
    "Authorization",
    "Content-Type",
    "Idempotency-Key",
    "X-Request-ID",
    CONSISTENCY_HEADER,
)
CORS_EXPOSED_HEADERS = ("X-Request-ID", CONSISTENCY_HEADER, "Retry-After")


def docs_policy(page: bytes) -> str:
    """The docs policy allowing the page's own inline scripts (and no others)."""
    digests = {hashlib.sha256(script).digest() for script in INLINE_SCRIPT.findall(page)}
    hashes = sorted(f"'sha256-{base64.b64encode(digest).decode()}'" for digest in digests)
    return DOCS_CSP.format(scripts=" ".join(["'self'", *hashes]))


def _secure(headers: MutableHeaders, *, https: bool, policy: str) -> None:
    for name, value in ALWAYS.items():
        headers[name] = value
    headers.setdefault("Content-Security-Policy", policy)
    # Routes may choose to be cacheable; everything else holds personal data or might.
    headers.setdefault("Cache-Control", "no-store")
    if https:
        # RFC 6797: only over a secure transport (TLS here, or a trusted proxy's).
        headers["Strict-Transport-Security"] = HSTS


class SecureHeaders:
    """Pure ASGI middleware adding the secure headers to every HTTP response."""

    def __init__(self, app: ASGIApp, docs_paths: Collection[str] = ()) -> None:
        self.app = app
        self.docs_paths = frozenset(docs_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        https = scope.get("scheme") == "https"
        if scope["path"] in self.docs_paths:
            await self.app(scope, receive, _DocsPage(send, https=https))
            return

        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                _secure(MutableHeaders(scope=message), https=https, policy=API_CSP)
            await send(message)

        await self.app(scope, receive, send_secured)


class _DocsPage:
    """Holds a docs page back until its body is complete, to hash its inline scripts."""

    def __init__(self, send: Send, *, https: bool) -> None:
        self._send = send
        self._https = https
        self._start: Message | None = None
        self._chunks: list[bytes] = []

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self._start = message
            return
        if message["type"] != "http.response.body" or self._start is None:
            await self._send(message)
            return
        self._chunks.append(message.get("body", b""))
        if message.get("more_body", False):
            return
        page = b"".join(self._chunks)
        headers = MutableHeaders(scope=self._start)
        _secure(headers, https=self._https, policy=docs_policy(page))
        await self._send(self._start)
        await self._send({"type": "http.response.body", "body": page})


class PageRefusals(Protocol):
    """The portal's answer to a request refused before routing, on the paths it serves."""

    def serves(self, path: str) -> bool:
        """Whether ``path`` is one of the portal's (not the API's)."""

    def refusal(self, scope: Scope, status: int) -> ASGIApp:
        """The portal's error page for ``status`` (400, 413, 422), read from nothing but
        the request line and headers (nothing a refused request holds is trusted)."""


class RequestHygiene:
    """Pure ASGI middleware: refuses NUL characters (400 in a page's address, else 422)
    and oversized bodies (413); as JSON, or as ``pages``' error page on its paths."""

    def __init__(
        self, app: ASGIApp, max_body_bytes: int, pages: PageRefusals | None = None
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.pages = pages

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if "\x00" in scope["path"] or NUL_IN_QUERY.search(scope.get("query_string", b"")):
            await self._refused(scope, _nul_refused(), page_status=400)(scope, receive, send)
            return
        if _declared_length(scope) > self.max_body_bytes:  # refused before reading a byte
            await self._refused(scope, self._too_large())(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await self._refused(scope, self._too_large())(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        content = b"".join(chunks)
        media_type = Headers(scope=scope).get("content-type", "").lower()
        nul = next(pattern for name, pattern in NUL_BY_MEDIA_TYPE if name in media_type)
        if nul.search(content):
            await self._refused(scope, _nul_refused())(scope, receive, send)
            return
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if delivered:
                return await receive()
            delivered = True
            return {"type": "http.request", "body": content, "more_body": False}

        await self.app(scope, replay, send)

    def _refused(self, scope: Scope, answer: JSONResponse, page_status: int = 0) -> ASGIApp:
        """``answer`` on the API's paths; on the portal's, its page for ``page_status``
        (a bad address is 400 there) or the answer's own status."""
        if self.pages is None or not self.pages.serves(scope["path"]):
            return answer
        return self.pages.refusal(scope, page_status or answer.status_code)

    def _too_large(self) -> JSONResponse:
        return JSONResponse(
            error_body(
                "request_too_large", f"request bodies are limited to {self.max_body_bytes} bytes"
            ),
            status_code=413,
        )


def _declared_length(scope: Scope) -> int:
    """The body length the client announced (a length that does not read counts as too
    long: uvicorn refuses most of those before they reach us)."""
    try:
        return int(Headers(scope=scope).get("content-length") or 0)
    except ValueError:
        return sys.maxsize


def _nul_refused() -> JSONResponse:
    return JSONResponse(
        error_body("validation_error", "text must not contain NUL characters (U+0000)"),
        status_code=422,
    )


def install_request_hygiene(
    app: FastAPI, *, max_body_bytes: int, pages: PageRefusals | None = None
) -> None:
    """Refuse what no route can store (the portal's paths with ``pages``' error page);
    install it before the request-context middleware so that refusals are logged with
    their request id like any other answer."""
    app.add_middleware(RequestHygiene, max_body_bytes=max_body_bytes, pages=pages)


def install_security(app: FastAPI, *, cors_origins: Sequence[str] = ()) -> None:
    """Add CORS for exactly ``cors_origins`` (none: no CORS at all) and, outermost, the
    secure headers, so that preflight answers carry them too; and Starlette's outermost
    error handler, with the same headers. Call it last in create_app."""
    if cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(cors_origins),
            allow_methods=list(CORS_METHODS),
            allow_headers=list(CORS_REQUEST_HEADERS),
            expose_headers=list(CORS_EXPOSED_HEADERS),
            # Bearer tokens, no cookies: browsers need not send credentials.
            allow_credentials=False,
            max_age=600,
        )
    app.add_middleware(SecureHeaders, docs_paths=DOCS_PAGES)
    app.add_exception_handler(Exception, _failed_outside_the_routes)


def _failed_outside_the_routes(request: Request, error: Exception) -> JSONResponse:
    """Starlette's outermost error handler, for an error in a middleware itself (routes'
    errors are answered by ``api.errors.UnhandledErrors``): the same body, and the headers
    the middleware would have added, since the answer goes out around them."""
    request_id = getattr(request.state, "request_id", None) or uuid.uuid4().hex
    log_unhandled(error, request_id)
    response = JSONResponse(internal_error_body(request_id), status_code=500)
    _secure(response.headers, https=request.url.scheme == "https", policy=API_CSP)
    response.headers["X-Request-ID"] = request_id
    return response
