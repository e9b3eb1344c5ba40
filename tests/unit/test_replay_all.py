"""Property: for every aggregate, replaying its events gives the live object's state,
both from the events as recorded and after the application's mapper stored and read
them back (the JSON transcodings a real event store goes through).

Appointment and ResourceDay are in test_replay.py; this covers the others. Each test
draws a command sequence (commands a domain rule refuses are skipped, as in a real
application) and compares states at the end.
"""

import contextlib
from datetime import UTC, date, datetime, timedelta
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from application.base import BaseApplication
from domain.account import ROLES, Account
from domain.appointment_type import MODALITIES, AppointmentType
from domain.errors import DomainError
from domain.location import Location
from domain.patient import Patient
from domain.patient_identifier import PatientIdentifier
from domain.resource import Resource
from domain.ris.message_delivery import CHANNELS, OUTCOMES, MessageDelivery, RetryPolicy
from domain.ris.order import RESULT_STATUSES, ImagingOrder, ResultReference
from domain.ris.ris_booking import RisBooking
from domain.ris.unmatched_result import UnmatchedResult
from domain.schedule import WEEKDAYS, Interval
from tests.unit.test_patient_identifiers import registered
from tests.unit.test_replay import META, replayed, state

MAPPER = BaseApplication({"PERSISTENCE_MODULE": "eventsourcing.popo"}).mapper
ZONES = ("UTC", "America/New_York", "America/Chicago", "Europe/Berlin")
AT = datetime(2026, 11, 30, 9, tzinfo=UTC)

# Free text as people and other systems send it, control characters included.
text = st.text(max_size=30)
words = st.text(st.characters(categories=["L", "N"]), min_size=1, max_size=12)
# Aggregates hold UTC instants (drawn here from wall clocks in several zones). A ZoneInfo
# time in a repeated hour never equals its fixed-offset copy (PEP 495), so compare instants.
instants = st.datetimes(
    min_value=datetime(2020, 1, 1),
    max_value=datetime(2035, 1, 1),
    timezones=st.sampled_from([UTC, *map(ZoneInfo, ZONES[1:])]),
    allow_imaginary=False,
).map(lambda moment: moment.astimezone(UTC))
message_ids = st.sampled_from(["m1", "m2", "m3", "m4"])  # few, so messages repeat
pool = [uuid4() for _ in range(3)]
uuids = st.sampled_from(pool)


def assert_replays(live) -> None:
    events = live.collect_events()
    assert events
    through_store = [MAPPER.to_domain_event(MAPPER.to_stored_event(e)) for e in events]
    for copy in (replayed(events), replayed(through_store)):
        assert type(copy) is type(live)
        assert state(copy) == state(live)
        assert copy.version == live.version == len(events)


def run(live, steps, data, commands) -> None:
    """Apply each drawn step; a command the domain refuses changes nothing."""
    for step in steps:
        with contextlib.suppress(DomainError):
            commands[step](live, data)


PROPERTY = settings(max_examples=100, deadline=None)


# Account ------------------------------------------------------------------------------

ACCOUNT = {
    "password": lambda a, d: a.change_password_hash(d.draw(text), META),
    "role": lambda a, d: a.change_role(
        d.draw(st.sampled_from(ROLES)), d.draw(st.lists(uuids, max_size=2)), META
    ),
    "disable": lambda a, d: a.disable(d.draw(text), META),
    "enable": lambda a, d: a.enable(META),
    "enrol": lambda a, d: a.start_totp_enrolment(d.draw(words), META),
    "confirm": lambda a, d: a.enable_totp(d.draw(st.lists(words, max_size=3)), META),
    "totp_off": lambda a, d: a.disable_totp(META),
    "recovery": lambda a, d: a.use_recovery_code(
        d.draw(st.sampled_from([*a.recovery_code_hashes, "not-one"])), META
    ),
}


