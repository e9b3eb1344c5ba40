"""MessageDelivery (given events / when command / then state), its retry policy, the
ER7 we render (hypothesis: it re-parses to the same fields), ACK classification and
the deliveries read model's pure fold."""

from datetime import UTC, date, datetime, timedelta
from uuid import UUID

import pytest
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.hl7.destinations import parse_destinations
from adapters.hl7.mllp_client import classify_ack
from adapters.hl7.render import render, render_fast
from domain.errors import InvalidValueError
from domain.ris.message_delivery import (
    ACCEPTED,
    ACKNOWLEDGED,
    AMBIGUOUS,
    DEAD,
    NO_ANSWER,
    NOT_SENT,
    QUEUED,
    REJECTED_PERMANENT,
    REJECTED_RETRYABLE,
    RETRYING,
    DeliveryStateError,
    MessageDelivery,
    RetryPolicy,
    backoff,
    control_id,
    delivery_id,
)
from projections.deliveries_view import delivery_changes

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
POLICY = RetryPolicy(attempt_limit=3, ambiguous_limit=2, base_delay=timedelta(seconds=2))
META = {"actor_id": "system"}


def queued(cause: str = "a:1") -> MessageDelivery:
    return MessageDelivery.queue(
        channel="hl7",
        recipient="ris",
        message_type="SIU^S12",
        cause=cause,
        cause_at=T0,
        ordering_key="patient-1",
        payload={"k": "v"},
        meta=META,
    )


def attempt(d: MessageDelivery, outcome: str, at: datetime = T0, code: str = "") -> None:
    d.record_attempt(
        outcome=outcome, code=code, detail="", at=at, policy=POLICY, jitter=1.0, meta=META
    )


def replay(d: MessageDelivery) -> MessageDelivery:
    copy = None
    for event in d.collect_events():
        copy = event.mutate(copy)
    assert isinstance(copy, MessageDelivery)
    return copy


def test_identity_comes_from_cause_recipient_and_channel():
    assert queued("a:1").id == queued("a:1").id == delivery_id("a:1", "ris", "hl7")
    assert queued("a:1").id != queued("a:2").id
    assert len(control_id(queued().id)) <= 20
    assert queued().control_id == control_id(queued().id)


def test_accepted_acknowledges():
    d = queued()
    attempt(d, ACCEPTED, code="AA")
    assert d.status == ACKNOWLEDGED
    assert not d.is_pending
    assert d.attempts == 1


def test_ae_retries_with_exponential_backoff_up_to_the_limit_then_dead():
    d = queued()
    attempt(d, REJECTED_RETRYABLE, code="AE")
    assert d.status == RETRYING
    assert d.next_attempt_at == T0 + timedelta(seconds=2)
    assert not d.is_due(T0 + timedelta(seconds=1))
    assert d.is_due(T0 + timedelta(seconds=2))
    attempt(d, REJECTED_RETRYABLE, code="AE")
    assert d.next_attempt_at == T0 + timedelta(seconds=4)
    attempt(d, REJECTED_RETRYABLE, code="AE")
    assert d.status == DEAD
    assert "3 attempts" in d.dead_reason


def test_ar_is_permanent():
    d = queued()
    attempt(d, REJECTED_PERMANENT, code="AR")
    assert d.status == DEAD
    assert "AR" in d.dead_reason


def test_no_answer_is_ambiguous_under_its_own_limit():
    d = queued()
    attempt(d, NO_ANSWER, code="TIMEOUT")
    assert d.status == AMBIGUOUS
    assert d.is_pending
    attempt(d, NO_ANSWER, code="TIMEOUT")
    assert d.status == DEAD


def test_not_sent_keeps_trying_until_the_policy_gives_up():
    d = queued()
    for _ in range(10):
        attempt(d, NOT_SENT, at=T0 + timedelta(hours=1), code="CONNECT")
    assert d.status == RETRYING
    attempt(d, NOT_SENT, at=T0 + timedelta(days=4), code="CONNECT")
    assert d.status == DEAD


def test_a_redriven_delivery_waits_for_a_down_recipient_afresh():
    d = queued()
    attempt(d, NOT_SENT, at=T0 + timedelta(days=4), code="CONNECT")
    assert d.status == DEAD
    redriven_at = T0 + timedelta(days=5)
    d.redrive(reason="the RIS is back soon", at=redriven_at, meta={"actor_id": "op"})
    attempt(d, NOT_SENT, at=redriven_at + timedelta(hours=1), code="CONNECT")
    assert d.status == RETRYING
    attempt(d, NOT_SENT, at=redriven_at + timedelta(days=4), code="CONNECT")
    assert d.status == DEAD
    assert replay(d).status == DEAD


