"""The cheap MSH reader, MLLP deframing and ACK building: exact on the cases that
matter, and never raising on arbitrary bytes (Hypothesis)."""

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.hl7.acks import acceptance, build_ack
from adapters.hl7.envelope import read_envelope, segments_text
from adapters.hl7.framing import Deframer, frame

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
ORU = (
    b"MSH|^~\\&|RIS|CENTRE|BRIDGE|US|20261127||ORU^R01^ORU_R01|C1|P|2.5.1|||||FRA|8859/1\r"
    b"PID|1||9^^^CENTRE^MR\rOBR|1||ACC1\rOBX|1|RP|||http://viewer/1\r"
)


def ack_fields(ack: bytes) -> list[list[str]]:
    text = ack.decode("latin-1")
    return [line.split(text[3]) for line in text.split("\r") if line]


# --- the MSH reader ---------------------------------------------------------------------


def test_reads_the_header_fields():
    envelope = read_envelope(ORU)
    assert envelope.problem is None
    assert (envelope.message_type, envelope.trigger, envelope.control_id) == ("ORU", "R01", "C1")
    assert (envelope.sending_application, envelope.sending_facility) == ("RIS", "CENTRE")
    assert envelope.version == "2.5.1"
    assert envelope.codec == "iso8859-1"


def test_non_default_separators_and_the_truncation_character():
    vista = read_envelope(b"MSH^~|\\&^VISTA^500^^^2026^^ORU~R01^V1^P^2.4\rPID^1\r")
    assert (vista.field_separator, vista.encoding_characters) == ("^", "~|\\&")
    assert (vista.message_type, vista.trigger, vista.control_id) == ("ORU", "R01", "V1")
    v27 = read_envelope(b"MSH|^~\\&#|A|B|C|D|2026||ADT^A08|X|P|2.7\r")
    assert v27.encoding_characters == "^~\\&#"
    assert v27.problem is None


def test_bom_junk_and_lf_separators():
    raw = b"\xef\xbb\xbf[SOM]MSH|^~\\&|A|B|C|D|2026||ADT^A04|X9|P|2.3\nPID|1\n[EOM]"
    envelope = read_envelope(raw)
    assert envelope.msh_offset == 8
    assert envelope.control_id == "X9"
    assert segments_text(raw, envelope) == "MSH|^~\\&|A|B|C|D|2026||ADT^A04|X9|P|2.3\rPID|1\r[EOM]"


def test_batch_envelope_segments_are_left_out_of_the_text():
    raw = b"BHS|^~\\&|A\rMSH|^~\\&|A|B|C|D|2026||ADT^A04|X|P|2.5\rPID|1\rBTS|1\r"
    envelope = read_envelope(raw)
    assert segments_text(raw, envelope) == "MSH|^~\\&|A|B|C|D|2026||ADT^A04|X|P|2.5\rPID|1"


def test_charsets_are_honoured_and_mislabels_survive():
    utf8 = "MSH|^~\\&|A|B|C|D|2026||ADT^A08|U|P|2.5|||||D|UNICODE UTF-8\rPID|1||||Müller\r"
    envelope = read_envelope(utf8.encode())
    assert "Müller" in segments_text(utf8.encode(), envelope)
    # Declared ASCII, holding latin-1 bytes: read, not refused.
    ascii_label = utf8.replace("UNICODE UTF-8", "ASCII").encode("latin-1")
    envelope = read_envelope(ascii_label)
    assert envelope.problem is None
    assert "Müller" in segments_text(ascii_label, envelope)


def test_problems_become_ar_with_the_right_code():
    assert read_envelope(b"hello").problem.error_code == "100"
    assert read_envelope(b"MSH|ab|x\r").problem.error_code == "102"
    no_type = read_envelope(b"MSH|^~\\&|A|B|C|D|2026|||X|P|2.5\r")
    assert no_type.problem.error_code == "101"
    v3 = read_envelope(b"MSH|^~\\&|A|B|C|D|2026||ADT^A08|X|P|3.0\r")
    assert v3.problem.error_code == "203"
    a24 = read_envelope(b"MSH|^~\\&|A|B|C|D|2026||ADT^A24|X|P|2.4\r")
    assert acceptance(a24).error_code == "201"
    no_trigger = read_envelope(b"MSH|^~\\&|A|B|C|D|2026||ADT|X|P|2.4\r")
    assert acceptance(no_trigger).error_code == "101"
    oru_without_trigger = read_envelope(b"MSH|^~\\&|A|B|C|D|2026||ORU|X|P|2.3\r")
    assert acceptance(oru_without_trigger) is None  # old feeds: R01 is the only ORU


