"""The compliance officer's views: the PHI access log (who read which patient's data) and
the alerts raised for them (break-glass grants)."""

from datetime import datetime
from typing import Annotated, Any
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


# The query parameters both views share: a time range and keyset paging, newest first.
From = Annotated[
    str | None, Query(alias="from", max_length=64, description=f"at or after: {INSTANT_HELP}")
]
To = Annotated[str | None, Query(max_length=64, description=f"before: {INSTANT_HELP}")]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]


def _before_id(what: str) -> Any:
    return Query(
        ge=1, le=MAX_ID, description=f"the next page: {what} older than this one (next_before_id)"
    )


def _range(from_: str | None, to: str | None) -> tuple[datetime | None, datetime | None]:
    start, end = _instant("from", from_), _instant("to", to)
    if start is not None and end is not None and start > end:
        raise ApiError(422, "invalid_query", "from must not be after to")
    return start, end


def _described(query: dict[str, object]) -> str:
    """The filters given, as the access log's resource id for this reading."""
    return " ".join(f"{key}={value}" for key, value in query.items() if value is not None)


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
    from_: From = None,
    to: To = None,
    limit: Limit = 100,
    before_id: Annotated[int | None, _before_id("entries")] = None,
) -> AccessPage:
    """Entries matching every filter given: a patient, an actor, a time range (``from``
    inclusive, ``to`` exclusive). At least one filter is needed. Reading the log is itself
    recorded in it (resource ``access_log``)."""
    start, end = _range(from_, to)
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
    query = _described(
        {
            "patient_id": patient_id,
            "actor_id": actor_id,
            "from": start and start.isoformat(),
            "to": end and end.isoformat(),
            "before_id": before_id,
        }
    )
    audit.read("access_log", query, patient_id)
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
    from_: From = None,
    to: To = None,
    limit: Limit = 100,
    before_id: Annotated[int | None, _before_id("alerts")] = None,
) -> AlertPage:
    """Alerts raised in a time range (``from`` inclusive, ``to`` exclusive; both optional).
    Reading them is recorded in the access log (resource ``alerts``)."""
    start, end = _range(from_, to)
    found = services.alerts.search(start=start, end=end, before_id=before_id, limit=limit + 1)
    page = found[:limit]
    query = _described(
        {"from": start and start.isoformat(), "to": end and end.isoformat(), "before_id": before_id}
    )
    audit.read("alerts", query, None)
    return AlertPage(
        items=[AlertOut.model_validate(vars(alert)) for alert in page],
        next_before_id=page[-1].id if len(found) > limit else None,
    )
