"""The patient's notification preferences and their browsers' push subscriptions, and
the public key browsers subscribe with. Every read and change is in the access log."""

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from api.deps import AuditDep, PatientDep, Public, ServicesDep, record_access
from api.schemas.preferences import (
    ChannelOut,
    ChannelsOut,
    PreferencesIn,
    PreferencesOut,
    PublicKeyOut,
    PushSubscriptionIn,
)
from application.ports import Principal
from application.services import Services
from domain.contact_preferences import CHANNELS
from domain.context import Actor
from domain.patient import Patient
from domain.reminders import QuietHours

router = APIRouter(tags=["notification preferences"])
RESOURCE = "notification_preferences"
SUBSCRIPTIONS = "push_subscription"


def document(patient: Patient) -> PreferencesOut:
    prefs = patient.preferences
    channels = {}
    for channel in CHANNELS:
        consent = prefs.consent(channel)
        channels[channel] = ChannelOut(
            enabled=consent is not None and consent.granted,
            since=consent.at if consent else None,
            source=consent.source if consent else None,
            ready=prefs.reachable(channel, email=patient.notice_email, phone=patient.phone),
        )
    return PreferencesOut(
        channels=ChannelsOut(**channels),
        language=prefs.language,  # type: ignore[arg-type]  # LANGUAGES: en, es
        quiet_hours=str(prefs.quiet_hours) if prefs.quiet_hours else None,
        timezone=prefs.zone,
        push_subscriptions=len(prefs.push_subscriptions),
    )


def logged(
    request: Request, services: Services, patient: Principal, resource: str, action: str
) -> None:
    record_access(
        request,
        services,
        actor_id=str(patient.account_id),
        role=patient.role,
        patient_id=patient.patient_id,
        resource=resource,
        resource_id=str(patient.patient_id),
        action=action,
        outcome="allowed",
    )


def actor_of(request: Request, patient: Principal) -> Actor:
    request_id = str(getattr(request.state, "request_id", ""))
    return Actor(id=str(patient.account_id), role=patient.role, request_id=request_id, source="api")


@router.get(
    "/v1/me/notification-preferences",
    response_model=PreferencesOut,
    summary="How I hear from the centre: consent per channel, language, quiet hours, zone",
    description="`channels.{email,sms,push}`: `enabled` (my consent), `since` and `source`"
    " (when and how it was last given or withdrawn: registration, portal, sms_stop, sms_start,"
    " staff, ris, provider, number_changed, merge), `ready` (a message can go now: consent and an"
    " address — e-mail, a mobile number, a subscribed browser). `quiet_hours` `HH:MM-HH:MM`"
    " in `timezone` (an IANA zone; null: the location's). Until I choose, e-mail is on (since"
    " registration), SMS and push are off; SMS consent is for one number, and a new number"
    " turns SMS off until I consent again.",
)
def read_preferences(patient: PatientDep, services: ServicesDep, audit: AuditDep) -> PreferencesOut:
    assert patient.patient_id is not None  # PatientDep refuses callers without one
    record = services.registry.patient(patient.patient_id)
    audit.read(RESOURCE, str(record.id), record.id)
    return document(record)


@router.put(
    "/v1/me/notification-preferences",
    response_model=PreferencesOut,
    summary="Set how I hear from the centre (the whole document, as GET gives it)",
    description="Every preference is set as sent; the read-only fields of the GET document"
    " (`since`, `source`, `ready`, `push_subscriptions`) may be sent back and are ignored."
    " 422 `invalid_value` (nothing changes) for SMS without a mobile number on my profile,"
    " push before a browser subscribed (`POST /v1/me/push-subscriptions`), e-mail without an"
    " address, an unknown time zone or quiet hours that are not `HH:MM-HH:MM`. Consent that"
    " is already as sent keeps its `since`.",
)
def write_preferences(
    body: PreferencesIn, request: Request, patient: PatientDep, services: ServicesDep
) -> PreferencesOut:
    assert patient.patient_id is not None
    quiet_hours = QuietHours.parse(body.quiet_hours) if body.quiet_hours else None
    services.preferences.update(
        patient.patient_id,
        consents={name: getattr(body.channels, name).enabled for name in CHANNELS},
        language=body.language,
        quiet_hours=quiet_hours,
        zone=body.timezone or None,
        actor=actor_of(request, patient),
        source="portal",
    )
    logged(request, services, patient, RESOURCE, "update")
    return document(services.registry.patient(patient.patient_id))


@router.post(
    "/v1/me/push-subscriptions",
    status_code=201,
    response_model=PreferencesOut,
    summary="Subscribe this browser to push (body: PushSubscription.toJSON())",
    description="The subscription made with the key of `GET /v1/push/public-key`; the same"
    " endpoint again replaces its keys. It does not turn push on: set `channels.push.enabled`"
    " with PUT. 422 `invalid_value` for keys that are not a P-256 point and a 16-byte secret"
    " or an endpoint that is not https. Answers my preferences.",
)
def add_push_subscription(
    body: PushSubscriptionIn, request: Request, patient: PatientDep, services: ServicesDep
) -> PreferencesOut:
    assert patient.patient_id is not None
    services.preferences.add_push_subscription(
        patient.patient_id,
        body.endpoint,
        body.keys.p256dh,
        body.keys.auth,
        actor_of(request, patient),
    )
    logged(request, services, patient, SUBSCRIPTIONS, "add")
    return document(services.registry.patient(patient.patient_id))


@router.delete(
    "/v1/me/push-subscriptions",
    status_code=204,
    summary="Stop pushes to one of my browsers (by its endpoint)",
    description="204 whether or not the endpoint was subscribed (nothing else is told).",
)
def remove_push_subscription(
    endpoint: Annotated[str, Query(min_length=1, max_length=2000)],
    request: Request,
    patient: PatientDep,
    services: ServicesDep,
) -> Response:
    assert patient.patient_id is not None
    services.preferences.remove_push_subscription(
        patient.patient_id, endpoint, actor_of(request, patient), source="portal"
    )
    logged(request, services, patient, SUBSCRIPTIONS, "remove")
    return Response(status_code=204)


@router.get(
    "/v1/push/public-key",
    dependencies=[Public],
    response_model=PublicKeyOut,
    summary="The key browsers subscribe to push with (VAPID application server key)",
)
def public_key(services: ServicesDep) -> PublicKeyOut:
    return PublicKeyOut(public_key=services.preferences.push_public_key)
