"""The interactive API docs, Swagger UI at /docs and ReDoc at /redoc, with their scripts,
styles and icon served by this server from an installed package (``fastapi-offline``
ships current builds of both in its ``static`` folder): the docs work offline, and the
pages' Content-Security-Policy (api.security) names no other host."""

from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response

DOCS_URL = "/docs"
REDOC_URL = "/redoc"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"
ASSETS_URL = "/docs/assets"
# The HTML pages, which get the docs policy; the assets are plain files.
PAGES = (DOCS_URL, REDOC_URL, OAUTH2_REDIRECT_URL)
ASSETS_PACKAGE = ("fastapi_offline", "static")
# No badge from the public validator service (it would be the one outside request).
SWAGGER_UI_PARAMETERS = {"validatorUrl": None}


class _Assets(StaticFiles):
    """The docs' files, cacheable for a day (they change only with the package)."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "public, max-age=86400"
        return response


def install_docs(app: FastAPI) -> None:
    """Serve the docs pages and their assets; create ``app`` with ``docs_url=None`` and
    ``redoc_url=None`` (FastAPI's own pages load their assets from a CDN)."""
    app.mount(ASSETS_URL, _Assets(packages=[ASSETS_PACKAGE]), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    def root(request: Request) -> str:
        return str(request.scope.get("root_path", "")).rstrip("/")

    async def swagger_ui(request: Request) -> HTMLResponse:
        base = root(request)
        return get_swagger_ui_html(
            openapi_url=base + openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{base}{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{base}{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{base}{ASSETS_URL}/favicon.png",
            oauth2_redirect_url=base + OAUTH2_REDIRECT_URL,
            swagger_ui_parameters=SWAGGER_UI_PARAMETERS,
        )

    async def oauth2_redirect(_: Request) -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    async def redoc(request: Request) -> HTMLResponse:
        base = root(request)
        return get_redoc_html(
            openapi_url=base + openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{base}{ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{base}{ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )

    app.add_route(DOCS_URL, swagger_ui, include_in_schema=False)
    app.add_route(OAUTH2_REDIRECT_URL, oauth2_redirect, include_in_schema=False)
    app.add_route(REDOC_URL, redoc, include_in_schema=False)