@PROPERTY
@given(
    role=st.sampled_from(ROLES),
    centres=st.lists(uuids, max_size=2),
    steps=st.lists(st.sampled_from(sorted(ACCOUNT)), max_size=14),
    data=st.data(),
)
def test_account_replay_equals_live_state(role, centres, steps, data):
    live = Account.open(
        email=f"{data.draw(words)}@example.org",
        password_hash=data.draw(text),
        role=role,
        patient_id=uuid4() if role == "patient" else None,
        centres=centres,
        meta=META,
    )
    run(live, steps, data, ACCOUNT)
    assert_replays(live)


# Patient and its identifiers ------------------------------------------------------------

birth_dates = st.dates(min_value=date(1900, 1, 1), max_value=date(2026, 11, 30))
phones = st.none() | st.text("+0123456789 ", max_size=15)

PATIENT = {
    "identify": lambda p, d: p.identify(
        authority=d.draw(st.sampled_from(["RIS", "HOSP", " "])), value=d.draw(text), meta=META
    ),
    "demographics": lambda p, d: p.change_demographics(
        given_name=d.draw(text),
        family_name=d.draw(words),
        birth_date=d.draw(birth_dates),
        phone=d.draw(phones),
        today=date(2026, 11, 30),
        at=AT,
        meta=META,
    ),
    "merge": lambda p, d: p.merge_into(d.draw(st.sampled_from([*pool, p.id])), META),
}


@PROPERTY
@given(
    steps=st.lists(st.sampled_from(sorted(PATIENT)), max_size=10),
    birth_date=birth_dates,
    phone=phones,
    data=st.data(),
)
def test_patient_replay_equals_live_state(steps, birth_date, phone, data):
    live = Patient.register(
        id=uuid4(),
        given_name=data.draw(words),
        family_name=data.draw(words),
        birth_date=birth_date,
        email="someone@example.org",
        phone=phone,
        today=date(2026, 11, 30),
        meta=META,
    )
    run(live, steps, data, PATIENT)
    assert_replays(live)


@PROPERTY
@given(authority=words, value=text, patient_id=st.uuids())
def test_patient_identifier_replay_equals_live_state(authority, value, patient_id):
    live = PatientIdentifier(
        authority=authority,
        value=value,
        patient_id=patient_id,
        meta=META,
    )
    assert live.id == PatientIdentifier.create_id(authority, value)
    assert_replays(live)


# The catalog ----------------------------------------------------------------------------

addresses = st.fixed_dictionaries({"line1": words, "city": words}, optional={"region": text})


@st.composite
def location_specs(draw, code="site"):
    kind = draw(st.sampled_from(["fixed", "mobile"]))
    spec = {
        "code": code,
        "name": draw(words),
        "kind": kind,
        "timezone": draw(st.sampled_from(ZONES)),
        "address": draw(addresses),
        "phone": draw(text),
    }
    if kind == "mobile":
        spec["visits"] = draw(
            st.lists(
                st.fixed_dictionaries(
                    {
                        "site": words,
                        "address": addresses,
                        "weekdays": st.lists(st.sampled_from(WEEKDAYS), max_size=3),
                        "dates": st.lists(st.dates().map(date.isoformat), max_size=2),
                    }
                ),
                min_size=1,
                max_size=2,
            )
        )
    return spec


LOCATION = {
    "revise": lambda loc, d: loc.revise(d.draw(location_specs()), META),
    "attach": lambda loc, d: loc.attach(d.draw(uuids), META),
    "detach": lambda loc, d: loc.detach(d.draw(uuids), META),
}


@PROPERTY
@given(
    spec=location_specs(),
    steps=st.lists(st.sampled_from(sorted(LOCATION)), max_size=10),
    data=st.data(),
)
def test_location_replay_equals_live_state(spec, steps, data):
    live = Location.define(spec, META)
    run(live, steps, data, LOCATION)
    assert_replays(live)


