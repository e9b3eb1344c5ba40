"""The portal as an application mounted in the API's process: its pages, its stylesheet,
its error pages (HTML, never a stack trace), its Content-Security-Policy, and the
language switch.

It is mounted after every API route and claims only the paths the API does not serve,
so the API keeps its JSON answers (404, 405) for everything under /v1 and its own paths."""

from collections.abc import Collection
from urllib.parse import urlencode

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import MutableHeaders, QueryParams
from starlette.exceptions import HTTPException
from starlette.routing import Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import STATUS_BY_CODE, log_unhandled
from api.security import web_csp
from api.web.i18n import LANGUAGES, N_
from api.web.one_read import OneCatalogReadPerRequest
from api.web.pages import (
    account,
    activation,
    appointments,
    booking,
    messages,
    preferences,
    records,
    signing_in,
)
from api.web.render import Pages
from api.web.visit import (
    FORM_TARGETS,
    LANGUAGE_COOKIE,
    LANGUAGE_COOKIE_AGE,
    PAGE_SCRIPTS,
    PageRefused,
    SignInRequired,
    Visit,
    get_visit,
    language_of,
    set_cookie,
)
from application.services import Services
from domain.errors import DomainError

log = structlog.get_logger("web")

# Friendly words for errors a page did not expect (each page handles the ones it does).
ERROR_WORDS = {
    400: (N_("This page address is not right"), N_("Check the address, or start again.")),
    403: (N_("You cannot use this page"), N_("Sign in with the right account.")),
    404: (N_("Page not found"), N_("If you typed the address, check it is correct.")),
    405: (N_("Page not found"), N_("If you typed the address, check it is correct.")),
    409: (
        N_("That could not be done"),
        N_("Things changed since the page was shown. Start again."),
    ),
    413: (N_("That is too much to send"), N_("Send less, then try again.")),
    422: (N_("That could not be done"), N_("Check what you entered, then try again.")),
    429: (N_("Too many attempts"), N_("Wait a few minutes, then try again.")),
    503: (N_("Sorry, we are busy"), N_("Try again in a moment.")),
}
SERVER_ERROR = (
    N_("Sorry, there is a problem with the service"),
    N_("Try again later. If you report it, quote this reference: %(reference)s"),
)


def create_web_app(services: Services) -> FastAPI:
    """The portal's pages over ``services``."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.state.services = services
    app.state.pages = Pages()
    for module in (
        signing_in,
        booking,
        appointments,
        records,
        messages,
        activation,
        account,
        preferences,
    ):
        app.include_router(module.router)
    app.add_api_route("/static/{name}", static_file, methods=["GET"], include_in_schema=False)
    app.add_api_route("/{rest:path}", not_found, methods=["GET"], include_in_schema=False)
    _install_error_pages(app)
    app.add_middleware(PortalMiddleware)
    app.add_middleware(OneCatalogReadPerRequest)
    return app


def mount_portal(api: FastAPI, services: Services, api_paths: Collection[str]) -> "PortalMount":
    """Serve the portal from ``api`` for every path the API does not own."""
    mount = PortalMount(create_web_app(services), frozenset(api_paths))
    api.router.routes.append(mount)
    return mount


class PortalMount(Mount):
    """A mount at the root that leaves /v1 and the API's own paths to the API; it also
    answers, with its error page, what the API refuses before routing on its paths
    (``api.security.PageRefusals``)."""

    def __init__(self, app: FastAPI, api_paths: frozenset[str]) -> None:
        super().__init__("", app=app)
        self.api_paths = api_paths
        self.web = app

    def serves(self, path: str) -> bool:
        return not (path == "/v1" or path.startswith("/v1/") or path in self.api_paths)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http" or not self.serves(scope.get("path", "")):
            return Match.NONE, {}
        return super().matches(scope)

    def refusal(self, scope: Scope, status: int) -> ASGIApp:
        """The error page for ``status``, shown signed out (the session is not read for a
        refused request) and for the page's address without what was refused in it."""
        clean = {**scope, "path": scope["path"].replace("\x00", ""), "query_string": b""}
        request = Request(clean)
        visit = Visit(request, self.web.state.services, language_of(request))
        pages: Pages = self.web.state.pages
        title, message = ERROR_WORDS.get(status, ERROR_WORDS[400])
        response = pages.render(
            visit, "error.html", status=status, title=title, message=message, variables={}
        )
        response.headers["Content-Security-Policy"] = web_csp()
        return response