def test_redrive_only_from_dead_and_with_a_reason():
    d = queued()
    with pytest.raises(DeliveryStateError):
        d.redrive(reason="why", at=T0, meta=META)
    attempt(d, REJECTED_PERMANENT, code="AR")
    with pytest.raises(InvalidValueError):
        d.redrive(reason=" ", at=T0, meta=META)
    d.redrive(reason="fixed", at=T0, meta={"actor_id": "op"})
    assert d.status == QUEUED
    assert d.attempts == 0
    assert d.is_due(T0)
    attempt(d, ACCEPTED, code="AA")
    assert replay(d).status == ACKNOWLEDGED


def test_a_finished_delivery_is_not_sent_again():
    d = queued()
    attempt(d, ACCEPTED, code="AA")
    with pytest.raises(DeliveryStateError):
        attempt(d, ACCEPTED)


def test_backoff_is_capped_and_jittered():
    assert backoff(20, timedelta(seconds=1), timedelta(seconds=60), 0.5) == timedelta(seconds=30)
    with pytest.raises(InvalidValueError):
        backoff(1, timedelta(seconds=1), timedelta(seconds=60), 0.2)


def test_replay_equals_live_state():
    d = queued()
    attempt(d, REJECTED_RETRYABLE, code="AE")
    attempt(d, NO_ANSWER, code="TIMEOUT")
    live = (d.status, d.attempts, d.ambiguous_attempts, d.next_attempt_at, d.version)
    copy = replay(d)
    assert (
        copy.status,
        copy.attempts,
        copy.ambiguous_attempts,
        copy.next_attempt_at,
        copy.version,
    ) == live


def test_read_model_fold_follows_the_aggregate():
    d = queued()
    attempt(d, REJECTED_PERMANENT, code="AR")
    events = d.collect_events()
    changes = [c for i, e in enumerate(events) for c in delivery_changes(e, i + 1)]
    tables = [(c.table, type(c).__name__) for c in changes]
    assert tables == [
        ("rm_deliveries", "Upsert"),
        ("rm_deliveries", "Update"),
        ("rm_delivery_attempts", "Upsert"),
        ("rm_deliveries", "Update"),
        ("rm_delivery_attempts", "Upsert"),
    ]
    assert changes[-2].values["status"] == "dead_lettered"  # type: ignore[union-attr]


# ACKs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "outcome"),
    [
        ("AA", "accepted"),
        ("CA", "accepted"),
        ("AE", "error"),
        ("CE", "error"),
        ("AR", "rejected"),
        ("CR", "rejected"),
    ],
)
def test_msa_1_decides_the_outcome(code, outcome):
    ack = f"MSH|^~\\&|RIS|F|IB|F|20261130||ACK|1|P|2.5.1\rMSA|{code}|CTRL1|text"
    result = classify_ack(ack, "CTRL1")
    assert (result.outcome, result.code) == (outcome, code)


def test_an_ack_for_another_message_or_garbage_is_retryable():
    other = "MSH|^~\\&|RIS|F|IB|F|20261130||ACK|1|P|2.5.1\rMSA|AA|OTHER"
    assert classify_ack(other, "CTRL1").outcome == "error"
    assert classify_ack("garbage", "CTRL1").outcome == "error"
    assert classify_ack("MSH|^~\\&|RIS\rPID|1", "CTRL1").outcome == "error"


def test_destinations_parse():
    [ris, pacs] = parse_destinations("ris=10.0.0.1:2575;version=2.3;tls=1, pacs=host:1")
    assert (ris.name, ris.host, ris.port, ris.version, ris.tls) == (
        "ris",
        "10.0.0.1",
        2575,
        "2.3",
        True,
    )
    assert (pacs.version, pacs.tls) == ("2.5.1", False)
    with pytest.raises(InvalidValueError):
        parse_destinations("ris=nohost")


# Rendering ------------------------------------------------------------------------------

text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zl", "Zp")),
    min_size=1,
    max_size=30,
).filter(lambda s: s.strip() == s and s.strip())
# Order numbers: letters, digits and the punctuation RIS numbers use (no ':', which
# separates the namespace we keep in front).
words = st.text(alphabet="ABCXYZabc0123456789.-_/", min_size=1, max_size=20)
instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2099, 1, 1), timezones=st.just(UTC)
).map(lambda d: d.replace(microsecond=0))


