"""The inbound field reader: the values the effects need, from real-feed quirks, and a
MalformedMessageError (never another exception) for anything else."""

from datetime import UTC, date, datetime
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.hl7.extract import Hl7Extractor, parse_timestamp
from application.ris.inbound_ports import InboundMessage
from application.ris.parsed import MalformedMessageError


def read(text: str):
    message = InboundMessage(UUID(int=1), "ORU", "R01", "1", "RIS", "FAC", "2.5", text)
    return Hl7Extractor().read(message)


def test_a_result_reads_references_and_an_rp_link_but_never_report_text():
    parsed = read(
        "MSH|^~\\&|RIS|FAC|IB|IB|20260101||ORU^R01|1|P|2.5\n"
        "PID|||MRN1^^^HOSP^MR~99^^^OTHER||DOE^JANE||19800229\r\n"
        "OBR|1|P1^PLC|F1^FIL|CT1^CT head\\S\\contrast|||202601021030+0100"
        "|||||||||||ACC1|||||||C\r"
        "OBX|1|TX|R^Report||The report text||||||F\r"
        "OBX|2|RP|V^Viewer||https://pacs/v?acc=ACC1^URL||||||F"
    )
    assert parsed.patient is not None
    assert [(i.value, i.authority) for i in parsed.patient.identifiers] == [
        ("MRN1", "HOSP"),
        ("99", "OTHER"),
    ]
    assert parsed.patient.birth_date == date(1980, 2, 29)
    [result] = parsed.results
    assert (result.placer, result.filler, result.accession_number) == ("PLC:P1", "FIL:F1", "ACC1")
    assert (result.procedure_code, result.procedure_text) == ("CT1", "CT head^contrast")
    assert result.status_code == "C"
    assert result.observed_at == datetime(2026, 1, 2, 9, 30, tzinfo=UTC)
    assert result.viewer_link == "https://pacs/v?acc=ACC1"
    assert "report text" not in repr(parsed).lower()


def test_each_resource_segment_gives_its_own_start_and_duration():
    parsed = read(
        "MSH|^~\\&|RIS|FAC|IB|IB|20260101||SIU^S12|1|P|2.5\r"
        "SCH|P1|F1|||||||||^^30^202601021000^202601021030\r"
        "AIG|1|A|CT1^CT one|||1||202601021000|||30|MIN\r"
        "AIL|1|A|ROOM1^Room one|||202601021015|||15|MIN\r"
        "AIP|1|A|DR1^Doctor|||202601021020|||1|H"
    )
    assert parsed.schedule is not None
    timings = [(r.code, r.start, r.duration_minutes) for r in parsed.schedule.resources]
    assert timings == [
        ("CT1", datetime(2026, 1, 2, 10, 0), 30),
        ("ROOM1", datetime(2026, 1, 2, 10, 15), 15),
        ("DR1", datetime(2026, 1, 2, 10, 20), 60),
    ]


def test_timestamps_without_offset_stay_naive_and_bad_ones_are_none():
    assert parse_timestamp("20261201083000") == datetime(2026, 12, 1, 8, 30)
    assert parse_timestamp("20261301") is None
    assert parse_timestamp("soon") is None


def test_timestamps_whose_offset_does_not_read_are_none():
    # given offsets of a day or more, and instants whose UTC time falls outside years 1-9999
    # when they are read, then they are unreadable, as a bad date is (they raised ValueError
    # and OverflowError, quarantining the whole message as "unexpected ValueError")
    assert parse_timestamp("20261202120000-9999") is None
    assert parse_timestamp("20261202120000+2400") is None
    assert parse_timestamp("00010101000000+1400") is None
    assert parse_timestamp("99991231235959-1400") is None
    assert parse_timestamp("20261202120000+0100") == datetime(2026, 12, 2, 11, tzinfo=UTC)


@given(
    st.integers(1, 9999),
    st.integers(1, 12),
    st.integers(1, 31),
    st.sampled_from("+-"),
    st.integers(0, 99),
    st.integers(0, 99),
)
def test_any_timestamp_with_an_offset_reads_or_is_none(year, month, day, sign, hours, minutes):
    value = f"{year:04d}{month:02d}{day:02d}120000{sign}{hours:02d}{minutes:02d}"
    moment = parse_timestamp(value)
    assert moment is None or moment.tzinfo is UTC


def test_a_result_with_an_unreadable_observation_time_reads_without_it():
    # given an ORU whose OBR-7 carries an offset of -99:99
    parsed = read(
        "MSH|^~\\&|RIS|FAC|IB|IB|20260101||ORU^R01|1|P|2.5\r"
        "PID|||MRN1^^^HOSP^MR||DOE^JANE||19800229\r"
        "OBR|1|P1|F1|CT1^CT head|||20261202120000-9999|||||||||||ACC1|||||||F\r"
    )
    # then it reads, the result without an observation time
    assert [r.observed_at for r in parsed.results] == [None]


def test_text_without_msh_is_malformed():
    try:
        read("PID|||1")
    except MalformedMessageError:
        return
    raise AssertionError("expected MalformedMessageError")


@given(st.text(max_size=300))
def test_any_text_after_a_header_reads_or_is_malformed(tail):
    try:
        read("MSH|^~\\&|A|B|C|D|||ORU^R01|1|P|2.5\r" + tail)
        read("MSH" + tail)
    except MalformedMessageError:
        pass


@pytest.mark.parametrize(
    ("contacts", "expected"),
    [
        ("^NET^Internet^Ana.Lopez@Example.org", "ana.lopez@example.org"),
        ("(407)939-1289^^^theMainMouse@disney.com", "themainmouse@disney.com"),
        ("(416)111-1111^PRN^PH~^NET^X.400^b@c.example", "b@c.example"),
        ("ana@example.org", "ana@example.org"),  # older feeds: XTN-1
        ("(416)111-1111", None),
        ("^NET^Internet^not an address@", None),
        ("^NET^Internet^@example.org", None),
        ("", None),
    ],
)
def test_the_email_address_the_ris_holds_is_read_from_pid_13(contacts, expected):
    parsed = read(
        "MSH|^~\\&|RIS|FAC|IB|IB|20260101||ADT^A04|1|P|2.5\r"
        f"PID|||MRN1^^^HOSP^MR||DOE^JANE||19800229|F|||||{contacts}"
    )
    assert parsed.patient is not None
    assert parsed.patient.email == expected


@pytest.mark.parametrize(
    "contacts",
    [
        "^NET^Internet^a@b@c.org",  # two at signs
        "^NET^Internet^a\\X01\\b@x.org",  # an escape we do not decode stays a backslash
        "^NET^Internet^a\\X0D0A\\Bcc: x@y.org",
        "^NET^Internet^" + "a" * 300 + "@x.org",
        "^NET^Internet^a@x..org",
        "^NET^Internet^<a@x.org>",
    ],
)
def test_an_address_a_mail_header_could_be_bent_with_is_not_taken(contacts):
    parsed = read(
        "MSH|^~\\&|RIS|FAC|IB|IB|20260101||ADT^A04|1|P|2.5\r"
        f"PID|||MRN1^^^HOSP^MR||DOE^JANE||19800229|F|||||{contacts}"
    )
    assert parsed.patient is not None
    assert parsed.patient.email is None
