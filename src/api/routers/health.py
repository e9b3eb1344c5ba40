from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import Public, ServicesDep

router = APIRouter(tags=["health"], dependencies=[Public])


@router.get("/healthz", summary="The process is up")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="The database is reachable and the projections are running and caught up",
    description=(
        "Ready when PostgreSQL answers and every read model runs and has caught up with "
        "the log as it was when the process started. `behind` names read models not "
        "caught up (by how many events); `parked` names read models that parked events "
        "they could not apply: they keep running, so the process stays ready, but the "
        "operator should look (`imaging-bridge projections status`)."
    ),
)
def readyz(services: ServicesDep) -> JSONResponse:
    database = services.health.database_ok()
    projections = services.health.projections_ok()
    ready = database and projections
    read_models = services.health.read_models() if database else {"behind": {}, "parked": {}}
    return JSONResponse(
        {
            "status": "ready" if ready else "not_ready",
            "database": database,
            "projections": projections,
            **read_models,
        },
        status_code=200 if ready else 503,
    )
