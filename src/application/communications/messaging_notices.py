"""New-secure-message notices: each message a member of staff writes in a thread becomes
one e-mail notice to the patient, "you have a new message, sign in to read it", never its
subject or text, in the ``deliveries`` store, exactly once.

It follows the messaging log (``application.messaging.MessagingLog``) with tracking in
the deliveries store's tracking table (no other follower of the store reads that log).
The notice goes by e-mail, to the patient's id (the address is looked up when it is
sent); when the patient withdrew e-mail consent or has no address, it is recorded as
undeliverable instead. Its identity comes from the message's event
(``{thread}:{version}``), so processing it again creates nothing twice. The patient's
own messages send nothing.
"""

from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.application import ProcessingEvent
from eventsourcing.persistence import JSONTranscoder
from eventsourcing.projection import EventSourcedProjection

from application.base import DateAsISO, tolerating_concurrent_ddl
from application.messaging import MessagingLog
from application.notices.envelope import NoticeEnvelope
from application.notices.kinds import NEW_SECURE_MESSAGE, NewSecureMessage
from application.notices.renderer import NoticeTemplates
from application.registry import RegistryLog
from application.ris.deliveries import NAME
from domain.contact_preferences import EMAIL
from domain.context import system_actor
from domain.patient import Patient
from domain.ris.message_delivery import MessageDelivery
from domain.secure_thread import STAFF, SecureThread

DEFAULT_LANGUAGE = "en"
MAX_MERGES = 10  # a merge chain is short; a cycle would be a bug upstream


def cause_of(event: Any) -> str:
    """The cause of a message's notice: the thread and the message's version in it."""
    return f"{event.originator_id}:{event.originator_version}"


def notice_id(event: Any, patient_id: UUID) -> UUID:
    """The identity of the notice a staff message causes (for tests and the operator)."""
    return MessageDelivery.create_id(cause_of(event), str(patient_id), EMAIL)


def email_refusal(patient: Patient | None) -> str:
    """Why an e-mail notice cannot go to ``patient`` ("" when it can)."""
    if patient is None:
        return "the patient's record was not found"
    if not getattr(patient, "email", ""):
        return "the patient has no e-mail address"
    if not patient.preferences.allows(EMAIL):
        return "the patient withdrew consent to e-mail"
    return ""


def language_of(patient: Patient | None) -> str:
    return DEFAULT_LANGUAGE if patient is None else patient.preferences.language


class MessagingNotices(EventSourcedProjection[UUID]):
    """Staff ``SecureThread.MessagePosted`` -> one e-mail notice delivery (see the module).

    Run one ``EventSourcedProjectionRunner`` on ``MessagingLog`` with this class."""

    name = NAME
    templates: ClassVar[NoticeTemplates | None] = None

    def __init__(self, env: Any = None) -> None:
        tolerating_concurrent_ddl(self, lambda: super(MessagingNotices, self).__init__(env))
        if MessagingNotices.templates is None:
            MessagingNotices.templates = NoticeTemplates()
        self.notice_templates: NoticeTemplates = MessagingNotices.templates
        self._messaging = MessagingLog(dict(self.env))
        self._registry = RegistryLog(dict(self.env))

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(DateAsISO())

    def close(self) -> None:
        self._messaging.close()
        self._registry.close()
        super().close()

    def policy(self, domain_event: Any, processing_event: ProcessingEvent[UUID]) -> None:
        match domain_event:
            case SecureThread.MessagePosted() if domain_event.author_role == STAFF:
                self._queue_notice(domain_event, processing_event)

    def _queue_notice(self, event: Any, processing_event: ProcessingEvent[UUID]) -> None:
        thread = self._messaging.thread(event.originator_id)
        patient = self._patient(thread.patient_id)
        cause = cause_of(event)
        common: dict[str, Any] = {
            "channel": EMAIL,
            "recipient": str(thread.patient_id),
            "message_type": NEW_SECURE_MESSAGE,
            "cause": cause,
            "cause_at": event.timestamp,
            "ordering_key": cause,
            "payload": self._payload(thread.patient_id, thread.id, language_of(patient)),
            "meta": system_actor(source="messaging-notices").meta(cause=cause),
        }
        refusal = email_refusal(patient)
        if refusal:
            delivery = MessageDelivery.undeliverable(reason=refusal, **common)
        else:
            delivery = MessageDelivery.queue(**common)
        processing_event.collect_events(delivery)

    def _patient(self, patient_id: UUID) -> Patient | None:
        """The patient's record (the surviving one, when it was merged into another)."""
        patient = self._registry.find(patient_id, Patient)
        for _ in range(MAX_MERGES):
            if patient is None or patient.merged_into is None:
                break
            patient = self._registry.find(patient.merged_into, Patient)
        return patient

    def _payload(self, patient_id: UUID, thread_id: UUID, language: str) -> dict[str, str]:
        templates = self.notice_templates
        if not templates.versions(NEW_SECURE_MESSAGE, EMAIL, language):
            language = DEFAULT_LANGUAGE
        versions = templates.versions(NEW_SECURE_MESSAGE, EMAIL, language)
        envelope = NoticeEnvelope(
            patient_id=patient_id,
            notice=NewSecureMessage(thread_id=str(thread_id)),
            language=language,
            version=versions[-1] if versions else 1,
        )
        return envelope.to_payload()
