"""Helpers of the patient-channel tests: patients with addresses, notice deliveries queued
as the notice policy queues them, and a channel worker on a test runtime."""

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from adapters.channels.recipients import preferences_of
from adapters.channels.worker import ChannelWorker, NoticeSettings
from application.channels import ChannelSender
from application.notices.envelope import NoticeEnvelope
from application.notices.kinds import Notice, Reminder, Visit
from application.notices.renderer import NoticeTemplates
from domain.contact_preferences import ContactPreferences
from domain.context import system_actor
from domain.reminders import QuietHours
from domain.ris.message_delivery import MessageDelivery, RetryPolicy
from imaging_bridge.bootstrap import Runtime

BASE_URL = "https://portal.centre.example"
CENTRE = "Riverside Imaging"
NOON = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
FAST = RetryPolicy(
    attempt_limit=4,
    ambiguous_limit=2,
    base_delay=timedelta(seconds=1),
    max_delay=timedelta(seconds=4),
)


def new_patient(client, email: str, phone: str | None = None) -> UUID:
    """A patient registered through the API, with an e-mail address and maybe a phone."""
    body: dict[str, Any] = {
        "email": email,
        "password": "correct horse battery staple",
        "given_name": "Ana",
        "family_name": "Example",
        "birth_date": "1980-02-29",
    }
    if phone:
        body["phone"] = phone
    response = client.post("/v1/patients/register", json=body)
    assert response.status_code == 201, response.text
    return UUID(response.json()["id"])


def reminder(zone: str = "Europe/Madrid") -> Reminder:
    return Reminder(
        Visit(
            appointment_id=str(uuid4()),
            start=NOON + timedelta(days=1),
            zone=zone,
            location_name="Riverside",
            location_address="1 River Road",
            exam_name="CT head",
            preparation="Nothing to eat for 4 hours before.",
        )
    )


def queue_notice(
    runtime: Runtime,
    patient_id: UUID | None,
    channel: str,
    notice: Notice | None = None,
    *,
    language: str = "en",
    exempt: bool = False,
    address: str = "",
    at: datetime | None = None,
) -> MessageDelivery:
    """A notice delivery, queued as the notice policy queues one (recipient the patient,
    ordering key its cause, the latest template version)."""
    notice = notice or reminder()
    templates = NoticeTemplates()
    envelope = NoticeEnvelope(
        patient_id=patient_id,
        notice=notice,
        language=language,
        version=templates.versions(notice.kind, channel, language)[-1],
        exempt=exempt,
        address=address,
    )
    cause = f"test:{uuid4()}"
    delivery = MessageDelivery.queue(
        channel=channel,
        recipient=str(patient_id) if patient_id else "account",
        message_type=notice.kind,
        cause=cause,
        cause_at=at or runtime.services.clock.now(),
        ordering_key=cause,
        payload=envelope.to_payload(),
        meta=system_actor(source="test").meta(),
    )
    runtime.services.deliveries.deliveries.save(delivery)
    return delivery


class Preferences:
    """The patients' preferences as the tests set them, through the real preferences
    service of the runtime (the same calls the portal and the API make)."""

    def __init__(self, runtime: Runtime) -> None:
        self.service = runtime.services.preferences
        self.actor = system_actor(source="test")

    def grant(self, patient_id: UUID, *channels: str, quiet: str = "") -> None:
        """Consent to exactly ``channels`` (the others withdrawn), and maybe quiet hours
        (none otherwise: the worker's default then applies). Push needs a subscription
        first (``subscribe``)."""
        self.service.update(
            patient_id,
            consents={channel: channel in channels for channel in ("email", "sms", "push")},
            quiet_hours=QuietHours.parse(quiet) if quiet else None,
            actor=self.actor,
        )

    def withdraw(self, patient_id: UUID, channel: str) -> None:
        self.service.update(patient_id, consents={channel: False}, actor=self.actor)

    def subscribe(self, patient_id: UUID, endpoint: str, p256dh: str, auth: str) -> None:
        self.service.add_push_subscription(patient_id, endpoint, p256dh, auth, self.actor)

    def of(self, patient_id: UUID) -> ContactPreferences:
        return self.service.preferences(patient_id)


def channel_worker(
    runtime: Runtime,
    senders: dict[str, ChannelSender],
    *,
    quiet: str = "",
    reset_link: str = "",
) -> ChannelWorker:
    """A worker on ``runtime`` (its clock), sending through ``senders``."""
    return ChannelWorker(
        runtime.services.deliveries.deliveries,
        senders,
        runtime.services.registry.patient_by_id,
        runtime.services.clock,
        FAST,
        NoticeSettings(
            base_url=BASE_URL,
            centre_name=CENTRE,
            default_quiet_hours=QuietHours.parse(quiet) if quiet else None,
            reset_link=reset_link,
        ),
        preferences=preferences_of,
        follow_ups=runtime.services.preferences,
    )


def send_current(worker: ChannelWorker, runtime: Runtime, delivery_id: UUID) -> str:
    """Hand the delivery's current version to the worker, as the pump would."""
    version = runtime.services.deliveries.deliveries.delivery(delivery_id).version
    return worker.send(delivery_id, version)
