"""Staff's side of secure messages: the threads of the patients they may reach (their
centres', or under break-glass), filtered by assignment, unread and status; one thread
(which marks it read for staff); a reply; assignment; closing and reopening; writing to
a patient first. Every thread listed or read is a PHI read in the access log, every
message written an entry too."""

from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Request

from api.deps import (
    ActorDep,
    AuditDep,
    Consistency,
    ConsistencyDep,
    ServicesDep,
    record_access,
    requires,
)
from api.routers.messages import list_read
from api.schemas.messages import (
    Assignment,
    NewMessage,
    PostedOut,
    StaffNewThread,
    StaffThreadOut,
    StaffThreadsOut,
)
from application.errors import NotFoundError
from application.messaging_views import MAX_LISTED, Posted, StaffFilter
from application.permissions import Permission
from application.ports import Principal
from application.services import Services

router = APIRouter(prefix="/v1/staff/messages", tags=["staff"])

RESOURCE = "secure_thread"
Answerer = Annotated[Principal, requires(Permission.MESSAGES_STAFF)]


def answered(
    request: Request,
    services: Services,
    principal: Principal,
    consistency: Consistency,
    posted: Posted,
    action: str,
) -> PostedOut:
    """The answer to a change of a patient's thread (a message, assignment, closing): its
    position noted for read-your-writes, the change in the access log."""
    consistency.wrote(posted.position)
    record_access(
        request,
        services,
        actor_id=str(principal.account_id),
        role=principal.role,
        patient_id=posted.patient_id,
        resource=RESOURCE,
        resource_id=str(posted.thread_id),
        action=action,
        outcome="allowed",
    )
    return PostedOut(thread_id=posted.thread_id)


@router.get("", response_model=StaffThreadsOut, summary="Patients' conversations with the centre")
def threads(
    principal: Answerer,
    services: ServicesDep,
    consistency: ConsistencyDep,
    audit: AuditDep,
    assigned: Annotated[
        Literal["any", "unassigned", "mine"],
        Query(description="anyone's, nobody's yet, or assigned to me"),
    ] = "any",
    unread: Annotated[bool, Query(description="only those with messages staff have not read")] = (
        False
    ),
    status: Annotated[Literal["open", "closed"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LISTED)] = 50,
) -> StaffThreadsOut:
    """Latest message first."""
    list_read(consistency, services)
    query = StaffFilter(principal.account_id, assigned, unread, status, limit)
    found = services.messaging.staff_threads(principal, query)
    for summary in found:
        audit.read(RESOURCE, str(summary.id), summary.patient_id)
    if not found:
        audit.read(RESOURCE, "", None, outcome="none_found")
    return StaffThreadsOut.model_validate({"items": found}, from_attributes=True)


@router.post(
    "", status_code=201, response_model=PostedOut, summary="Write to a patient (a new conversation)"
)
def start(
    body: StaffNewThread,
    principal: Answerer,
    actor: ActorDep,
    services: ServicesDep,
    consistency: ConsistencyDep,
    request: Request,
) -> PostedOut:
    posted = services.messaging.staff_start(
        principal, body.patient_id, body.subject, body.body, actor
    )
    return answered(request, services, principal, consistency, posted, "post")


@router.get("/{thread_id}", response_model=StaffThreadOut, summary="One conversation")
def thread(
    thread_id: UUID,
    principal: Answerer,
    actor: ActorDep,
    services: ServicesDep,
    consistency: ConsistencyDep,
    audit: AuditDep,
) -> StaffThreadOut:
    """Every message, oldest first; staff's side is marked read (``unread`` counts the
    patient's messages no member of staff had seen before this request)."""
    try:
        view, marked = services.messaging.staff_read(principal, thread_id, actor)
    except NotFoundError:
        audit.read(RESOURCE, str(thread_id), None, outcome="denied_or_missing")
        raise
    consistency.wrote(marked.position)
    audit.read(RESOURCE, str(thread_id), view.patient_id, reason=view.reach_reason)
    answer = StaffThreadOut.model_validate(view)
    answer.unread = view.unread_by_staff
    return answer


@router.post(
    "/{thread_id}",
    status_code=201,
    response_model=PostedOut,
    summary="Reply to the patient",
    description="409 `thread_closed` when it is closed: reopen it first.",
)
def reply(
    thread_id: UUID,
    body: NewMessage,
    principal: Answerer,
    actor: ActorDep,
    services: ServicesDep,
    consistency: ConsistencyDep,
    request: Request,
) -> PostedOut:
    posted = services.messaging.reply(principal, thread_id, body.body, actor)
    return answered(request, services, principal, consistency, posted, "post")


@router.post(
    "/{thread_id}/assign", response_model=PostedOut, summary="Give it to a member of staff"
)
def assign(
    thread_id: UUID,
    body: Assignment,
    principal: Answerer,
    actor: ActorDep,
    services: ServicesDep,
    consistency: ConsistencyDep,
    request: Request,
) -> PostedOut:
    posted = services.messaging.assign(principal, thread_id, body.staff_id, actor)
    return answered(request, services, principal, consistency, posted, "assign")


@router.post("/{thread_id}/close", response_model=PostedOut, summary="Close it")
def close(
    thread_id: UUID,
    principal: Answerer,
    actor: ActorDep,
    services: ServicesDep,
    consistency: ConsistencyDep,
    request: Request,
) -> PostedOut:
    posted = services.messaging.close(principal, thread_id, actor)
    return answered(request, services, principal, consistency, posted, "close")


@router.post("/{thread_id}/reopen", response_model=PostedOut, summary="Open it again")
def reopen(
    thread_id: UUID,
    principal: Answerer,
    actor: ActorDep,
    services: ServicesDep,
    consistency: ConsistencyDep,
    request: Request,
) -> PostedOut:
    posted = services.messaging.reopen(principal, thread_id, actor)
    return answered(request, services, principal, consistency, posted, "reopen")