@st.composite
def opening_hours(draw):
    def span(opens: int) -> str:
        closes = draw(st.integers(opens + 1, 24 * 4)) * 15
        return f"{opens * 15 // 60:02d}:{opens * 15 % 60:02d}-{closes // 60:02d}:{closes % 60:02d}"

    days = draw(st.lists(st.sampled_from(WEEKDAYS), min_size=1, max_size=3, unique=True))
    return {day: [span(draw(st.integers(0, 24 * 4 - 1)))] for day in days}


@st.composite
def resource_specs(draw, code="scanner"):
    def block():
        start = draw(instants)
        end = start + timedelta(minutes=draw(st.integers(1, 600)))
        return {"start": start.isoformat(), "end": end.isoformat(), "reason": draw(text)}

    return {
        "code": code,
        "name": draw(words),
        "modality": draw(st.sampled_from(MODALITIES)),
        "location_id": str(draw(uuids)),
        "hours": draw(opening_hours()),
        "closures": [
            {"date": day.isoformat(), "reason": draw(text)}
            for day in draw(st.lists(st.dates(), max_size=2))
        ],
        "blocks": [block() for _ in range(draw(st.integers(0, 2)))],
    }


appointment_type_specs = st.fixed_dictionaries(
    {
        "code": st.just("exam"),
        "name": words,
        "modality": st.sampled_from(MODALITIES),
        "cpt": st.from_regex(r"\A[0-9]{4}[0-9A-Z]\Z"),
        "duration_minutes": st.integers(5, 480),
    },
    optional={"preparation": text},
)


CATALOG_ENTRIES = {
    "resource": (Resource, resource_specs()),
    "appointment_type": (AppointmentType, appointment_type_specs),
}


@pytest.mark.parametrize("kind", sorted(CATALOG_ENTRIES))
@PROPERTY
@given(data=st.data())
def test_catalog_entry_replay_equals_live_state(kind, data):
    aggregate, specs = CATALOG_ENTRIES[kind]
    live = aggregate.define(data.draw(specs), META)
    for revision in data.draw(st.lists(specs, max_size=4)):
        live.revise(revision, META)
    assert_replays(live)


# The RIS integration --------------------------------------------------------------------

results = st.builds(
    ResultReference,
    accession_number=text,
    procedure_code=text,
    procedure_text=text,
    result_status=st.sampled_from([*sorted(RESULT_STATUSES), "unknown"]),
    observed_at=st.none() | instants,
    viewer_link=text,
)

ORDER = {
    "change": lambda o, d: o.change(
        accession_number=d.draw(text),
        procedure_code=d.draw(text),
        procedure_text=d.draw(text),
        message_id=d.draw(message_ids),
        meta=META,
    ),
    "cancel": lambda o, d: o.cancel(reason=d.draw(text), message_id=d.draw(message_ids), meta=META),
    "link": lambda o, d: o.link_appointment(d.draw(uuids), META),
    "release": lambda o, d: o.release_appointment(o.appointment_id or d.draw(uuids), META),
    "complete": lambda o, d: o.complete_exam(o.appointment_id or d.draw(uuids), META),
    "result": lambda o, d: o.reference_result(
        d.draw(results), message_id=d.draw(message_ids), meta=META
    ),
}


@PROPERTY
@given(
    numbers=st.tuples(text, text).filter(lambda pair: any(n.strip() for n in pair)),
    steps=st.lists(st.sampled_from(sorted(ORDER)), max_size=12),
    data=st.data(),
)
def test_imaging_order_replay_equals_live_state(numbers, steps, data):
    live = ImagingOrder.place(
        id=uuid4(),
        patient_id=uuid4(),
        placer_number=numbers[0],
        filler_number=numbers[1],
        accession_number=data.draw(text),
        procedure_code=data.draw(text),
        procedure_text=data.draw(text),
        message_id=data.draw(message_ids),
        meta=META,
    )
    run(live, steps, data, ORDER)
    assert_replays(live)


