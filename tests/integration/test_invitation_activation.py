"""An order invitation reaches a patient the RIS alone knows: the RIS sends the order with
the e-mail address it holds (PID-13); the policy issues an activation code for the
invitation; the e-mail carries a link with it; the patient follows the link and creates
their account on the centre's record with the code and their birth date. The address the
RIS sent is where notices go, not a way to sign in; the compliance officer's copy of the
message never shows the code."""

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from urllib.parse import parse_qs, urlsplit
from uuid import UUID

import pytest

from application.base import Position
from application.notices.envelope import NoticeEnvelope
from application.notices.kinds import WITHHELD
from domain.errors import InvalidValueError
from domain.ris.message_delivery import MessageDelivery
from imaging_bridge.bootstrap import Runtime
from imaging_bridge.outbound import Outbound
from tests.integration.test_patient_story import apply_inbound, send
from tests.support import place_order, register, sent_mail, staff_headers

pytestmark = pytest.mark.integration

DAYTIME = datetime(2026, 11, 30, 16, 0, tzinfo=UTC)  # 10:00 in Chicago: no quiet hours
PASSWORD = "correct horse battery staple"
MSH = "MSH|^~\\&|RIS|CENTRE|IMGBRIDGE|CENTRE|20261130120000||{kind}|{control}|P|2.5.1"
PID = "PID|1||{mrn}^^^CENTRE^MR||Lopez^Ana||19850304|F|||||{contacts}"


def orm(control: str, mrn: str, contacts: str, placer: str) -> list[str]:
    return [
        MSH.format(kind="ORM^O01^ORM_O01", control=control),
        PID.format(mrn=mrn, contacts=contacts),
        f"ORC|NW|{placer}^ORDERS|F-{placer}^RIS",
        f"OBR|1|{placer}^ORDERS|F-{placer}^RIS|70551^MRI brain without contrast|||"
        f"20261130120000|||||||||||ACC-{placer}",
    ]


@pytest.fixture
def policy(runtime: Runtime, clock) -> Iterator[Outbound]:
    clock.set(DAYTIME)
    outbound = runtime.start_outbound(pump=False, workers=0)
    yield outbound
    outbound.stop()


def receive(runtime: Runtime, policy: Outbound, *messages: list[str]) -> None:
    """The messages over MLLP, applied, and the policy caught up with them."""
    from adapters.hl7.listener import BackgroundListener, ListenerConfig

    listener = BackgroundListener(
        runtime.url, ListenerConfig(host="127.0.0.1", port=0), cipher=runtime.cipher
    )
    with listener:
        assert send(listener.port, *messages) == ["AA"] * len(messages)
    apply_inbound(runtime)
    policy.wait_caught_up(timeout=30)


def patient_with_mrn(runtime: Runtime, mrn: str):
    patient = runtime.services.registry.patient_by_identifier("CENTRE", mrn)
    assert patient is not None, f"no patient {mrn}"
    return patient


def invitation_of(runtime: Runtime, patient_id: UUID, channel: str = "email"):
    deliveries = runtime.services.deliveries.deliveries
    found = [
        d
        for n in deliveries.recorder.select_notifications(start=1, limit=10_000)
        if isinstance(e := deliveries.mapper.to_domain_event(n), MessageDelivery.Queued)
        and e.channel == channel
        and e.recipient == str(patient_id)
        and e.message_type == "order_invitation"
        for d in [deliveries.delivery(e.originator_id)]
    ]
    return found


