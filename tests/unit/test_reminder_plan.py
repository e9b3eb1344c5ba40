"""The reminders the communication policy queues (``plan_reminders``) and the identities
they get: properties over the same cases as the domain's schedule (tests in
``test_reminder_schedule``), at the level of what is queued and later withdrawn. The time
a queued reminder goes (its due time, or the end of the hold quiet hours put on it) is
never inside quiet hours, never at or after the exam, never before "now", never twice;
every reminder's identity is one that a later change of the appointment looks for."""

from datetime import UTC, datetime, timedelta
from uuid import UUID

from hypothesis import given, settings
from hypothesis import strategies as st

from application.communications.causes import (
    MAX_REMINDERS,
    PATIENT_CHANNELS,
    plan_reminders,
    reminder_cause,
    reminder_ids,
)
from domain.reminders import AFTER_QUIET_HOURS
from domain.ris.message_delivery import MessageDelivery
from tests.unit.test_reminder_schedule import DAY, HOUR, cases, quiet_at

APPOINTMENT = UUID("0b8a3c4e-3a53-4c1e-9f55-0d6f1a1e2b3c")
PATIENT = UUID("6f1d2c3b-4a59-4e8f-8b7a-1c2d3e4f5a6b")


def plan(case: dict) -> list:
    return plan_reminders(
        case["start"],
        case["location_zone"],
        case["offsets"],
        case["now"],
        None if case["exempt"] else case["quiet_hours"],
        case["patient_zone"],
    )


@settings(max_examples=600, deadline=None)
@given(cases())
def test_a_queued_reminder_goes_outside_quiet_hours_before_the_exam_and_once(case):
    planned = plan(case)
    quiet, zone = case["quiet_hours"], case["patient_zone"] or case["location_zone"]
    goes = [reminder.goes_at for reminder in planned]
    for reminder in planned:
        assert case["now"] <= reminder.goes_at < case["start"]
        if quiet is not None and not case["exempt"]:
            assert not quiet_at(reminder.goes_at, quiet, zone)
        if reminder.held_until is not None:
            assert reminder.placement == AFTER_QUIET_HOURS
            assert reminder.due_at < reminder.held_until
    assert len(set(goes)) == len(goes)
    # Numbered from the exam backwards: 1 is the last to go.
    assert [r.number for r in planned] == list(range(1, len(planned) + 1))
    assert goes == sorted(goes, reverse=True)
    assert len(planned) <= MAX_REMINDERS


@settings(max_examples=300, deadline=None)
@given(cases(), st.integers(1, 50))
def test_every_reminder_queued_is_among_the_ids_a_later_change_withdraws(case, version):
    candidates = set(reminder_ids(APPOINTMENT, version, PATIENT))
    for reminder in plan(case):
        for channel in PATIENT_CHANNELS:
            cause = reminder_cause(APPOINTMENT, version, reminder.number)
            assert MessageDelivery.create_id(cause, str(PATIENT), channel) in candidates
    # ... and none of another version's.
    assert not candidates & set(reminder_ids(APPOINTMENT, version + 1, PATIENT))


def test_with_more_offsets_than_kept_the_nearest_to_the_exam_are_queued():
    start = datetime(2026, 12, 4, 14, tzinfo=UTC)
    offsets = [timedelta(hours=h) for h in range(1, 16)]
    planned = plan_reminders(start, "UTC", offsets, start - timedelta(days=2), None, None)
    assert [r.offset for r in planned] == offsets[:MAX_REMINDERS]


def test_an_exam_type_sets_its_own_offsets_or_none_or_leaves_the_centres():
    from application.communications.visits import exam_offsets

    assert exam_offsets({"reminder_offsets": "2h, 48h"}) == (timedelta(hours=48), 2 * HOUR)
    assert exam_offsets({"reminder_offsets": ["24h", "2h"]}) == (DAY, 2 * HOUR)
    assert exam_offsets({"reminder_offsets": ""}) == ()  # no reminders for this exam
    assert exam_offsets({}) is None  # the centre's apply
