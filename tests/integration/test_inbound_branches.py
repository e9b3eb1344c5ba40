"""The inbound branches a real feed reaches sooner or later, each sent over MLLP to the
listener and applied by the processing stage with the composition root's handler: a
merge without MRG, a result status we do not know, removed resource lines, a booking
that ends before it starts, and times without an offset on the days clocks change."""

from datetime import UTC, datetime

import pytest

from adapters.hl7.listener import BackgroundListener, ListenerConfig
from adapters.hl7.processor import InboundProcessor
from application.ris.orders import Orders
from application.ris.ris_bookings import RisBookings
from domain.resource import Resource
from domain.ris.order import FINAL
from domain.ris.ris_booking import OCCUPYING, RELEASED
from tests.integration.test_hl7_listener import exchange, rows, segments

pytestmark = pytest.mark.integration

PID = "PID|1||MRN1^^^CENTRE^MR||Doe^Jane||19800229|F"


def hl7(kind: str, control_id: str, *lines: str) -> bytes:
    """A message from the RIS: its MSH, then ``lines`` (CR between segments)."""
    msh = f"MSH|^~\\&|RIS|CENTRE|IMGBRIDGE|IMGBRIDGE|20261130120000||{kind}|{control_id}|P|2.5.1"
    return "\r".join((msh, *lines)).encode()


def seg(name: str, fields: dict[int, str]) -> str:
    """A segment from its fields by HL7 position."""
    return "|".join([name, *(fields.get(i, "") for i in range(1, max(fields) + 1))])


def deliver(runtime, *messages: bytes) -> list[tuple[str, str]]:
    """Send each message to the listener (each must be answered AA: stored), then let
    the processing stage apply them. (status, outcome or error) of each, in order."""
    with BackgroundListener(
        runtime.url, ListenerConfig(host="127.0.0.1", port=0), cipher=runtime.cipher
    ) as listener:
        for raw in messages:
            assert segments(exchange(listener.port, raw))["MSA"][1] == "AA"
    InboundProcessor(runtime.pool, runtime.inbound, runtime.cipher).process_pending(100)
    handled = rows(runtime.url, cipher=runtime.cipher)[-len(messages) :]
    return [(row[1], row[7] if row[1] == "processed" else row[6]) for row in handled]


def log_heads(runtime) -> dict[str, int]:
    services = runtime.services
    return {
        app.name: app.recorder.max_notification_id() or 0
        for app in (services.registry, services.scheduling)
    }


# ADT ------------------------------------------------------------------------------------


def test_a_merge_without_mrg_is_quarantined_and_changes_nobody(runtime):
    # Given an A40 naming the survivor but not the record to merge into it
    a40 = hl7("ADT^A40^ADT_A39", "A40NOMRG", "EVN|A40|20261130120000", PID)
    before = log_heads(runtime)

    # When it arrives
    [(status, error)] = deliver(runtime, a40)

    # Then it was answered (stored) but quarantined, and no patient was made or changed
    assert status == "quarantined"
    assert error.startswith("missing_field: ADT^A40 without MRG-1")
    assert runtime.services.registry.patient_by_identifier("CENTRE", "MRN1") is None
    assert log_heads(runtime) == before


# ORU ------------------------------------------------------------------------------------

ORDER = {1: "1", 2: "PL1^PLACER", 3: "FL1^FILLER", 4: "CTHEAD^CT head", 18: "ACC1"}


def oru(control_id: str, *statuses: str) -> bytes:
    """A result message with one OBR per status for the order PL1/FL1."""
    lines = [PID, "ORC|RE|PL1^PLACER|FL1^FILLER"]
    for n, status in enumerate(statuses, 1):
        lines.append(seg("OBR", {**ORDER, 1: str(n), 7: "20261201103000-0500", 25: status}))
    return hl7("ORU^R01^ORU_R01", control_id, *lines)


@pytest.fixture
def order(runtime):
    """The order PL1/FL1 for MRN1, placed by the RIS."""
    new = hl7("ORM^O01^ORM_O01", "NW1", PID, "ORC|NW|PL1^PLACER|FL1^FILLER", seg("OBR", ORDER))
    assert deliver(runtime, new) == [("processed", "applied")]
    placed = Orders(runtime.services.scheduling).find_order("PLACER:PL1", "FILLER:FL1")
    assert placed is not None
    return placed


@pytest.mark.parametrize("statuses", [("X",), ("",), ("F", "Q")])
def test_a_result_status_we_do_not_know_quarantines_the_whole_message(runtime, order, statuses):
    # Given the order, with no result yet
    before = log_heads(runtime)

    # When a result arrives with an OBR-25 that is not P, F or C (in any of its OBRs)
    [(status, error)] = deliver(runtime, oru("ORUBAD", *statuses))

    # Then it is quarantined, and none of its results was applied
    assert status == "quarantined"
    assert error.startswith("invalid_value: OBR-25 result status")
    assert Orders(runtime.services.scheduling).find_order("", "FILLER:FL1").result_status is None
    assert log_heads(runtime) == before


def test_a_known_result_status_is_applied(runtime, order):
    # (the same message with F: the quarantine above is about the status alone)
    assert deliver(runtime, oru("ORUOK", "F")) == [("processed", "applied")]
    assert Orders(runtime.services.scheduling).find_order("", "FILLER:FL1").result_status == FINAL


