"""Operator view of outbound deliveries: list, inspect (attempts and ACK codes), redrive.

Every route needs ``deliveries:operate`` (admin or integration staff, two factors).
The deliveries desk comes from ``services.deliveries`` (wired by the composition root).
"""

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from api.deps import ActorDep, AuditDep, ServicesDep, requires
from api.schemas.common import FromView, Strict
from application.permissions import Permission
from application.ports import Principal

router = APIRouter(prefix="/v1/admin/deliveries", tags=["admin: deliveries"])

Operator = Annotated[Principal, requires(Permission.DELIVERIES_OPERATE)]
Status = Literal[
    "queued", "retrying", "ambiguous", "acknowledged", "dead_lettered", "withdrawn", "undeliverable"
]
Channel = Literal["hl7", "email", "sms", "push", "ledger"]


class DeliveryOut(FromView):
    id: UUID
    channel: str
    recipient: str
    message_type: str
    status: str
    cause: str
    cause_at: datetime
    ordering_key: str
    control_id: str = Field(description="HL7 MSH-10 of every send of this delivery")
    attempts: int
    next_attempt_at: datetime | None
    last_code: str
    last_detail: str
    dead_reason: str
    version: int
    created_at: datetime
    updated_at: datetime


class AttemptOut(FromView):
    kind: Literal[
        "attempt", "dead_lettered", "redriven", "withdrawn", "held", "undeliverable", "receipt"
    ]
    number: int
    outcome: str
    code: str = Field(
        description="MSA-1 of the ACK, a transport code, or the channel's outcome code"
        " (sent, no_consent, invalid_recipient, ...; a receipt's provider error code)"
    )
    detail: str
    at: datetime
    next_attempt_at: datetime | None
    actor_id: str


class DeliveryDetailOut(DeliveryOut):
    history: list[AttemptOut]


class Redrive(Strict):
    reason: str = Field(min_length=1, max_length=500)


class Redriven(BaseModel):
    id: str
    version: int


@router.get("", response_model=list[DeliveryOut], summary="List outbound deliveries")
def list_deliveries(
    services: ServicesDep,
    _: Operator,
    audit: AuditDep,
    status: Annotated[Status | None, Query()] = None,
    channel: Annotated[Channel | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[DeliveryOut]:
    rows = services.deliveries.search(status=status, channel=channel, limit=limit)
    # The rows name patients (the ordering key) and carry the RIS's answers.
    audit.read("delivery_list", f"status={status or 'all'} channel={channel or 'all'}", None)
    return [DeliveryOut.model_validate(d) for d in rows]


@router.get("/{delivery_id}", response_model=DeliveryDetailOut, summary="One delivery")
def show_delivery(
    delivery_id: UUID, services: ServicesDep, _: Operator, actor: ActorDep
) -> DeliveryDetailOut:
    view, history = services.deliveries.show(delivery_id, actor)
    return DeliveryDetailOut.model_validate({**vars(view), "history": history})


@router.post(
    "/{delivery_id}/redrive",
    status_code=202,
    response_model=Redriven,
    summary="Send a dead-lettered delivery again",
)
def redrive_delivery(
    delivery_id: UUID, body: Redrive, services: ServicesDep, actor: ActorDep, _: Operator
) -> Redriven:
    version = services.deliveries.redrive(delivery_id, reason=body.reason, actor=actor)
    return Redriven(id=str(delivery_id), version=version)
