"""The inbound field reader: the values the effects need, from real-feed quirks, and a
MalformedMessageError (never another exception) for anything else."""

from datetime import UTC, date, datetime
from uuid import UUID

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
