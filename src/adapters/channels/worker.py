"""The sender behind the actor that sends one patient notice (e-mail, SMS or web push).

As ``adapters.hl7.sender`` does for HL7: the actor loads the delivery, checks the
version it was handed is still current and due, and records one attempt; a second
sender of the same version loses on the version. Everything about the patient is read
now, not when the notice was queued:

- the address (the record's e-mail or phone, every push subscription of theirs;
  ``envelope.address`` when the notice names one, as a password reset does);
- consent (``ContactPreferences.allows``): withdrawn since it was queued, the delivery is
  refused for good with code ``no_consent``, visible to staff, and nothing is sent;
- quiet hours (``domain.reminders.hold_until`` in the patient's zone): inside them the
  delivery is held until they end, unless the notice is exempt (a safety notice).

A password reset is what the person just asked for: it goes at once, without a consent
check. The rendered text comes from the template version the notice was queued with.
A gone push subscription (404/410) is removed and an SMS the provider refuses because
the number replied STOP withdraws SMS consent, through the preferences service when the
process has one (``ConsentFollowUps``).
"""

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

import structlog
from markupsafe import escape

from adapters.channels.recipients import (
    Address,
    PatientLookup,
    PreferencesOf,
    addresses,
    preferences_of,
    quiet_hours,
    quiet_zone,
)
from adapters.hl7.attempt_writer import AttemptWriter
from application.channels import (
    PATIENT_CHANNELS,
    PUSH,
    SMS,
    SUBSCRIPTION_GONE,
    UNSUBSCRIBED,
    ChannelSender,
    MessageError,
    OutboundMessage,
    PermanentFailure,
    PushNotice,
    SendOutcome,
    Sent,
    TemporaryFailure,
    attempt_outcome,
)
from application.errors import NotFoundError
from application.notices.envelope import NoticeEnvelope
from application.notices.kinds import NoticeError, PasswordReset
from application.notices.renderer import NoticeTemplates, RenderedNotice
from application.ports import Clock
from application.ris.deliveries import Deliveries
from domain.contact_preferences import ContactPreferences
from domain.context import Actor, system_actor
from domain.errors import InvalidValueError
from domain.reminders import QuietHours, hold_until
from domain.ris.message_delivery import MessageDelivery, RetryPolicy

log = structlog.get_logger(__name__)

NO_CONSENT = "no_consent"
NO_ADDRESS = "no_address"
NOT_A_NOTICE = "not_a_notice"


class ConsentFollowUps(Protocol):
    """What the preferences service does when a provider says an address is gone
    (``services.preferences``)."""

    def remove_push_subscription(
        self, patient_id: UUID, endpoint: str, actor: Actor, source: str = "provider"
    ) -> object: ...

    def sms_stop(self, phone: str, at: datetime, actor: Actor) -> object: ...


@dataclass(frozen=True)
class Hold:
    """Wait until ``until`` before sending (the patient's quiet hours)."""

    until: datetime
    reason: str


@dataclass(frozen=True)
class NoticeSettings:
    """What every rendered notice needs: the portal's address, the centre's name, the
    quiet hours of patients who chose none, and ``reset_link`` (``RESET_LINK``) when reset
    links are to point somewhere else than the portal."""

    base_url: str
    centre_name: str
    default_quiet_hours: QuietHours | None = None
    reset_link: str = ""


