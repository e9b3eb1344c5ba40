"""The API as an ASGI application factory, for ``serve --workers N``: each worker process
builds its own runtime on the same database (nothing in the background) and serves
requests; the process that started them runs the projections, listener and workers."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from adapters.log_setup import configure_logging
from adapters.settings import Settings
from api.app import create_app
from imaging_bridge.bootstrap import TOOL, build


def create() -> FastAPI:
    settings = Settings()
    configure_logging(settings.log_level, json=settings.log_json)
    runtime = build(settings, TOOL, create=False, migrate=False)
    app = create_app(runtime.services, cors_origins=settings.cors_origins, several_workers=True)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            runtime.close()

    app.router.lifespan_context = lifespan
    return app
