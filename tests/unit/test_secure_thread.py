"""SecureThread: its rules (given / when / then), replay equal to the live state through
the event store's transcoding, and the thread list's pure fold agreeing with the
aggregate for any sequence of commands."""

import contextlib
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.errors import DomainError, InvalidValueError
from domain.secure_thread import (
    CLOSED,
    OPEN,
    PATIENT,
    STAFF,
    SecureThread,
    ThreadClosedError,
    clean_body,
    clean_subject,
)
from projections.changes import Update, Upsert
from projections.secure_threads import TABLE, thread_changes
from tests.unit.test_replay import META, replayed, state
from tests.unit.test_replay_all import MAPPER

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
PATIENT_ID = UUID("00000000-0000-4000-8000-0000000000a1")
STAFF_ID = UUID("00000000-0000-4000-8000-0000000000b2")


def started(author_role: str = PATIENT, body: str = "Is it normal?") -> SecureThread:
    return SecureThread.start(
        id=uuid4(),
        patient_id=PATIENT_ID,
        subject="About my scan",
        body=body,
        author_role=author_role,
        author_id="someone",
        message_id=uuid4(),
        at=T0,
        meta=META,
    )


def post(thread: SecureThread, role: str, body: str = "text", minutes: int = 1) -> None:
    thread.post(
        message_id=uuid4(),
        author_role=role,
        author_id="someone",
        body=body,
        at=T0 + timedelta(minutes=minutes),
        meta=META,
    )


def kinds(thread: SecureThread) -> list[str]:
    return [type(e).__name__ for e in thread.collect_events()]


def test_a_patient_starts_a_thread_read_by_them_unread_by_staff():
    thread = started()
    assert kinds(thread) == ["Started", "MessagePosted"]
    assert thread.status == OPEN
    assert thread.assigned_to is None
    assert thread.unread_by(PATIENT) == 0
    assert thread.unread_by(STAFF) == 1


def test_reading_clears_the_readers_unread_messages_only():
    # Given a patient's message and two staff replies
    thread = started()
    post(thread, STAFF)
    post(thread, STAFF, minutes=2)
    thread.collect_events()
    assert (thread.unread_by(PATIENT), thread.unread_by(STAFF)) == (2, 0)
    # When the patient reads it
    thread.read_by_patient(T0, META)
    # Then nothing is unread for them; reading again records nothing
    assert thread.unread_by(PATIENT) == 0
    thread.read_by_patient(T0, META)
    assert kinds(thread) == ["ReadByPatient"]
    # And a new patient message is unread for staff
    post(thread, PATIENT, minutes=3)
    assert thread.unread_by(STAFF) == 1
    thread.read_by_staff(str(STAFF_ID), T0, META)
    assert thread.unread_by(STAFF) == 0


def test_a_closed_thread_takes_no_message_until_reopened():
    thread = started()
    thread.close(T0, META)
    with pytest.raises(ThreadClosedError):
        post(thread, PATIENT)
    with pytest.raises(ThreadClosedError):
        post(thread, STAFF)
    thread.reopen(T0, META)
    post(thread, STAFF)
    assert thread.status == OPEN
    assert len(thread.messages) == 2


def test_closing_twice_or_assigning_the_same_person_again_records_nothing():
    thread = started()
    thread.collect_events()
    thread.close(T0, META)
    thread.close(T0, META)
    thread.assign(STAFF_ID, T0, META)
    thread.assign(STAFF_ID, T0, META)
    thread.assign(None, T0, META)
    assert kinds(thread) == ["Closed", "Assigned", "Assigned"]
    assert thread.status == CLOSED
    assert thread.assigned_to is None


def test_the_same_message_twice_is_kept_once():
    thread = started()
    message_id = uuid4()
    for _ in range(2):
        thread.post(
            message_id=message_id, author_role=STAFF, author_id="s", body="x", at=T0, meta=META
        )
    assert [m.id for m in thread.messages][1:] == [message_id]


@pytest.mark.parametrize(
    "body",
    [
        "",
        "   ",
        "\n\n",
        "x" * 5001,
        "bell \x07",
        "nul \x00",
        "del \x7f",
        "c1 \x85 x",
        "sep \u2028 x",
    ],
)
def test_bad_bodies_are_refused(body):
    with pytest.raises(InvalidValueError):
        clean_body(body)
    with pytest.raises(InvalidValueError):
        started(body=body)


def test_a_body_keeps_line_breaks_and_tabs_and_ends_lines_with_newline():
    assert clean_body("  Hello,\r\n\tthank you\rBye  ") == "Hello,\n\tthank you\nBye"
    assert clean_body("é" * 5000) == "é" * 5000
    assert clean_body("¿Es normal? 😊") == "¿Es normal? 😊"


@pytest.mark.parametrize("subject", ["", "  ", "s" * 121, "two\nlines", "tab\there"])
def test_bad_subjects_are_refused(subject):
    with pytest.raises(InvalidValueError):
        clean_subject(subject)


def test_an_author_is_the_patient_or_staff():
    with pytest.raises(InvalidValueError):
        started(author_role="robot")


# Replay and the read model's fold ------------------------------------------------------

COMMANDS = {
    "patient_posts": lambda t, d: post(t, PATIENT, d.draw(st.text(min_size=1, max_size=20))),
    "staff_posts": lambda t, d: post(t, STAFF, d.draw(st.text(min_size=1, max_size=20))),
    "assign": lambda t, d: t.assign(d.draw(st.sampled_from([None, STAFF_ID])), T0, META),
    "patient_reads": lambda t, d: t.read_by_patient(T0, META),
    "staff_reads": lambda t, d: t.read_by_staff("s", T0, META),
    "close": lambda t, d: t.close(T0, META),
    "reopen": lambda t, d: t.reopen(T0, META),
}


def fold(events) -> dict:
    """The thread list's row after ``events``, as the view would write it."""
    row: dict = {}
    for event in events:
        for change in thread_changes(event):
            assert change.table == TABLE
            if isinstance(change, Upsert):
                row = {**change.key, **change.values}
            else:
                assert isinstance(change, Update)
                assert row, "an update before the row exists"
                row.update(change.values)
    return row


@settings(max_examples=150, deadline=None)
@given(
    first=st.sampled_from([PATIENT, STAFF]),
    steps=st.lists(st.sampled_from(sorted(COMMANDS)), max_size=14),
    data=st.data(),
)
def test_replay_and_the_thread_list_agree_with_the_live_thread(first, steps, data):
    live = started(author_role=first)
    for step in steps:
        with contextlib.suppress(DomainError):  # refused commands change nothing
            COMMANDS[step](live, data)
    events = live.collect_events()
    through_store = [MAPPER.to_domain_event(MAPPER.to_stored_event(e)) for e in events]
    for copy in (replayed(events), replayed(through_store)):
        assert state(copy) == state(live)
    row = fold(through_store)
    assert row["id"] == live.id
    assert row["patient_id"] == PATIENT_ID
    assert row["status"] == live.status
    assert row["assigned_to"] == live.assigned_to
    assert row["last_message_at"] == live.messages[-1].at
    assert row["last_author_role"] == live.messages[-1].author_role
    assert row["unread_by_patient"] == (live.unread_by(PATIENT) > 0)
    assert row["unread_by_staff"] == (live.unread_by(STAFF) > 0)
    assert row["version"] == live.version