# SIU ------------------------------------------------------------------------------------

CT, XR = Resource.create_id("riverside-ct-1"), Resource.create_id("riverside-xr-1")


def siu(trigger: str, control_id: str, timing: str, *resource_lines: str) -> bytes:
    sch = seg("SCH", {1: "P9", 2: "RIS9", 11: timing})
    return hl7(f"SIU^{trigger}^SIU_S12", control_id, sch, PID, "RGS|1|A", *resource_lines)


TUESDAY_10_TO_1045 = "^^45^20261201100000-0500^20261201104500-0500"


def test_removed_resource_lines_hold_nothing_and_all_removed_frees_the_time(runtime):
    # Given a booking whose lines name our CT as a service (AIS), as removed (AIG, D) and
    # as changed away (AIL, C), and our X-ray as added
    s12 = siu(
        "S12",
        "S12LINES",
        TUESDAY_10_TO_1045,
        "AIS|1|A|riverside-ct-1^CT one",
        "AIG|1|D|riverside-ct-1^CT one",
        "AIL|1|C|riverside-ct-1^CT one",
        "AIG|2|A|riverside-xr-1^X-ray one",
    )

    # When it arrives, only the added line holds time
    assert deliver(runtime, s12) == [("processed", "applied")]
    scheduling = runtime.services.scheduling
    booking = RisBookings(scheduling).ris_booking("RIS9")
    assert booking is not None
    assert (booking.status, booking.resource_id) == (OCCUPYING, XR)
    assert set(scheduling.resource_day(XR, datetime(2026, 12, 1).date()).reservations) == {
        "ris:RIS9"
    }
    assert scheduling.resource_day(CT, datetime(2026, 12, 1).date()) is None

    # When a change removes that line too, the booking holds nothing any more
    s14 = siu("S14", "S14LINES", TUESDAY_10_TO_1045, "AIG|2|D|riverside-xr-1^X-ray one")
    assert deliver(runtime, s14) == [("processed", "applied")]
    assert RisBookings(scheduling).ris_booking("RIS9").status == RELEASED
    assert not scheduling.resource_day(XR, datetime(2026, 12, 1).date()).reservations


def test_a_booking_that_ends_before_it_starts_is_quarantined(runtime):
    backwards = siu(
        "S12",
        "S12BACK",
        "^^45^20261201104500-0500^20261201100000-0500",
        "AIG|1|A|riverside-ct-1^CT one",
    )
    before = log_heads(runtime)
    [(status, error)] = deliver(runtime, backwards)
    assert status == "quarantined"
    assert error == "invalid_value: an SIU booking that ends before it starts"
    assert RisBookings(runtime.services.scheduling).ris_booking("RIS9") is None
    assert log_heads(runtime) == before


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


# Times without an offset are New York wall-clock times (Riverside's zone). Clocks go
# forward 02:00 -> 03:00 on 2027-03-14 and back 02:00 -> 01:00 on 2027-11-07.
@pytest.mark.parametrize(
    ("timing", "line", "span"),
    [
        pytest.param(
            "^^45^20270314023000^20270314031500",
            "AIG|1|A|riverside-ct-1",
            (utc(2027, 3, 14, 7, 0), utc(2027, 3, 14, 7, 15)),
            id="start-skipped-by-spring-forward-is-the-first-instant-after-the-gap",
        ),
        pytest.param(
            "",
            seg("AIG", {1: "1", 2: "A", 3: "riverside-ct-1", 8: "20270314013000", 11: "60"}),
            (utc(2027, 3, 14, 6, 30), utc(2027, 3, 14, 7, 30)),
            id="a-duration-across-spring-forward-is-elapsed-time",
        ),
        pytest.param(
            "",
            seg("AIG", {1: "1", 2: "A", 3: "riverside-ct-1", 8: "20271107003000", 11: "120"}),
            (utc(2027, 11, 7, 4, 30), utc(2027, 11, 7, 6, 30)),
            id="a-duration-across-fall-back-is-elapsed-time",
        ),
        pytest.param(
            "^^45^20271107010000^20271107014500",
            "AIG|1|A|riverside-ct-1",
            (utc(2027, 11, 7, 5, 0), utc(2027, 11, 7, 5, 45)),
            id="a-repeated-hour-is-read-as-its-first-occurrence",
        ),
        pytest.param(
            "^^45^20271107013000^20271107011500",
            "AIG|1|A|riverside-ct-1",
            (utc(2027, 11, 7, 5, 30), utc(2027, 11, 7, 6, 15)),
            id="an-end-before-its-start-on-the-wall-clock-is-in-the-repeated-hour",
        ),
    ],
)
def test_naive_times_on_the_days_clocks_change(runtime, timing, line, span):
    [(status, outcome)] = deliver(runtime, siu("S12", "S12DST", timing, line))
    assert (status, outcome) == ("processed", "applied")
    booking = RisBookings(runtime.services.scheduling).ris_booking("RIS9")
    assert booking is not None
    assert (booking.span.start, booking.span.end) == span
    assert booking.resource_id == CT