class ChannelWorker:
    """Sends one notice delivery and records the attempt (the body of the actor)."""

    def __init__(
        self,
        deliveries: Deliveries,
        senders: dict[str, ChannelSender],
        patients: PatientLookup,
        clock: Clock,
        policy: RetryPolicy,
        settings: NoticeSettings,
        *,
        templates: NoticeTemplates | None = None,
        preferences: PreferencesOf = preferences_of,
        follow_ups: ConsentFollowUps | None = None,
        writer: AttemptWriter | None = None,
        actor: Actor | None = None,
    ) -> None:
        self.deliveries = deliveries
        self.senders = senders
        self.patients = patients
        self.clock = clock
        self.policy = policy
        self.settings = settings
        self.templates = templates or NoticeTemplates()
        self.preferences = preferences
        self.follow_ups = follow_ups
        self.writer = writer or AttemptWriter(deliveries)
        self.actor = actor or system_actor(source="channel-worker")

    def send(self, delivery_id: UUID, version: int) -> str:
        """Send the delivery if ``version`` is still its current one; what happened."""
        try:
            delivery = self.deliveries.delivery(delivery_id)
        except NotFoundError:
            return "missing"
        now = self.clock.now()
        if delivery.version != version or not delivery.is_due(now):
            return "stale"
        if delivery.channel not in PATIENT_CHANNELS:
            return "stale"  # not a notice: the HL7 actor's
        try:
            envelope = NoticeEnvelope.from_payload(delivery.payload)
        except NoticeError as error:
            return self._record(delivery, PermanentFailure(NOT_A_NOTICE, error.detail))
        patient = self._patient(envelope)
        preferences = self.preferences(patient) if patient is not None else None
        match self._gate(delivery, envelope, preferences, now):
            case PermanentFailure() as refusal:
                return self._record(delivery, refusal)
            case Hold(until=until, reason=reason):
                return self._hold(delivery, until, reason)
        if envelope.address:
            targets = [Address(envelope.address)]
        elif patient is not None and preferences is not None:
            targets = addresses(delivery.channel, patient, preferences)
        else:
            targets = []
        if not targets:
            reason = f"no {delivery.channel} address for the recipient"
            return self._record(delivery, PermanentFailure(NO_ADDRESS, reason))
        try:
            rendered = self._render(envelope, delivery.channel)
        except NoticeError as error:
            return self._record(delivery, PermanentFailure(NOT_A_NOTICE, error.detail))
        try:
            messages = [(target, message(delivery, rendered, target)) for target in targets]
        except MessageError as error:  # e.g. a template that renders an empty subject
            return self._record(delivery, PermanentFailure(NOT_A_NOTICE, str(error)))
        sender = self.senders[delivery.channel]
        outcomes = [(target, sender.send(outbound)) for target, outbound in messages]
        result = self._record(delivery, combined([outcome for _, outcome in outcomes]))
        if result != "lost":
            self._follow_up(delivery, envelope, outcomes)
        return result

    def _gate(
        self,
        delivery: MessageDelivery,
        envelope: NoticeEnvelope,
        preferences: ContactPreferences | None,
        now: datetime,
    ) -> PermanentFailure | Hold | None:
        """Whether the notice may go now: refused for good without a patient record or
        consent, held inside quiet hours (unless exempt). A password reset is what the
        person asked for this minute: it always may."""
        if isinstance(envelope.notice, PasswordReset):
            return None
        if preferences is None:
            return PermanentFailure(NO_ADDRESS, "the notice names no patient record that exists")
        if not preferences.allows(delivery.channel):
            reason = f"no consent to {delivery.channel} at the time of sending"
            return PermanentFailure(NO_CONSENT, reason)
        if envelope.exempt:
            return None
        quiet = quiet_hours(preferences, self.settings.default_quiet_hours)
        try:
            until = hold_until(now, quiet, quiet_zone(envelope, preferences))
        except InvalidValueError as error:  # an unknown zone: better sent than stuck
            log.warning("quiet_hours_unreadable", delivery_id=str(delivery.id), error=error.detail)
            return None
        return Hold(until, f"quiet hours {quiet}") if until > now else None

    def _patient(self, envelope: NoticeEnvelope) -> Any:
        if envelope.patient_id is None:
            return None
        return self.patients(envelope.patient_id)

    def _render(self, envelope: NoticeEnvelope, channel: str) -> RenderedNotice:
        rendered = self.templates.render(
            envelope.notice,
            channel,
            envelope.language,
            version=envelope.version,
            base_url=self.settings.base_url,
            centre_name=self.settings.centre_name,
        )
        notice = envelope.notice
        if isinstance(notice, PasswordReset) and self.settings.reset_link:
            rendered = with_link(rendered, self.settings.reset_link.format(token=notice.token))
        return rendered

    def _hold(self, delivery: MessageDelivery, until: datetime, reason: str) -> str:
        delivery.hold(until=until, reason=reason, meta=self.actor.meta())
        if not self.writer.save(delivery):
            return "lost"
        log.info("notice_held", delivery_id=str(delivery.id), until=until.isoformat())
        return "held"

    def _record(self, delivery: MessageDelivery, outcome: SendOutcome) -> str:
        kind, code, detail = attempt_outcome(outcome)
        delivery.record_attempt(
            outcome=kind,
            code=code,
            detail=detail,
            at=self.clock.now(),
            policy=self.policy,
            jitter=random.uniform(0.5, 1.0),  # noqa: S311 - jitter, not security
            meta=self.actor.meta(),
            retry_after=outcome.retry_after if isinstance(outcome, TemporaryFailure) else None,
        )
        if not self.writer.save(delivery):
            return "lost"
        log.info(
            "notice_attempted",
            delivery_id=str(delivery.id),
            channel=delivery.channel,
            outcome=kind,
            code=code,
            status=delivery.status,
        )
        return kind

    def _follow_up(
        self,
        delivery: MessageDelivery,
        envelope: NoticeEnvelope,
        outcomes: list[tuple[Address, SendOutcome]],
    ) -> None:
        """Tell the preferences service what the provider said about an address."""
        service = self.follow_ups
        if service is None:
            return
        for target, outcome in outcomes:
            if not isinstance(outcome, PermanentFailure):
                continue
            if outcome.code == SUBSCRIPTION_GONE and envelope.patient_id is not None:
                service.remove_push_subscription(
                    envelope.patient_id, target.recipient, self.actor, source="provider"
                )
                log.info("push_subscription_gone", delivery_id=str(delivery.id))
            elif outcome.code == UNSUBSCRIBED and delivery.channel == SMS:
                service.sms_stop(target.recipient, self.clock.now(), self.actor)
                log.info("sms_unsubscribed", delivery_id=str(delivery.id))


