"""Operator view of inbound HL7 messages: list (the quarantine by default), one message
with its raw text and the ACK we sent, and replay (who and why are recorded)."""

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query
from pydantic import Field

from api.deps import ActorDep, AuditDep, ServicesDep, requires
from api.schemas.common import FromView, Strict
from application.permissions import Permission
from application.ports import Principal
from application.ris.inbound_messages import InboundDetail

router = APIRouter(prefix="/v1/admin/hl7", tags=["admin: hl7"])

Operator = Annotated[Principal, requires(Permission.DELIVERIES_OPERATE)]


class InboundOut(FromView):
    id: UUID
    received_at: datetime
    status: str
    message_type: str
    trigger: str
    control_id: str
    sending_application: str
    sending_facility: str
    version: str
    ack_code: str
    error: str | None
    outcome: str | None


class ReplayOut(FromView):
    replayed_at: datetime
    actor_id: str
    actor_role: str
    reason: str
    previous_status: str
    previous_error: str | None


class InboundDetailOut(InboundOut):
    peer: str
    charset: str
    processed_at: datetime | None
    duplicates: int
    ack: str = Field(description="the ACK we sent, segments separated by CR")
    raw: str = Field(description="the message as received, decoded per MSH-18")
    replays: list[ReplayOut]


class ReplayRequest(Strict):
    reason: str = Field(min_length=1, max_length=1000)


def _detail_out(detail: InboundDetail) -> InboundDetailOut:
    return InboundDetailOut.model_validate({**vars(detail.summary), **vars(detail)})


@router.get("/inbound", response_model=list[InboundOut], summary="Inbound HL7 messages")
def list_inbound(
    _: Operator,
    services: ServicesDep,
    audit: AuditDep,
    status: Literal["received", "processed", "quarantined", "all"] = "quarantined",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[InboundOut]:
    inbound = services.hl7_inbound
    found = inbound.list(status, limit)
    audit.read("hl7_inbound_list", status, None)
    return [InboundOut.model_validate(s) for s in found]


@router.get("/inbound/{message_id}", response_model=InboundDetailOut, summary="One message")
def show_inbound(
    message_id: UUID, _: Operator, actor: ActorDep, services: ServicesDep
) -> InboundDetailOut:
    return _detail_out(services.hl7_inbound.show(message_id, actor))


@router.post(
    "/inbound/{message_id}/replay", response_model=InboundDetailOut, summary="Process again"
)
def replay_inbound(
    message_id: UUID,
    body: ReplayRequest,
    _: Operator,
    actor: ActorDep,
    services: ServicesDep,
) -> InboundDetailOut:
    return _detail_out(services.hl7_inbound.replay(message_id, body.reason, actor))
