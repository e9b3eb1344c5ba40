"""Several patients' ADT of one claim are recorded in one registry save, and a message
that cannot be applied is refused alone: the others of its batch are applied."""

from collections.abc import Sequence
from dataclasses import replace
from datetime import date
from uuid import UUID

import pytest

from adapters.hl7.listener import BackgroundListener, ListenerConfig
from adapters.hl7.processor import InboundProcessor
from application.registry import IncompletePatientError, RisPatient
from application.ris.inbound_ports import InboundHandler, InboundMessage
from application.ris.orders import APPLIED
from domain.context import system_actor
from domain.errors import DomainError
from tests.integration.test_inbound_effects import log_head, message
from tests.integration.test_inbound_ordering import adt, outcomes, send_all, waiting

pytestmark = pytest.mark.integration

NO_BIRTH_DATE = "PID|1||MRN-BAD^^^CENTRE^MR||NOBIRTH^JO||"


def a04(control_id: str, mrn: str, family: str) -> InboundMessage:
    return message(adt("A04", control_id, mrn, family).decode(), control_id)


def bad_a04(control_id: str) -> InboundMessage:
    """A new patient without a birth date: the registry refuses to make them known."""
    text = adt("A04", control_id, "MRN-BAD", "NOBIRTH").decode()
    lines = text.split("\r")
    return message("\r".join(NO_BIRTH_DATE if line.startswith("PID") else line for line in lines))


@pytest.fixture
def saves(runtime, monkeypatch) -> list[int]:
    """How many aggregates each registry save recorded, one entry per save."""
    registry = runtime.services.registry
    counted: list[int] = []
    save = registry.save

    def counting(*aggregates):
        counted.append(len(aggregates))
        return save(*aggregates)

    monkeypatch.setattr(registry, "save", counting)
    return counted


def test_a_batch_of_new_patients_is_one_save_and_a_bad_one_is_refused_alone(runtime, saves):
    # Given five new patients, one new patient without a birth date, and a merge
    good = [a04(f"G{p}", f"MRN{p}", f"FAM{p}") for p in range(5)]
    bad = bad_a04("BAD")
    merge = message(adt("A40^ADT_A39", "M", "MRN0", "FAM0", "MRG|MRN9^^^CENTRE^MR").decode())
    batch = [*good[:2], bad, *good[2:], merge]

    # When the handler gets them as one batch
    results = runtime.inbound.handle_batch(batch)

    # Then the five are applied in one registry save (a patient and an identifier each),
    # the bad one is refused alone, and the merge is left to be handled alone
    assert [results[m.id] for m in good] == [APPLIED] * 5
    assert isinstance(results[bad.id], IncompletePatientError)
    assert merge.id not in results
    assert saves == [10]
    registry = runtime.services.registry
    for p in range(5):
        patient = registry.patient_by_identifier("CENTRE", f"MRN{p}")
        assert patient is not None
        assert patient.family_name == f"FAM{p}"
    assert registry.patient_by_identifier("CENTRE", "MRN-BAD") is None

    # and the same batch again changes nothing
    head = log_head(runtime, "registry")
    again = runtime.inbound.handle_batch(batch)
    assert [again[m.id] for m in good] == [APPLIED] * 5
    assert log_head(runtime, "registry") == head


def test_a_patient_an_earlier_one_of_the_batch_changes_too_is_left_to_record_alone(runtime):
    # Given two messages naming the same new patient (under two identifiers)
    first = RisPatient(
        identifiers=[("CENTRE", "MRN1")],
        given_name="JO",
        family_name="FIRST",
        birth_date=date(1980, 1, 1),
        phone=None,
        update_demographics=True,
        actor=system_actor(request_id="test", source="test"),
    )
    second = replace(first, identifiers=[("CENTRE", "MRN1"), ("LAB", "L1")])
    registry = runtime.services.registry

    # When the registry records them as one batch
    recorded = registry.record_patients_from_ris([first, second])

    # Then the first is recorded and the second left out (None), to be recorded alone
    assert isinstance(recorded[0], UUID)
    assert recorded[1] is None
    assert registry.patient_by_identifier("LAB", "L1") is None
    assert registry.record_ris_patient(second) == recorded[0]
    assert registry.patient_by_identifier("LAB", "L1") == registry.patient(recorded[0])


class Counting(InboundHandler):
    """The real handler, counting how messages reach it."""

    def __init__(self, inner: InboundHandler, batch_fails: bool = False) -> None:
        self.inner = inner
        self.batch_fails = batch_fails
        self.batches: list[int] = []
        self.alone: list[str] = []

    def ordering_key(self, message: InboundMessage) -> str | None:
        return self.inner.ordering_key(message)

    def handle(self, message: InboundMessage) -> str:
        self.alone.append(message.control_id)
        return self.inner.handle(message)

    def handle_batch(self, messages: Sequence[InboundMessage]) -> dict[UUID, str | DomainError]:
        self.batches.append(len(messages))
        if self.batch_fails:
            raise RuntimeError("a bug in the batch")
        return self.inner.handle_batch(messages)


def stored(runtime, messages: list[bytes]) -> None:
    config = ListenerConfig(host="127.0.0.1", port=0)
    with BackgroundListener(runtime.url, config, cipher=runtime.cipher) as listener:
        send_all(listener.port, messages)


def test_the_processor_hands_a_claim_to_the_handler_as_one_batch(runtime, saves):
    # Given six new patients stored, the fourth without a birth date
    raw = [adt("A04", f"N{p}", f"MRN{p}", f"FAM{p}") for p in range(6)]
    raw[3] = raw[3].replace(b"||19800101|F", b"||")
    stored(runtime, raw)
    handler = Counting(runtime.inbound)

    # When one processor takes them
    assert InboundProcessor(runtime.pool, handler, runtime.cipher).process_pending(100) == 6

    # Then they went to the handler as one batch, in one registry save, none alone;
    # the bad one alone is quarantined, the others applied
    assert handler.batches == [6]
    assert handler.alone == []
    assert saves == [10]
    found = outcomes(runtime.url)
    assert found.pop("N3").startswith("quarantined incomplete_patient")
    assert set(found.values()) == {"processed applied"}
    assert waiting(runtime.url) == 0


def test_a_batch_that_fails_as_a_whole_is_handled_one_by_one(runtime):
    # Given three new patients stored, and a handler whose batch fails
    stored(runtime, [adt("A04", f"F{p}", f"MRN{p}", f"FAM{p}") for p in range(3)])
    handler = Counting(runtime.inbound, batch_fails=True)

    # When one processor takes them
    assert InboundProcessor(runtime.pool, handler, runtime.cipher).process_pending(100) == 3

    # Then each was handled alone and applied
    assert handler.batches == [3]
    assert handler.alone == ["F0", "F1", "F2"]
    assert set(outcomes(runtime.url).values()) == {"processed applied"}
