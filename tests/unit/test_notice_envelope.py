"""A notice delivery's payload renders the same notice back (and refuses what is not one)."""

from datetime import UTC, datetime
from uuid import uuid4

import pytest

from application.notices.envelope import NoticeEnvelope
from application.notices.kinds import NoticeError, Reminder, ResultAvailable, Visit


def test_an_envelope_round_trips_through_its_payload():
    visit = Visit("a-1", datetime(2027, 3, 3, 9, 0, tzinfo=UTC), "Europe/Madrid", "Riverside")
    envelope = NoticeEnvelope(
        uuid4(), Reminder(visit), "es", 1, exempt=True, extra={"offset": "72h"}
    )
    payload = envelope.to_payload()
    assert all(isinstance(v, str) for v in payload.values())
    assert NoticeEnvelope.from_payload(payload) == envelope


def test_a_payload_that_is_not_a_notice_is_refused():
    with pytest.raises(NoticeError):
        NoticeEnvelope.from_payload({"kind": "reminder", "data": "{}"})
    good = NoticeEnvelope(None, ResultAvailable(), "en", 1).to_payload()
    with pytest.raises(NoticeError):
        NoticeEnvelope.from_payload({**good, "template_version": "one"})