def message(
    delivery: MessageDelivery, rendered: RenderedNotice, target: Address
) -> OutboundMessage:
    """The rendered notice as one message to ``target``."""
    push = None
    if delivery.channel == PUSH and target.keys is not None:
        push = PushNotice(keys=target.keys, data=rendered.push_data())
    return OutboundMessage(
        delivery_id=delivery.id,
        channel=delivery.channel,
        recipient=target.recipient,
        language=rendered.language,
        subject=rendered.subject,
        text=rendered.text or rendered.body,
        html=rendered.html,
        push=push,
    )


def combined(outcomes: list[SendOutcome]) -> SendOutcome:
    """One outcome for a notice sent to several addresses (a patient's browsers): sent
    when any took it; else a temporary failure when one may succeed later (retried no
    sooner than the longest wait asked for); else the first permanent failure."""
    sent = [o for o in outcomes if isinstance(o, Sent)]
    if sent:
        return Sent(provider_id=" ".join(o.provider_id for o in sent)[:500])
    temporary = [o for o in outcomes if isinstance(o, TemporaryFailure)]
    if temporary:
        waits = [o.retry_after for o in temporary if o.retry_after is not None]
        first = temporary[0]
        wait: timedelta | None = max(waits) if waits else None
        return TemporaryFailure(first.code, first.reason, first.provider_code, wait)
    return outcomes[0]


def with_link(rendered: RenderedNotice, link: str) -> RenderedNotice:
    """The notice with its main link replaced (a reset link ``RESET_LINK`` points
    elsewhere); the HTML part gets it escaped, as the template escapes it."""
    old, new = rendered.url, link
    return RenderedNotice(
        **{
            **vars(rendered),
            "url": new,
            "text": rendered.text.replace(old, new),
            "html": rendered.html.replace(str(escape(old)), str(escape(new))),
            "body": rendered.body.replace(old, new),
        }
    )