def siu_payload(given: str, family: str, birth: date, start: datetime) -> dict[str, str]:
    return {
        "event_at": start.isoformat(),
        "appointment_id": "7b0c1b9e-5d1c-4a1e-9a3e-0c1d2e3f4a5b",
        "patient_id": "11111111-2222-3333-4444-555555555555",
        "given_name": given,
        "family_name": family,
        "birth_date": birth.isoformat(),
        "phone": "",
        "start": start.isoformat(),
        "end": (start + timedelta(minutes=30)).isoformat(),
        "timezone": "America/Chicago",
        "duration_minutes": "30",
        "reason": "",
        "type_code": "ct-head",
        "type_name": "CT Head",
        "type_cpt": "70450",
        "modality": "CT",
        "location_code": "riverside",
        "location_name": "Riverside",
        "resource_code": "riverside-ct-1",
        "resource_name": "Riverside CT",
    }


def unescape(value: str) -> str:
    return (
        value.replace("\\F\\", "|")
        .replace("\\S\\", "^")
        .replace("\\T\\", "&")
        .replace("\\R\\", "~")
        .replace("\\E\\", "\\")
    )


@settings(max_examples=40, deadline=None)
@given(
    given_name=text,
    family_name=text,
    birth=st.dates(min_value=date(1900, 1, 1), max_value=date(2026, 1, 1)),
    start=instants,
    trigger=st.sampled_from(
        ["SIU^S12", "SIU^S13", "SIU^S14", "SIU^S15", "SIU^S26", "ADT^A04", "ADT^A08"]
    ),
    version=st.sampled_from(["2.5.1", "2.5", "2.6"]),
    phone=st.one_of(st.just(""), text),
    reason=st.one_of(st.just(""), text),
    mrn=st.one_of(st.just(""), text),
    notes=st.one_of(st.just(""), text),
    order=st.one_of(st.just(("", "")), st.tuples(words, words)),
)
def test_rendered_er7_reparses_to_the_same_fields(
    given_name, family_name, birth, start, trigger, version, phone, reason, mrn, notes, order
):
    delivery = UUID("0f0e0d0c-0b0a-4908-8706-050403020100")
    payload = {**siu_payload(given_name, family_name, birth, start), "phone": phone}
    payload["reason"] = reason
    payload["notes"] = notes
    if mrn:
        payload.update(mrn=mrn, mrn_authority="RIS")
    if order[0]:  # booked for a RIS order: its numbers as we keep them (namespace:id)
        payload.update(placer_number=f"PLC:{order[0]}", filler_number=order[1])
    er7 = render(trigger, payload, control_id(delivery), recipient="ris", version=version)
    parsed = parse_message(er7, validation_level=VALIDATION_LEVEL.STRICT)
    parsed.validate()
    assert parsed.msh.msh_10.to_er7() == control_id(delivery)
    assert parsed.msh.msh_9.to_er7().startswith(trigger)
    assert parsed.msh.msh_12.to_er7() == version
    pid = parsed.pid if trigger.startswith("ADT") else parsed.siu_s12_patient.pid
    assert unescape(pid.pid_5.pid_5_1.to_er7()) == family_name
    assert unescape(pid.pid_5.pid_5_2.to_er7()) == given_name
    assert pid.pid_7.to_er7() == birth.strftime("%Y%m%d")
    identifiers = [unescape(f.cx_1.to_er7()) for f in pid.children if f.name == "PID_3"]
    assert identifiers == ([mrn] if mrn else []) + [payload["patient_id"]]
    if trigger.startswith("SIU"):
        assert parsed.sch.sch_11.to_er7().split("^")[3] == start.strftime("%Y%m%d%H%M%S+0000")
        written = [unescape(nte.nte_3.to_er7()) for nte in parsed.children if nte.name == "NTE"]
        assert written == ([notes] if notes else [])
        numbers = (parsed.sch.sch_26.to_er7(), parsed.sch.sch_27.to_er7())
        assert numbers == ((f"{order[0]}^PLC", order[1]) if order[0] else ("", ""))
    # Resends are identical, and the send path's text renderer gives the same bytes.
    again = render(trigger, payload, control_id(delivery), recipient="ris", version=version)
    assert again == er7
    fast = render_fast(trigger, payload, control_id(delivery), recipient="ris", version=version)
    assert fast == er7


# Patient channels (issue 11): reminders wait for their time, are withdrawn when the exam
# moves, wait out quiet hours; a message with no way to go is recorded as undeliverable.