@st.composite
def spans(draw):
    start = draw(instants)
    return Interval(start, start + timedelta(minutes=draw(st.integers(1, 600))))


RIS_BOOKING = {
    "move": lambda b, d: b.move(
        resource_id=d.draw(uuids),
        span=d.draw(spans()),
        timezone=d.draw(st.sampled_from(ZONES)),
        message_id=d.draw(message_ids),
        meta=META,
    ),
    "release": lambda b, d: b.release(
        reason=d.draw(text), message_id=d.draw(message_ids), meta=META
    ),
}


@PROPERTY
@given(
    filler=text,
    span=spans(),
    steps=st.lists(st.sampled_from(sorted(RIS_BOOKING)), max_size=10),
    data=st.data(),
)
def test_ris_booking_replay_equals_live_state(filler, span, steps, data):
    live = RisBooking(
        filler_id=filler,
        resource_id=data.draw(uuids),
        start=span.start,
        end=span.end,
        timezone=data.draw(st.sampled_from(ZONES)),
        message_id=data.draw(message_ids),
        meta=META,
    )
    run(live, steps, data, RIS_BOOKING)
    assert_replays(live)


@PROPERTY
@given(
    result=results,
    numbers=st.tuples(text, text, text),
    resolutions=st.lists(text, max_size=3),
)
def test_unmatched_result_replay_equals_live_state(result, numbers, resolutions):
    live = UnmatchedResult.keep(
        result,
        message_id="m1",
        placer_number=numbers[0],
        filler_number=numbers[1],
        patient_identifier=numbers[2],
        meta=META,
    )
    for note in resolutions:
        live.resolve(note, META)
    assert_replays(live)


POLICY = RetryPolicy(attempt_limit=3, ambiguous_limit=2, give_up_after=timedelta(hours=1))

DELIVERY = {
    "attempt": lambda m, d: m.record_attempt(
        outcome=d.draw(st.sampled_from(OUTCOMES)),
        code=d.draw(st.sampled_from(["AA", "AE", "AR", ""])),
        detail=d.draw(st.text(max_size=600)),
        at=m.cause_at + timedelta(minutes=d.draw(st.integers(0, 180))),
        policy=POLICY,
        jitter=d.draw(st.floats(0.5, 1.0)),
        meta=META,
    ),
    "redrive": lambda m, d: m.redrive(
        reason=d.draw(text), at=m.cause_at + timedelta(hours=d.draw(st.integers(0, 5))), meta=META
    ),
}


@PROPERTY
@given(
    channel=st.sampled_from(CHANNELS),
    cause_at=instants,
    payload=st.dictionaries(words, text, max_size=3),
    steps=st.lists(st.sampled_from(sorted(DELIVERY)), max_size=14),
    data=st.data(),
)
def test_message_delivery_replay_equals_live_state(channel, cause_at, payload, steps, data):
    live = MessageDelivery.queue(
        channel=channel,
        recipient=data.draw(words),
        message_type="SIU^S12",
        cause=f"{uuid4()}:1",
        cause_at=cause_at,
        ordering_key=data.draw(text),
        payload=payload,
        meta=META,
    )
    run(live, steps, data, DELIVERY)
    assert_replays(live)


def test_the_mapper_round_trip_is_not_the_identity():
    """The stored form really is bytes the transcoder wrote (so the comparison above
    is against decoded events, not the objects themselves)."""
    live = registered()
    (event,) = live.collect_events()
    stored = MAPPER.to_stored_event(event)
    assert isinstance(stored.state, bytes)
    assert b"1950-01-02" in stored.state
    decoded = MAPPER.to_domain_event(stored)
    assert decoded is not event
    assert decoded.birth_date == date(1950, 1, 2)
    assert isinstance(decoded.originator_id, UUID)
