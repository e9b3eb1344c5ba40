from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import Public, ServicesDep

router = APIRouter(tags=["health"], dependencies=[Public])


@router.get("/healthz", summary="The process is up")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="The database is reachable and the projections are running")
def readyz(services: ServicesDep) -> JSONResponse:
    database = services.health.database_ok()
    projections = services.health.projections_ok()
    ready = database and projections
    return JSONResponse(
        {
            "status": "ready" if ready else "not_ready",
            "database": database,
            "projections": projections,
        },
        status_code=200 if ready else 503,
    )