def reminder(due_at: datetime) -> MessageDelivery:
    return MessageDelivery.queue(
        channel="sms",
        recipient="patient-1",
        message_type="reminder",
        cause="a:1:reminder:72h",
        cause_at=T0,
        ordering_key="r-1",
        payload={"kind": "reminder"},
        meta=META,
        due_at=due_at,
    )


def test_a_reminder_is_not_due_before_its_time():
    d = reminder(T0 + timedelta(days=2))
    assert not d.is_due(T0 + timedelta(days=1))
    assert d.is_due(T0 + timedelta(days=2))
    assert replay(d).next_attempt_at == T0 + timedelta(days=2)


def test_a_not_yet_attempted_reminder_is_withdrawn_and_never_due_again():
    d = reminder(T0 + timedelta(days=2))
    assert d.withdraw(reason="appointment cancelled", meta=META)
    assert (d.status, d.end_reason) == ("withdrawn", "appointment cancelled")
    assert not d.is_due(T0 + timedelta(days=5))
    assert not d.withdraw(reason="again", meta=META)  # nothing changes twice
    assert replay(d).status == "withdrawn"


def test_a_delivery_already_attempted_is_not_withdrawn():
    d = reminder(T0)
    attempt(d, REJECTED_RETRYABLE)
    assert not d.withdraw(reason="appointment cancelled", meta=META)
    assert d.status == RETRYING


def test_a_held_delivery_waits_until_the_hold_ends():
    d = reminder(T0)
    d.hold(until=T0 + timedelta(hours=9), reason="quiet hours", meta=META)
    assert not d.is_due(T0 + timedelta(hours=8))
    assert d.is_due(T0 + timedelta(hours=9))
    assert replay(d).next_attempt_at == T0 + timedelta(hours=9)


def test_an_undeliverable_message_is_recorded_and_never_sent():
    d = MessageDelivery.undeliverable(
        channel="email",
        recipient="patient-1",
        message_type="booking_confirmation",
        cause="a:1",
        cause_at=T0,
        ordering_key="c-1",
        payload={},
        reason="no consented channel",
        meta=META,
    )
    assert (d.status, d.end_reason) == ("undeliverable", "no consented channel")
    assert not d.is_due(T0 + timedelta(days=1))
    with pytest.raises(DeliveryStateError):
        d.hold(until=T0, reason="quiet hours", meta=META)
    assert replay(d).status == "undeliverable"


def test_a_provider_asking_to_wait_is_not_retried_sooner():
    d = reminder(T0)
    d.record_attempt(
        outcome=REJECTED_RETRYABLE,
        code="rate_limited",
        detail="429",
        at=T0,
        policy=POLICY,
        jitter=1.0,
        meta=META,
        retry_after=timedelta(seconds=30),
    )
    assert d.next_attempt_at == T0 + timedelta(seconds=30)


def test_a_delivery_queued_before_due_times_existed_loads_as_due_at_once():
    state: dict[str, object] = {"channel": "hl7"}
    MessageDelivery.Queued.upcast_v1_v2(state)
    assert state["due_at"] is None


def test_read_model_fold_shows_withdrawn_held_and_undeliverable():
    d = reminder(T0 + timedelta(days=1))
    d.hold(until=T0 + timedelta(days=1, hours=2), reason="quiet hours", meta=META)
    d.withdraw(reason="appointment moved", meta=META)
    changes = [c for i, e in enumerate(d.collect_events()) for c in delivery_changes(e, i + 1)]
    rows = [c for c in changes if getattr(c, "table", "") == "rm_deliveries"]
    assert rows[0].values["next_attempt_at"] == T0 + timedelta(days=1)
    assert rows[1].values["next_attempt_at"] == T0 + timedelta(days=1, hours=2)
    assert rows[2].values["status"] == "withdrawn"


def test_a_provider_receipt_is_kept_without_changing_the_outcome():
    d = reminder(T0)
    attempt(d, ACCEPTED)
    d.record_receipt(provider_id="SM123", status="undelivered", code="30003", at=T0, meta=META)
    assert (d.status, d.last_receipt) == (ACKNOWLEDGED, "undelivered")
    with pytest.raises(InvalidValueError):
        d.record_receipt(provider_id="SM123", status=" ", code="", at=T0, meta=META)
    events = d.collect_events()
    history = delivery_changes(events[-1], 9)
    assert history[0].values["detail"] == "undelivered 30003"
