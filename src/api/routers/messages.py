"""A patient's secure messages with the centre: their threads, a new one, one thread
with its messages (which marks it read), and a reply. Another patient's thread answers
404. Every read and every message written is in the PHI access log."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Request

from api.deps import (
    ActorDep,
    AuditDep,
    Consistency,
    ConsistencyDep,
    ServicesDep,
    record_access,
    requires,
)
from api.errors import ApiError
from api.limits import patient_rate_limit
from api.schemas.messages import NewMessage, NewThread, PostedOut, ThreadOut, ThreadsOut
from application.base import Position
from application.errors import NotFoundError
from application.permissions import Permission
from application.ports import Principal
from application.services import Services

router = APIRouter(prefix="/v1/me/messages", tags=["secure messages"])

RESOURCE = "secure_thread"
# Messages a patient may write per hour, from any address.
MESSAGES_PER_HOUR = 30
MESSAGE_BUDGET = patient_rate_limit(
    "secure_message", lambda _: MESSAGES_PER_HOUR, window_seconds=3600, what="messages"
)


def get_messaging_patient(
    principal: Annotated[Principal, requires(Permission.MESSAGES_OWN)],
) -> Principal:
    if principal.patient_id is None:
        raise ApiError(403, "forbidden", "this endpoint is for patients")
    return principal


MessagingPatient = Annotated[Principal, Depends(get_messaging_patient)]


def patient_of(principal: Principal) -> UUID:
    if principal.patient_id is None:  # get_messaging_patient refused it already
        raise ApiError(403, "forbidden", "this endpoint is for patients")
    return principal.patient_id


def list_read(consistency: Consistency, services: Services) -> None:
    """Before a thread list: this client's own writes (``Consistency``), and with several
    API worker processes, everything the messaging log holds so far (a write may have gone
    through another worker)."""
    consistency.before_read()
    if getattr(consistency.request.app.state, "several_workers", False):
        head = services.messaging.log.recorder.max_notification_id()
        if head:
            services.sync.wait(Position(services.messaging.log.name, head))


def log_write(request: Request, services: Services, principal: Principal, thread_id: UUID) -> None:
    """A message written to a patient's thread, in the access log."""
    record_access(
        request,
        services,
        actor_id=str(principal.account_id),
        role=principal.role,
        patient_id=patient_of(principal),
        resource=RESOURCE,
        resource_id=str(thread_id),
        action="post",
        outcome="allowed",
    )


@router.get("", response_model=ThreadsOut, summary="My conversations with the centre")
def threads(
    patient: MessagingPatient,
    services: ServicesDep,
    consistency: ConsistencyDep,
    audit: AuditDep,
) -> ThreadsOut:
    """Latest message first; ``unread`` when the centre wrote since you last looked."""
    list_read(consistency, services)
    found = services.messaging.threads_of(patient_of(patient))
    audit.read(RESOURCE, "*", patient.patient_id)
    return ThreadsOut.model_validate({"items": found}, from_attributes=True)


@router.post(
    "",
    status_code=201,
    response_model=PostedOut,
    summary="Write to the centre (a new conversation)",
    dependencies=[MESSAGE_BUDGET],
)
def start(
    body: NewThread,
    patient: MessagingPatient,
    actor: ActorDep,
    services: ServicesDep,
    consistency: ConsistencyDep,
    request: Request,
) -> PostedOut:
    posted = services.messaging.start(patient_of(patient), body.subject, body.body, actor)
    consistency.wrote(posted.position)
    log_write(request, services, patient, posted.thread_id)
    return PostedOut(thread_id=posted.thread_id)


@router.get("/{thread_id}", response_model=ThreadOut, summary="One conversation (marks it read)")
def thread(
    thread_id: UUID,
    patient: MessagingPatient,
    actor: ActorDep,
    services: ServicesDep,
    consistency: ConsistencyDep,
    audit: AuditDep,
) -> ThreadOut:
    """Every message, oldest first; ``unread`` counts the centre's messages you had not
    seen before this request."""
    try:
        view, marked = services.messaging.read(patient_of(patient), thread_id, actor)
    except NotFoundError:
        audit.read(RESOURCE, str(thread_id), patient.patient_id, outcome="denied_or_missing")
        raise
    consistency.wrote(marked.position)
    audit.read(RESOURCE, str(thread_id), view.patient_id)
    answer = ThreadOut.model_validate(view)
    answer.unread = view.unread_by_patient
    return answer


@router.post(
    "/{thread_id}",
    status_code=201,
    response_model=PostedOut,
    summary="Reply in one of my conversations",
    description="409 `thread_closed` when the centre has closed it: start a new one.",
    dependencies=[MESSAGE_BUDGET],
)
def reply(
    thread_id: UUID,
    body: NewMessage,
    patient: MessagingPatient,
    actor: ActorDep,
    services: ServicesDep,
    consistency: ConsistencyDep,
    request: Request,
) -> PostedOut:
    posted = services.messaging.post(patient_of(patient), thread_id, body.body, actor)
    consistency.wrote(posted.position)
    log_write(request, services, patient, thread_id)
    return PostedOut(thread_id=thread_id)
