"""The sender of patient notices (e-mail, SMS or web push): the body of the
``send_notice`` actor, and of the sending threads a process that pumps hands its notices
to (``adapters.hl7.handoff``).

As ``adapters.hl7.sender`` does for HL7: it loads the delivery, checks the version it
was handed is still current and due, and records one attempt (or a hold); a second
sender of the same version loses on the version. A sending thread takes several
hand-outs at once (``send_many``): one query loads them, one write saves what was
recorded on them, together with the attempts of the process's other sending threads
(``AttemptWriter``). Everything about the patient is read now, not when the notice was
queued:

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
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
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
class Recorded:
    """One notice's attempt or hold, recorded on its delivery and not yet saved; once it
    is: the log line (``event`` with ``fields``) and, after a send, the follow-ups of
    what the provider said of each address (``sent``)."""

    delivery: MessageDelivery
    outcome: str  # "held", or the attempt's outcome ("accepted", "rejected", ...)
    event: str
    fields: dict[str, Any]
    envelope: NoticeEnvelope | None = None
    sent: list[tuple[Address, SendOutcome]] = field(default_factory=list)


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
    """Sends notice deliveries and records their attempts (the body of the actor and of
    the local sending threads)."""

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
        return self.send_many([(delivery_id, version)])[0]

    def send_many(
        self, handed: Sequence[tuple[UUID, int]], *, until: float | None = None
    ) -> list[str]:
        """Send each notice whose version is still the one it was handed out at, with
        the deliveries read in one query and their attempts (or holds) saved in one
        write; what happened to each, in order. None is sent once ``time.monotonic()``
        has passed ``until`` ("expired": the pump that leases it next sends it). A
        notice whose sending raised is left unrecorded ("failed"), as a task that raised
        was: it goes out again once its lease ends, and the others are saved."""
        found = self.deliveries.deliveries([delivery_id for delivery_id, _ in handed])
        outcomes = ["stale"] * len(handed)
        recorded: list[tuple[int, Recorded]] = []
        for index, (delivery_id, version) in enumerate(handed):
            delivery, now = found.get(delivery_id), self.clock.now()
            if delivery is None:
                outcomes[index] = "missing"
            elif until is not None and time.monotonic() >= until:
                outcomes[index] = "expired"
            elif (
                delivery.version == version
                and delivery.is_due(now)
                and delivery.channel in PATIENT_CHANNELS  # else not a notice: HL7's
            ):
                try:
                    recorded.append((index, self._decide(delivery, now)))
                except Exception:  # one notice's fault must not unsend the others
                    log.exception("notice_send_failed", delivery_id=str(delivery_id))
                    outcomes[index] = "failed"
        saved = self.writer.save_many([each.delivery for _, each in recorded])
        for (index, each), ok in zip(recorded, saved, strict=True):
            outcomes[index] = self._saved(each) if ok else "lost"
        return outcomes

    def _decide(self, delivery: MessageDelivery, now: datetime) -> Recorded:
        """Whether the notice may go, and to which addresses; send it there. Its attempt
        or hold is recorded on the delivery, for the caller to save."""
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
        recorded = self._record(delivery, combined([outcome for _, outcome in outcomes]))
        return replace(recorded, envelope=envelope, sent=outcomes)

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

    def _hold(self, delivery: MessageDelivery, until: datetime, reason: str) -> Recorded:
        delivery.hold(until=until, reason=reason, meta=self.actor.meta())
        return Recorded(delivery, "held", "notice_held", {"until": until.isoformat()})

    def _record(self, delivery: MessageDelivery, outcome: SendOutcome) -> Recorded:
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
        fields = {
            "channel": delivery.channel,
            "outcome": kind,
            "code": code,
            "status": delivery.status,
        }
        return Recorded(delivery, kind, "notice_attempted", fields)

    def _saved(self, recorded: Recorded) -> str:
        """Log what was saved and tell the preferences service what the provider said."""
        delivery = recorded.delivery
        log.info(recorded.event, delivery_id=str(delivery.id), **recorded.fields)
        if recorded.envelope is not None:
            try:
                self._follow_up(delivery, recorded.envelope, recorded.sent)
            except Exception:  # the attempt is saved; the batch's other follow-ups run
                log.exception("notice_follow_up_failed", delivery_id=str(delivery.id))
        return recorded.outcome

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
