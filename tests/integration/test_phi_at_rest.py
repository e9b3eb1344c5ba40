"""Patient data at rest (issue 9, finding 13): after the public HL7 corpus and a message
of our own arrive over MLLP and are applied, a patient registers through the API and
books, and the outbound side sends their ADT and SIU to the RIS, no column of any table
of the database holds, in clear, a name, a birth date (as sent: YYYYMMDD, and ISO) or an
MRN that was sent (nor our two patients' phones, nor the registrant's e-mail), except the
read-model columns allowed below, each with its reason."""

import re
from datetime import date
from typing import Any

import psycopg
import pytest
from psycopg import sql

from adapters.clock import SystemClock
from adapters.hl7.envelope import read_envelope, segments_text
from adapters.hl7.listener import BackgroundListener, ListenerConfig
from adapters.hl7.processor import InboundProcessor
from application.base import Position
from tests.integration.mllp_peer import Peer, wait_until
from tests.integration.test_hl7_corpus import corpus
from tests.integration.test_hl7_listener import connect, read_frame, segments
from tests.support import hl7_corpus, post_booking, register_patient

pytestmark = pytest.mark.integration
CORPUS = hl7_corpus()

# A patient the RIS sends us, and one who registers through the API: values found
# nowhere else, so that any hit is theirs.
RIS_PATIENT = {
    "mrn": "QZ88412077",
    "family": "Quillfeather",
    "given": "Ottoline",
    "birth": "19530614",
    "phone": "555-0199-2211",
}
OUR_ADT = (
    "MSH|^~\\&|RIS|CENTRE|BRIDGE|US|20261130120000||ADT^A04^ADT_A01|SCAN-A04|P|2.5.1\r"
    "EVN|A04|20261130120000\r"
    f"PID|1||{RIS_PATIENT['mrn']}^^^CENTRE^MR||{RIS_PATIENT['family']}^{RIS_PATIENT['given']}"
    f"||{RIS_PATIENT['birth']}|F|||1 Lane^^Town||{RIS_PATIENT['phone']}\r"
).encode()
REGISTRANT = {
    "email": "philippa.wexbridge@example.org",
    "password": "copper kettle meadow 1967",
    "given_name": "Philippa",
    "family_name": "Wexbridge",
    "birth_date": "1967-09-03",
    "phone": "+1 555 0142 7781",
}

# Read-model columns allowed to hold a value that was sent, and why. (None: the portal
# and the staff API read names from the Registry's encrypted events, not from a table.)
ALLOWED: dict[tuple[str, str], str] = {}

# Columns scanned: text, bytea, json/jsonb, dates (a birth date kept as a date is one)
# and arrays/enums of them; uuids, numbers, timestamps and booleans hold none. Event
# topics are the library's class paths (``domain.patient:Patient.Registered``), not data.
SCANNED_TYPES = {"text", "character varying", "character", "bytea", "json", "jsonb", "date"}
SKIPPED_COLUMNS = {"topic"}


def needles() -> dict[str, str]:
    """What was sent that names a patient: {value: what it is}. From each corpus message
    the listener accepts, PID-5 family and given names, PID-7 birth dates, PID-2/PID-3
    and MRG-1 identifiers (read here independently of the extractor). Left out: too
    short a value (under four characters, an identifier under five) would be found by
    chance; and a value some message also sends as a header field (MSH-10 ``12345678``
    is also an MRN, MSH-4 ``RADIOLOGY`` also a family name), which are kept in clear."""
    found: dict[str, str] = {}
    headers: set[str] = set()
    for name, codes in corpus():
        raw = (CORPUS / name).read_bytes()
        envelope = read_envelope(raw)
        for value in (
            envelope.sending_application,
            envelope.sending_facility,
            envelope.receiving_application,
            envelope.receiving_facility,
            envelope.control_id,
        ):
            headers.update([value, *value.split(envelope.component_separator)])
        if "AA" not in codes:
            continue
        if envelope.problem is not None:
            continue
        fs, (cs, rs) = envelope.field_separator, envelope.encoding_characters[:2]
        for line in segments_text(raw, envelope).split("\r"):
            fields = line.split(fs)

            def field(n: int, fields: list[str] = fields) -> str:
                return fields[n] if n < len(fields) else ""

            if fields[0] == "PID":
                for repetition in (field(2) + rs + field(3)).split(rs):
                    found[repetition.split(cs)[0]] = f"MRN ({name})"
                for part in field(5).split(rs)[0].split(cs)[:2]:
                    found[part] = f"name ({name})"
                found.update(birth_dates(field(7).split(cs)[0][:8], name))
            elif fields[0] == "MRG":
                for repetition in field(1).split(rs):
                    found[repetition.split(cs)[0]] = f"MRN ({name})"
    found = {
        value: what
        for value, what in found.items()
        if len(value.strip()) >= (5 if what.startswith("MRN") else 4) and value not in headers
    }
    found.update({RIS_PATIENT[k]: f"{k} (our ADT^A04)" for k in RIS_PATIENT})
    found.update(birth_dates(RIS_PATIENT["birth"], "our ADT^A04"))
    for key in ("given_name", "family_name", "birth_date", "phone", "email"):
        found[REGISTRANT[key]] = f"{key} (registration)"
    found.update(birth_dates(REGISTRANT["birth_date"].replace("-", ""), "registration"))
    return found


def birth_dates(value: str, source: str) -> dict[str, str]:
    """A birth date as sent (YYYYMMDD) and in ISO form, when it is a real date."""
    if not re.fullmatch(r"\d{8}", value):
        return {}
    try:
        born = date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError:
        return {}
    if not 1850 < born.year < 2026:
        return {}
    return {value: f"birth date ({source})", born.isoformat(): f"birth date ({source})"}