# --- ACKs -------------------------------------------------------------------------------


def test_aa_swaps_sender_and_receiver_and_echoes_the_control_id():
    envelope = read_envelope(ORU)
    msh, msa = ack_fields(build_ack(envelope, None, control_id="OUR1", now=NOW))
    assert msh[2:6] == ["BRIDGE", "US", "RIS", "CENTRE"]
    assert msh[6] == "20261127120000+0000"
    assert msh[8:12] == ["ACK^R01^ACK", "OUR1", "P", "2.5.1"]
    assert msh[17] == "8859/1"
    assert msa == ["MSA", "AA", "C1"]


def test_errors_use_the_err_layout_of_the_senders_version():
    old = read_envelope(b"MSH|^~\\&|A|B|C|D|2026||MDM^T02|X|P|2.3\r")
    *_, err = ack_fields(build_ack(old, acceptance(old), control_id="1", now=NOW))
    assert err == ["ERR", "MSH^1^9^200&unsupported message type&HL70357"]
    new = read_envelope(b"MSH|^~\\&|A|B|C|D|2026||MDM^T02|X|P|2.5\r")
    *_, msa, err = ack_fields(build_ack(new, acceptance(new), control_id="1", now=NOW))
    assert msa == ["MSA", "AR", "X"]
    assert err == ["ERR", "", "MSH^1^9", "200^unsupported message type^HL70357", "E"]


def test_garbage_gets_a_well_formed_default_ack():
    envelope = read_envelope(b"\x00\x01 nothing here")
    fields = ack_fields(build_ack(envelope, acceptance(envelope), control_id="1", now=NOW))
    assert fields[0][:2] == ["MSH", "^~\\&"]
    assert fields[0][11] == "2.5"
    assert fields[1] == ["MSA", "AR", ""]


# --- framing ----------------------------------------------------------------------------


def test_deframing_tolerates_junk_missing_cr_and_split_reads():
    deframer = Deframer()
    stream = b"junk" + frame(b"A") + b"\x0bB\x1c" + b"more junk" + frame(b"C")
    got = []
    for i in range(0, len(stream), 3):
        got += [f.payload for f in deframer.feed(stream[i : i + 3])]
    assert got == [b"A", b"B", b"C"]


def test_a_half_frame_is_given_up_when_a_new_one_starts():
    deframer = Deframer()
    assert [f.payload for f in deframer.feed(b"\x0bhalf\x0bwhole\x1c\r")] == [b"whole"]


def test_an_oversize_frame_is_reported_once_with_its_head():
    deframer = Deframer(max_frame=10)
    frames = deframer.feed(b"\x0b" + b"MSH|" + b"x" * 50 + b"\x1c\r\x0bok\x1c\r")
    assert [(f.oversize, f.payload[:4]) for f in frames] == [(True, b"MSH|"), (False, b"ok")]


# --- properties -------------------------------------------------------------------------

MSH_LIKE = st.builds(
    lambda prefix, separator, encoding, fields, tail: (
        prefix + b"MSH" + separator + encoding + separator + separator.join(fields) + tail
    ),
    st.binary(max_size=8),
    st.sampled_from([b"|", b"^", b"#", b"\x00", b"M", b"\r", b"\xff"]),
    st.binary(max_size=6),
    st.lists(st.binary(max_size=12), max_size=20),
    st.binary(max_size=30),
)


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.binary(max_size=400), MSH_LIKE))
def test_reading_and_acknowledging_never_raise(raw):
    envelope = read_envelope(raw)
    problem = acceptance(envelope)
    ack = build_ack(envelope, problem, control_id="0123456789abcdef0123", now=NOW)
    assert ack.startswith(b"MSH")
    assert ack.endswith(b"\r")
    msa = ack_fields(ack)[1]
    assert msa[0] == "MSA"
    assert msa[1] == ("AA" if problem is None else problem.ack_code)
    assert msa[2] == envelope.control_id
    if problem is not None:
        assert b"\rERR" in ack
    segments_text(raw, envelope)  # the processing stage's view never raises either


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=50), max_size=10), st.binary(max_size=200))
def test_deframing_never_raises_and_keeps_whole_frames(payloads, noise):
    clean = [p.replace(b"\x0b", b"").replace(b"\x1c", b"") for p in payloads]
    noise = noise.replace(b"\x0b", b"")
    stream = noise + b"".join(frame(p) for p in clean)
    deframer = Deframer(max_frame=1000)
    got = []
    for i in range(0, len(stream), 7):
        got += [f.payload for f in deframer.feed(stream[i : i + 7])]
    assert got == clean
