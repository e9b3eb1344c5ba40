"""What the SMS provider (Twilio) posts: delivery status callbacks and inbound messages.

No one signs in to call these: each request must carry the provider's signature
(``X-Twilio-Signature``) over the public URL it was posted to and its form; anything
else is 403 ``bad_signature`` before its form is read for anything else. Each call is a
row in the access log, with the provider as the actor.
"""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Header, Query, Request, Response

from api.deps import Public, ServicesDep, record_access, request_id
from application.services import Services
from application.sms_hooks import BadSignatureError
from domain.context import Actor

router = APIRouter(prefix="/v1/hooks/twilio", tags=["provider callbacks"], dependencies=[Public])

PROVIDER = "twilio"
TWIML = "application/xml"


def provider_actor(request: Request) -> Actor:
    return Actor(id=PROVIDER, role="provider", request_id=request_id(request), source="twilio")


async def signed_form(request: Request, services: Services, signature: str) -> dict[str, str]:
    """The form Twilio posted, once its signature is checked (and refused in the log)."""
    form = {key: str(value) for key, value in (await request.form()).items()}
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    try:
        services.sms_hooks.check(path, form, signature)
    except BadSignatureError:
        log_call(request, services, "sms_callback", "denied", reason="bad signature")
        raise
    return form


def log_call(
    request: Request,
    services: Services,
    resource: str,
    outcome: str,
    *,
    patient_id: UUID | None = None,
    resource_id: str = "",
    reason: str = "",
) -> None:
    record_access(
        request,
        services,
        actor_id=PROVIDER,
        role="provider",
        patient_id=patient_id,
        resource=resource,
        action="write",
        outcome=outcome,
        resource_id=resource_id,
        reason=reason,
    )


@router.post("/status", status_code=204, summary="A message's delivery status (Twilio)")
async def delivery_status(
    request: Request,
    services: ServicesDep,
    delivery: Annotated[UUID, Query(description="the delivery the message belongs to")],
    signature: Annotated[str, Header(alias="X-Twilio-Signature")] = "",
) -> Response:
    form = await signed_form(request, services, signature)
    patient = services.sms_hooks.record_status(delivery, form, provider_actor(request))
    log_call(
        request,
        services,
        "delivery_receipt",
        "allowed",
        patient_id=patient,
        resource_id=str(delivery),
    )
    return Response(status_code=204)


@router.post("/inbound", summary="A message a phone sent to our number (Twilio)")
async def inbound_message(
    request: Request,
    services: ServicesDep,
    signature: Annotated[str, Header(alias="X-Twilio-Signature")] = "",
) -> Response:
    form = await signed_form(request, services, signature)
    answer = services.sms_hooks.inbound(form, provider_actor(request))
    log_call(request, services, "sms_inbound", "allowed")
    return Response(content=answer, media_type=TWIML)