def scan(url: str, found: dict[str, str]) -> tuple[list[str], set[str]]:
    """Every ``table.column: value, what`` where a sent value is stored in clear, and the
    columns read. A value
    counts where it stands alone (not inside a longer run of letters, digits and "_"), so a
    uuid or a digest that happens to contain the digits of an MRN is not a hit."""
    patterns = []
    for needle in found:
        # As UTF-8, and as latin-1 (how 8859/1 feeds send accented names)
        for encoding in ("utf-8", "latin-1"):
            encoded = needle.encode(encoding, "ignore")
            if encoded.decode(encoding) == needle:
                bounded = rb"(?<![A-Za-z0-9_])" + re.escape(encoded) + rb"(?![A-Za-z0-9_])"
                patterns.append((needle, re.compile(bounded)))
    hits, read = [], set()
    with psycopg.connect(url) as conn:
        columns = conn.execute(
            "SELECT table_schema, table_name, column_name, data_type, udt_name"
            " FROM information_schema.columns c"
            " JOIN information_schema.tables t USING (table_schema, table_name)"
            " WHERE t.table_type = 'BASE TABLE'"
            " AND table_schema NOT IN ('pg_catalog', 'information_schema')"
        ).fetchall()
        for schema, table, column, data_type, udt in columns:
            kind = data_type if data_type != "ARRAY" else udt.lstrip("_")
            scanned = kind in SCANNED_TYPES or data_type == "USER-DEFINED" or kind == "varchar"
            if not scanned or column in SKIPPED_COLUMNS:
                continue
            cast = "" if data_type == "bytea" else "::text"
            query = sql.SQL("SELECT {}" + cast + " FROM {}.{} WHERE {} IS NOT NULL").format(
                sql.Identifier(column),
                sql.Identifier(schema),
                sql.Identifier(table),
                sql.Identifier(column),
            )
            read.add(f"{schema}.{table}.{column}")
            for (value,) in conn.execute(query):
                data = bytes(value) if isinstance(value, bytes | memoryview) else value.encode()
                for needle, pattern in patterns:
                    if pattern.search(data) and (table, column) not in ALLOWED:
                        hits.append(f"{schema}.{table}.{column}: {needle!r} {found[needle]}")
    return sorted(set(hits)), read


def register_and_book(client: Any) -> None:
    headers = register_patient(client, REGISTRANT)
    booked = post_booking(client, headers, "2026-12-01T09:00:00-05:00")
    assert booked.status_code == 201, booked.text
    assert client.get("/v1/patients/me", headers=headers).json()["family_name"] == "Wexbridge"


def caught_up(runtime: Any) -> None:
    """Every read model has applied everything its log holds."""
    for name in ("catalog", "scheduling"):
        app = getattr(runtime.services, name)
        head = app.recorder.max_notification_id() or 0
        if head:
            assert runtime.services.sync.wait(Position(name, head), timeout=30)


def test_no_name_birth_date_or_mrn_that_was_sent_is_stored_in_clear(runtime, client):
    found = needles()
    assert len(found) > 100  # the corpus's patients, ours, and the registrant

    with Peer() as ris:
        settings = runtime.settings.model_copy(
            update={
                "hl7_destinations": f"ris=127.0.0.1:{ris.port};timeout=5",
                "delivery_base_delay": 0.05,
                "delivery_max_delay": 0.2,
            }
        )
        outbound = runtime.start_outbound(settings, pump_interval=0.05, clock=SystemClock())
        try:
            # Given the corpus and our own patient received over MLLP, and applied
            config = ListenerConfig(host="127.0.0.1", port=0)
            with (
                BackgroundListener(runtime.url, config, cipher=runtime.cipher) as listener,
                connect(listener.port) as sock,
            ):
                for name, _ in corpus():
                    sock.sendall(b"\x0b" + (CORPUS / name).read_bytes() + b"\x1c\x0d")
                    read_frame(sock)
                sock.sendall(b"\x0b" + OUR_ADT + b"\x1c\x0d")
                assert segments(read_frame(sock))["MSA"][1] == "AA"
            processor = InboundProcessor(runtime.pool, runtime.inbound, runtime.cipher)
            while processor.process_pending(50):
                pass
            assert runtime.services.registry.patient_by_identifier("CENTRE", "QZ88412077")

            # ... and a patient who registers and books through the API, whose ADT^A04
            # and SIU^S12 the outbound side sends to the RIS
            register_and_book(client)
            desk = outbound.desk()
            wait_until(
                lambda: (
                    {d.message_type for d in desk.search(limit=100) if d.status == "acknowledged"}
                    >= {"ADT^A04", "SIU^S12"}
                )
            )
            assert any("Wexbridge" in message for message in ris.messages())
        finally:
            outbound.stop()
    caught_up(runtime)
    runtime.services.access_log.flush()

    # When every column of every table is read
    hits, read = scan(runtime.url, found)

    # Then none holds what was sent in clear (the stored messages, the events, the read
    # models, the access log, the deliveries and the task queue among the columns read)
    assert {
        "public.hl7_inbound.raw",
        "public.scheduling_events.state",
        "public.registry_events.state",
        "public.rm_appointments.notes",
        "public.rm_unmatched_results.filler_number",
        "public.phi_access_log.reason",
        "public.rm_delivery_attempts.detail",
        "dramatiq.queue.message",
    } <= read
    assert hits == [], "\n".join(hits)
