"""Property: replaying an aggregate's events gives the same state as the live object."""

import contextlib
from datetime import UTC, date, datetime, timedelta
from uuid import uuid4

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.appointment import Appointment
from domain.errors import DomainError
from domain.resource_day import ResourceDay
from domain.schedule import Interval

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
WINDOW = Interval(datetime(2026, 12, 1, 0, tzinfo=UTC), datetime(2026, 12, 2, 0, tzinfo=UTC))
META = {"actor_id": "x", "role": "patient", "request_id": "", "source": "test"}


def replayed(events):
    aggregate = None
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


def state(aggregate) -> dict:
    return {k: v for k, v in vars(aggregate).items() if k != "_pending_events"}


commands = st.lists(
    st.tuples(
        st.sampled_from(
            ["reschedule", "modify", "displace", "cancel", "check_in", "complete", "no_show"]
        ),
        st.integers(0, 23 * 4),  # a quarter-hour of the day
        st.integers(-30, 30),  # minutes of the clock relative to the start
    ),
    max_size=8,
)


@settings(max_examples=300, deadline=None)
@given(start_quarter=st.integers(0, 22 * 4), steps=commands)
def test_appointment_replay_equals_live_state(start_quarter, steps):
    def at(quarter: int) -> Interval:
        start = WINDOW.start + timedelta(minutes=15 * quarter)
        return Interval(start, start + timedelta(minutes=45))

    live = Appointment.book(
        id=uuid4(),
        patient_id=uuid4(),
        appointment_type_id=uuid4(),
        location_id=uuid4(),
        resource_id=uuid4(),
        span=at(start_quarter),
        timezone="UTC",
        windows=[WINDOW],
        now=NOW,
        meta=META,
    )
    for name, quarter, clock in steps:
        now = live.start + timedelta(minutes=clock) if name != "reschedule" else NOW
        with contextlib.suppress(DomainError):
            if name == "reschedule":
                live.reschedule(
                    location_id=uuid4(),
                    resource_id=live.resource_id,
                    span=at(quarter),
                    timezone="UTC",
                    windows=[WINDOW],
                    now=now,
                    reason="moved",
                    meta=META,
                )
            elif name == "modify":
                live.modify(notes=f"note {quarter % 3}", meta=META)
            elif name == "displace":
                live.displace(by="ris:1", reason="taken", meta=META)
            elif name == "cancel":
                live.cancel(reason="because", meta=META)
            elif name == "check_in":
                live.check_in(now=now, meta=META)
            elif name == "complete":
                live.complete(meta=META)
            else:
                live.mark_no_show(now=now, reason="absent", meta=META)
    events = live.collect_events()
    assert state(replayed(events)) == state(live)
    assert replayed(events).version == len(events)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.booleans(), st.integers(0, 5), st.integers(0, 40), st.integers(1, 8)),
        max_size=20,
    )
)
def test_resource_day_replay_equals_live_state(steps):
    live = ResourceDay(resource_id=uuid4(), day=date(2026, 12, 1))
    for reserve, holder, quarter, length in steps:
        start = WINDOW.start + timedelta(minutes=15 * quarter)
        with contextlib.suppress(DomainError):
            if reserve:
                live.reserve(
                    str(holder), Interval(start, start + timedelta(minutes=15 * length)), META
                )
            else:
                live.release(str(holder), META)
    assert state(replayed(live.collect_events())) == state(live)