def test_the_ris_email_gets_an_invitation_whose_link_creates_the_account(
    runtime, client, clock, policy
):
    # The RIS orders an MRI for Ana, whom we have never heard of, with her e-mail address.
    contacts = "(407)939-1289^PRN^PH~^NET^Internet^Ana.Lopez@Example.org"
    receive(runtime, policy, orm("INV-1", "MRN-INV-1", contacts, "P-1"))
    ana = patient_with_mrn(runtime, "MRN-INV-1")
    assert (ana.ris_email, ana.email, ana.has_account) == ("ana.lopez@example.org", "", False)
    assert ana.activation_code_id is not None  # the invitation issued her a code

    # One invitation went by e-mail (SMS needs her consent first), to the RIS's address.
    [invitation] = invitation_of(runtime, ana.id)
    assert invitation_of(runtime, ana.id, "sms") == []
    [mail] = [m for m in sent_mail(runtime) if m["To"] == "ana.lopez@example.org"]
    assert mail["Subject"].startswith("Book your exam")
    text = mail.get_body(("plain",)).get_content()
    assert "Create your account and book" in text
    link = re.search(r"https?://\S+/activate\?token=\S+", text)
    assert link, text
    code = parse_qs(urlsplit(link.group(0)).query)["token"][0]
    assert re.fullmatch(r"[2-9A-Z]{4}-[2-9A-Z]{4}-[2-9A-Z]{4}", code)
    assert mail.get_body(("html",)).get_content().count(code) >= 1

    # The link sends a visitor to create an account with the code filled in.
    landing = client.get(urlsplit(link.group(0))._replace(scheme="", netloc="").geturl())
    assert landing.status_code == 200
    assert f'value="{code}"' in landing.text

    # The RIS's address signs nobody in: the account is made with the code.
    refused = client.post(
        "/v1/auth/token", data={"username": "ana.lopez@example.org", "password": PASSWORD}
    )
    assert refused.status_code == 401
    made = client.post(
        "/v1/patients/register",
        json={
            "email": "ana.portal@example.org",
            "password": PASSWORD,
            "activation_code": code,
            "birth_date": "1985-03-04",
        },
    )
    assert made.status_code == 201, made.text
    token = client.post(
        "/v1/auth/token", data={"username": "ana.portal@example.org", "password": PASSWORD}
    ).json()["access_token"]
    me = client.get("/v1/patients/me", headers={"Authorization": f"Bearer {token}"}).json()
    assert me["id"] == str(ana.id)
    # Notices now go to the address she signs in with.
    assert runtime.services.registry.patient_by_id(ana.id).notice_email == "ana.portal@example.org"

    # The compliance officer reads the message again without the code in it.
    head = runtime.services.deliveries.deliveries.recorder.max_notification_id() or 0
    assert runtime.services.sync.wait(Position("deliveries", head), timeout=30)
    officer = staff_headers(client, runtime, clock, "compliance")
    record = client.get(
        f"/v1/audit/patients/{ana.id}/communications",
        headers=officer,
        params={"content": "1"},
    )
    assert record.status_code == 200, record.text
    [copy] = [c for c in record.json()["items"] if c["notification"]["id"] == str(invitation.id)]
    assert code not in str(copy)
    assert WITHHELD in copy["content"]["text"]


def test_a_patient_with_an_account_is_invited_to_book_and_no_code_is_issued(
    runtime, client, clock, policy
):
    headers = register(client, "ben@example.org")
    ben = UUID(client.get("/v1/patients/me", headers=headers).json()["id"])
    place_order(runtime, ben, 3)
    policy.wait_caught_up(timeout=30)

    [invitation] = invitation_of(runtime, ben)
    notice = NoticeEnvelope.from_payload(invitation.payload).notice
    assert (notice.activation_token, notice.needs_account) == (None, False)
    assert runtime.services.registry.patient_by_id(ben).activation_code_id is None
    [mail] = [
        m for m in sent_mail(runtime) if m["To"] == "ben@example.org" and "exam" in m["Subject"]
    ]
    assert "/book?order=" in mail.get_body(("plain",)).get_content()


def test_a_ris_patient_without_an_address_gets_no_code(runtime, client, clock, policy):
    receive(runtime, policy, orm("INV-2", "MRN-INV-2", "(407)939-1289", "P-2"))
    carl = patient_with_mrn(runtime, "MRN-INV-2")

    [invitation] = invitation_of(runtime, carl.id)
    assert invitation.status == "undeliverable"
    assert carl.activation_code_id is None
    assert NoticeEnvelope.from_payload(invitation.payload).notice.activation_token is None


def test_a_later_message_changes_the_ris_address_and_a_bad_one_changes_nothing(runtime, clock):
    from domain.context import system_actor

    registry = runtime.services.registry
    ris = system_actor(source="hl7-inbound")

    def record(email: str | None) -> UUID:
        return registry.record_patient_from_ris(
            identifiers=[("CENTRE", "MRN-INV-3")],
            given_name="Dana",
            family_name="Reyes",
            birth_date=date(1970, 1, 2),
            phone=None,
            update_demographics=True,
            actor=ris,
            email=email,
        )

    dana = record("dana@example.org")
    record("dana.reyes@example.org")
    record(None)  # a message without an address says nothing about it
    assert registry.patient_by_id(dana).ris_email == "dana.reyes@example.org"
    with pytest.raises(InvalidValueError):
        registry.patient_by_id(dana).record_ris_email("not an address", {})
