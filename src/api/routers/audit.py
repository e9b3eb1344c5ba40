"""The compliance officer's views: the PHI access log (who read which patient's data) and
the alerts raised for them (break-glass grants)."""

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query

from api.deps import AuditDep, ServicesDep, requires
from api.errors import ApiError
from api.schemas.audit import AccessEntryOut, AccessPage, AlertOut, AlertPage
from api.schemas.common import INSTANT_HELP
from application.permissions import Permission
from application.ports import AccessRecord
from domain.schedule import out_of_range_problem

router = APIRouter(prefix="/v1/audit", tags=["audit"])

MAX_LIMIT = 1000
# Entry and alert ids are PostgreSQL bigints: a larger before_id is refused here, not
# handed to the database (which answers NumericValueOutOfRange, a 500).
MAX_ID = 2**63 - 1


def _instant(name: str, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise ApiError(422, "invalid_query", f"{name} must be {INSTANT_HELP}")
    problem = out_of_range_problem(parsed)
    if problem is not None:
        raise ApiError(422, "out_of_range", f"{name}: {problem}")
    return parsed


def _out(entry_id: int, entry: AccessRecord) -> AccessEntryOut:
    return AccessEntryOut.model_validate({**vars(entry), "id": entry_id})


@router.get(
    "/access",
    dependencies=[requires(Permission.AUDIT_READ)],
    response_model=AccessPage,
    summary="Who read whose data: the PHI access log, newest first",
)
def access(
    services: ServicesDep,
    audit: AuditDep,
    patient_id: Annotated[UUID | None, Query(description="entries about this patient")] = None,
    actor_id: Annotated[
        str | None,
        Query(max_length=128, description="entries by this account (its id)"),
    ] = None,
    from_: Annotated[
        str | None,
        Query(alias="from", max_length=64, description=f"at or after: {INSTANT_HELP}"),
    ] = None,
    to: Annotated[str | None, Query(max_length=64, description=f"before: {INSTANT_HELP}")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    before_id: Annotated[
        int | None,
        Query(
            ge=1,
            le=MAX_ID,
            description="the next page: entries older than this one (next_before_id)",
        ),
    ] = None,
) -> AccessPage:
    """Entries matching every filter given: a patient, an actor, a time range (``from``
    inclusive, ``to`` exclusive). At least one filter is needed. Reading the log is itself
    recorded in it (resource ``access_log``)."""
    start, end = _instant("from", from_), _instant("to", to)
    if start is not None and end is not None and start > end:
        raise ApiError(422, "invalid_query", "from must not be after to")
    if patient_id is None and actor_id is None and start is None and end is None:
        raise ApiError(
            422, "invalid_query", "give at least one of patient_id, actor_id, from or to"
        )
    found = services.access_log.search(
        patient_id=patient_id,
        actor_id=actor_id,
        start=start,
        end=end,
        before_id=before_id,
        limit=limit + 1,
    )
    page = found[:limit]
    # Logged after the query, so that a page never shows the entry of its own reading;
    # before the answer, so that nothing is shown unlogged.
    query = {
        "patient_id": patient_id,
        "actor_id": actor_id,
        "from": start and start.isoformat(),
        "to": end and end.isoformat(),
        "before_id": before_id,
    }
    audit.read(
        "access_log",
        " ".join(f"{key}={value}" for key, value in query.items() if value is not None),
        patient_id,
    )
    return AccessPage(
        items=[_out(entry_id, entry) for entry_id, entry in page],
        next_before_id=page[-1][0] if len(found) > limit else None,
    )


@router.get(
    "/alerts",
    dependencies=[requires(Permission.AUDIT_READ)],
    response_model=AlertPage,
    summary="Alerts for compliance (break-glass grants), newest first",
)
def alerts(
    services: ServicesDep,
    audit: AuditDep,
    from_: Annotated[
        str | None,
        Query(alias="from", max_length=64, description=f"at or after: {INSTANT_HELP}"),
    ] = None,
    to: Annotated[str | None, Query(max_length=64, description=f"before: {INSTANT_HELP}")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    before_id: Annotated[
        int | None,
        Query(
            ge=1,
            le=MAX_ID,
            description="the next page: alerts older than this one (next_before_id)",
        ),
    ] = None,
) -> AlertPage:
    """Alerts raised in a time range (``from`` inclusive, ``to`` exclusive; both optional).
    Reading them is recorded in the access log (resource ``alerts``)."""
    start, end = _instant("from", from_), _instant("to", to)
    if start is not None and end is not None and start > end:
        raise ApiError(422, "invalid_query", "from must not be after to")
    found = services.alerts.search(start=start, end=end, before_id=before_id, limit=limit + 1)
    page = found[:limit]
    query = {
        "from": start and start.isoformat(),
        "to": end and end.isoformat(),
        "before_id": before_id,
    }
    audit.read(
        "alerts",
        " ".join(f"{key}={value}" for key, value in query.items() if value is not None),
        None,
    )
    return AlertPage(
        items=[AlertOut.model_validate(vars(alert)) for alert in page],
        next_before_id=page[-1].id if len(found) > limit else None,
    )
