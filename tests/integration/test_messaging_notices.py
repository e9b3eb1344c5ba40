"""A member of staff's secure message becomes one e-mail notice to the patient, without
the message's subject or text; the patient's own messages send nothing; a patient with
no e-mail address gets an undeliverable record, never nothing; a follower started again
creates nothing twice."""

from uuid import UUID, uuid4

import pytest

from adapters.clock import SystemClock
from application.base import Position
from application.communications.messaging_notices import notice_id
from application.notices.envelope import NoticeEnvelope
from application.notices.kinds import NewSecureMessage
from application.notices.renderer import NoticeTemplates
from application.ports import Principal
from domain.context import Actor, system_actor
from domain.secure_thread import SecureThread
from tests.support import register, ris_patient

pytestmark = pytest.mark.integration

STAFF = Actor(id="desk", role="scheduler", source="test")
DESK = Principal(
    account_id=uuid4(), role="scheduler", patient_id=None, session_id="", amr=("pwd", "otp")
)
SECRET = "Zorblaxian results discussion"


def staff_messages(runtime, thread_id: UUID) -> list:
    events = runtime.services.messaging.log.events.get(thread_id)
    return [
        e for e in events if isinstance(e, SecureThread.MessagePosted) and e.author_role == "staff"
    ]


def registered(client, runtime, email: str = "ana@example.org") -> UUID:
    register(client, email)
    return runtime.services.registry.account_by_email(email).patient_id


@pytest.fixture
def outbound(runtime):
    ob = runtime.start_outbound(pump=False, workers=0, clock=SystemClock())
    yield ob
    ob.stop()


def test_a_staff_reply_is_one_email_notice_without_its_content(client, runtime, outbound):
    # Given a patient's thread, answered twice by staff and once more by the patient
    patient = registered(client, runtime)
    messaging = runtime.services.messaging
    thread = messaging.start(patient, SECRET, "Can you explain my results?", system_actor())
    messaging.reply(DESK, thread.thread_id, f"{SECRET}: yes", STAFF)
    messaging.reply(DESK, thread.thread_id, "Call us to book a talk", STAFF)
    messaging.post(patient, thread.thread_id, "Thanks", system_actor())

    # When the policy has followed the log
    outbound.wait_caught_up()

    # Then each staff message is one e-mail notice to the patient
    posted = staff_messages(runtime, thread.thread_id)
    assert len(posted) == 2
    deliveries = runtime.services.deliveries.deliveries
    found = [deliveries.delivery(notice_id(event, patient)) for event in posted]
    assert [d.channel for d in found] == ["email", "email"]
    assert {d.recipient for d in found} == {str(patient)}
    assert {d.message_type for d in found} == {"new_secure_message"}
    assert [d.ordering_key for d in found] == [d.cause for d in found]
    for delivery in found:
        envelope = NoticeEnvelope.from_payload(delivery.payload)
        assert envelope.notice == NewSecureMessage(thread_id=str(thread.thread_id))
        assert envelope.patient_id == patient
        assert envelope.language == "en"
        assert SECRET not in str(delivery.payload)
        assert "Call us" not in str(delivery.payload)
        # ... which renders to an e-mail that links to the thread and quotes nothing of it
        rendered = NoticeTemplates().render(
            envelope.notice,
            delivery.channel,
            envelope.language,
            base_url="https://portal.example.org",
            centre_name="Imaging Bridge Demo Centre",
            version=envelope.version,
        )
        assert rendered.url == f"https://portal.example.org/messages/{thread.thread_id}"
        assert rendered.url in rendered.text
        for part in (rendered.subject, rendered.text, rendered.html):
            assert SECRET not in part
            assert "Call us" not in part
    # ... and none for the patient's own messages: the store holds these two only
    head = deliveries.recorder.max_notification_id() or 0
    assert runtime.services.sync.wait(Position(deliveries.name, head))
    listed = outbound.desk().search(limit=500)
    assert {d.id for d in listed if d.message_type == "new_secure_message"} == {d.id for d in found}


def test_a_patient_without_an_email_address_gets_an_undeliverable_record(runtime, outbound):
    # Given a patient the RIS told us about, with no e-mail address, written to by staff
    patient = UUID(ris_patient(runtime))
    started = runtime.services.messaging.staff_start(
        DESK, patient, "Your preparation", "Please fast for 4 hours.", STAFF
    )
    outbound.wait_caught_up()

    # Then the notice is recorded as undeliverable, with the reason
    [event] = staff_messages(runtime, started.thread_id)
    delivery = runtime.services.deliveries.deliveries.delivery(notice_id(event, patient))
    assert delivery.status == "undeliverable"
    assert delivery.channel == "email"


def test_a_follower_started_again_creates_nothing_twice(client, runtime, outbound):
    patient = registered(client, runtime)
    thread = runtime.services.messaging.start(patient, "Hello", "Hi", system_actor())
    runtime.services.messaging.reply(DESK, thread.thread_id, "Hello from the desk", STAFF)
    outbound.wait_caught_up()
    deliveries = runtime.services.deliveries.deliveries
    before = deliveries.recorder.max_notification_id()

    outbound.stop()
    again = runtime.start_outbound(pump=False, workers=0, clock=SystemClock())
    again.wait_caught_up()
    assert deliveries.recorder.max_notification_id() == before
