"""One catalog per page: the portal's requests read the catalog read model once each
(``application.catalog_scope``), however many of a page's parts ask for it."""

from starlette.types import ASGIApp, Receive, Scope, Send

from application.catalog_scope import one_catalog_read


class OneCatalogReadPerRequest:
    """Pure ASGI middleware: each HTTP request runs inside ``one_catalog_read()``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with one_catalog_read():
            await self.app(scope, receive, send)