def static_file(name: str, request: Request) -> Response:
    found = request.app.state.pages.static.get(name)
    if found is None:
        raise HTTPException(404)
    headers = {"ETag": f'"{found.version}"'}
    if request.query_params.get("v") == found.version:
        headers["Cache-Control"] = "public, max-age=31536000, immutable"
    else:
        headers["Cache-Control"] = "public, max-age=300"
    if request.headers.get("if-none-match") == headers["ETag"]:
        return Response(status_code=304, headers=headers)
    return Response(found.body, media_type=found.media_type, headers=headers)


def not_found(rest: str) -> Response:
    raise HTTPException(404)


def _visit(request: Request) -> Visit:
    visit = getattr(request.state, "visit", None)
    return visit if isinstance(visit, Visit) else get_visit(request)


def error_page(
    request: Request, status: int, title: str, message: str, **variables: object
) -> Response:
    visit = _visit(request)
    pages: Pages = request.app.state.pages
    return pages.render(
        visit, "error.html", status=status, title=title, message=message, variables=variables
    )


def _install_error_pages(app: FastAPI) -> None:
    @app.exception_handler(SignInRequired)
    def sign_in_first(request: Request, error: SignInRequired) -> Response:
        return _visit(request).finish(RedirectResponse(error.next_path, status_code=303))

    @app.exception_handler(PageRefused)
    def refused(request: Request, error: PageRefused) -> Response:
        return error_page(request, error.status, error.title, error.message, **error.variables)

    @app.exception_handler(HTTPException)
    def http_error(request: Request, error: HTTPException) -> Response:
        title, message = ERROR_WORDS.get(error.status_code, ERROR_WORDS[400])
        return error_page(request, error.status_code, title, message)

    @app.exception_handler(RequestValidationError)
    def invalid(request: Request, _: RequestValidationError) -> Response:
        return error_page(request, 400, *ERROR_WORDS[400])

    @app.exception_handler(DomainError)
    def domain_error(request: Request, error: DomainError) -> Response:
        status = STATUS_BY_CODE.get(error.code, 422)
        title, message = ERROR_WORDS.get(status, ERROR_WORDS[422])
        return error_page(request, status, title, message)


class PortalMiddleware:
    """Pure ASGI middleware around the pages: the portal's CSP on every answer, the
    ``?lang=`` switch (sets the cookie, then shows the same page without it), and an
    HTML page for any error nobody expected (logged, with a reference to quote)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        language = request.query_params.get("lang")
        if request.method == "GET" and language is not None:
            await self._switch_language(request, language)(scope, receive, send)
            return
        started = False

        async def send_with_policy(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                state = scope.get("state", {})
                policy = web_csp(state.get(FORM_TARGETS, ()), scripts=bool(state.get(PAGE_SCRIPTS)))
                MutableHeaders(scope=message)["Content-Security-Policy"] = policy
            await send(message)

        try:
            await self.app(scope, receive, send_with_policy)
        # A catch-all on purpose: a page that fails answers a page, never a traceback.
        except Exception as error:
            request_id = str(scope.get("state", {}).get("request_id", ""))
            log_unhandled(error, request_id)
            if started:
                raise
            answer = _failure_page(request, request_id)
            await answer(scope, receive, send_with_policy)

    @staticmethod
    def _switch_language(request: Request, language: str) -> Response:
        kept = QueryParams([(k, v) for k, v in request.query_params.multi_items() if k != "lang"])
        target = request.url.path + (f"?{urlencode(kept.multi_items())}" if kept else "")
        response = RedirectResponse(target, status_code=303)
        if language in LANGUAGES:
            set_cookie(
                response,
                LANGUAGE_COOKIE,
                language,
                https=request.url.scheme == "https",
                max_age=int(LANGUAGE_COOKIE_AGE.total_seconds()),
            )
        return response


def _failure_page(request: Request, request_id: str) -> Response:
    """The 500 page, rendered without touching the database (it may be what failed)."""
    services: Services = request.app.state.services
    visit = Visit(request, services, language_of(request))
    pages: Pages = request.app.state.pages
    return pages.render(
        visit,
        "error.html",
        status=500,
        title=SERVER_ERROR[0],
        message=SERVER_ERROR[1],
        variables={"reference": request_id},
        bare=True,
    )
