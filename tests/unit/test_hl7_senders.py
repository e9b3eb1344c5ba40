"""HL7_SENDERS: its grammar (several entries, each with several addresses, errors that
name the entry at fault), and which connections and messages an entry lets through."""

from ipaddress import ip_address, ip_network

import pytest
from pydantic import ValidationError

from adapters.hl7.envelope import read_envelope
from adapters.hl7.senders import (
    DEVELOPMENT_LOOPBACK,
    Sender,
    SendersError,
    allowed_at,
    authorised,
    certificate_names,
    parse_senders,
    peer_address,
    with_certificate,
)
from adapters.settings import Settings, settings_problem

TWO = (
    "ris=10.0.0.5, 10.0.1.0/24 ;app=RIS;facility=CENTRE;cn=ris.centre.example,"
    "lab=192.0.2.7;facility=LAB CO;app=LAB^1.2.3^ISO"
)


def header(app: str, facility: str, separators: str = "|^~\\&") -> bytes:
    fs = separators[0]
    fields = ["MSH", separators[1:], app, facility, "BRIDGE", "US", "2026", "", "ADT^A08"]
    return (fs.join([*fields, "C1", "P", "2.5.1"]) + "\r").encode()


# --- the grammar -------------------------------------------------------------------------


def test_several_entries_each_with_several_addresses():
    ris, lab = parse_senders(TWO)
    assert ris == Sender(
        name="ris",
        networks=(ip_network("10.0.0.5/32"), ip_network("10.0.1.0/24")),
        application="RIS",
        facility="CENTRE",
        common_name="ris.centre.example",
    )
    assert (lab.name, lab.networks, lab.common_name) == ("lab", (ip_network("192.0.2.7"),), None)
    assert (lab.application, lab.facility) == ("LAB^1.2.3^ISO", "LAB CO")


def test_entries_may_also_be_one_a_line_and_ipv6():
    text = "ris=10.0.0.5;app=RIS;facility=CENTRE\n\n  v6=2001:db8::/32,::1;app=V6;facility=F\n"
    assert [s.name for s in parse_senders(text)] == ["ris", "v6"]
    assert parse_senders(text)[1].networks == (ip_network("2001:db8::/32"), ip_network("::1"))
    assert parse_senders("") == parse_senders(" , \n") == ()


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("ris=10.0.0.5;app=RIS", "entry 'ris': facility= missing"),
        ("ris=10.0.0.5", "entry 'ris': app= and facility= missing"),
        ("ris=10.0.0.5;app=R;facility=F,10.0.0.6", "entry 'ris': address '10.0.0.6' comes after"),
        ("ris=10.0.0.5,app=RIS;facility=F", "app= after entry 'ris' follows a comma"),
        ("10.0.0.5;app=RIS;facility=F", "'10.0.0.5;app=RIS;facility=F' does not start with name="),
        ("ris=10.0.0.5/24;app=R;facility=F", "entry 'ris': '10.0.0.5/24' is not an IP address"),
        ("ris=ris.example;app=R;facility=F", "entry 'ris': 'ris.example' is not an IP address"),
        ("ris=;app=R;facility=F", "entry 'ris': '' is not an IP address"),
        ("ris=10.0.0.5;app=R;facility=F;port=3", "entry 'ris': 'port=3' is not one of"),
        ("ris=10.0.0.5;app=R;app=S;facility=F", "entry 'ris': app= given twice"),
        ("ris=10.0.0.5;app=;facility=F", "entry 'ris': app= is empty"),
        ("a=1.2.3.4;app=R;facility=F,a=1.2.3.5;app=R;facility=F", "entry 'a' appears twice"),
        ("r is=1.2.3.4;app=R;facility=F", "entry name 'r is' must be"),
        ("ok=1.2.3.4;app=R;facility=F,lab=1.2.3.x;app=L;facility=F", "entry 'lab'"),
    ],
)
def test_a_bad_value_is_refused_naming_the_entry(text, says):
    with pytest.raises(SendersError) as refused:
        parse_senders(text)
    assert str(refused.value).startswith(says)


def test_settings_refuse_a_bad_value_in_one_line_naming_the_variable(monkeypatch):
    monkeypatch.setenv("HL7_SENDERS", "ris=10.0.0.5;app=RIS,lab=10.0.0.6;app=LAB;facility=L")
    with pytest.raises(ValidationError) as refused:
        Settings()
    assert settings_problem(refused.value) == (
        "HL7_SENDERS: entry 'ris': facility= missing; each entry is"
        " name=ADDRESS[,ADDRESS…];app=MSH-3;facility=MSH-4[;cn=CN]"
    )
    monkeypatch.setenv("HL7_SENDERS", TWO)
    assert Settings().hl7_senders == TWO


# --- what an entry lets through -----------------------------------------------------------


def test_a_connection_is_let_in_by_the_entries_of_its_address():
    ris, lab = parse_senders(TWO)
    assert allowed_at((ris, lab), ip_address("10.0.1.200")) == (ris,)
    assert allowed_at((ris, lab), ip_address("10.0.0.5")) == (ris,)
    assert allowed_at((ris, lab), ip_address("10.0.0.6")) == ()
    assert allowed_at((ris, lab), ip_address("192.0.2.7")) == (lab,)
    assert allowed_at((ris, lab), None) == ()


def test_peer_addresses_are_read_as_asyncio_gives_them():
    assert peer_address(("10.0.0.5", 4000)) == ip_address("10.0.0.5")
    assert peer_address(("::ffff:10.0.0.5", 4000, 0, 0)) == ip_address("10.0.0.5")
    assert peer_address(("::1", 4000, 0, 0)) == ip_address("::1")
    assert peer_address("/tmp/socket") is None
    assert peer_address(("not an address", 1)) is None


def test_without_senders_development_takes_only_loopback_peers_with_any_header():
    loopback = (DEVELOPMENT_LOOPBACK,)
    assert allowed_at(loopback, ip_address("127.0.0.1")) == loopback
    assert allowed_at(loopback, ip_address("127.8.9.10")) == loopback
    assert allowed_at(loopback, ip_address("::1")) == loopback
    assert allowed_at(loopback, ip_address("192.0.2.2")) == ()
    assert allowed_at(loopback, ip_address("::ffff:c000:202")) == ()
    assert authorised(loopback, read_envelope(header("ANYONE", "ANYWHERE"))) is DEVELOPMENT_LOOPBACK


def test_a_message_must_carry_the_msh3_and_msh4_of_its_entry():
    ris, lab = parse_senders(TWO)
    assert authorised((ris,), read_envelope(header("RIS", "CENTRE"))) is ris
    assert authorised((ris,), read_envelope(header("ANYONE", "CENTRE"))) is None
    assert authorised((ris,), read_envelope(header("RIS", "ELSEWHERE"))) is None
    assert authorised((ris,), read_envelope(header("ris", "centre"))) is None  # exact case
    assert authorised((ris,), read_envelope(header("RIS^X", "CENTRE"))) is None  # whole field
    assert authorised((ris,), read_envelope(header("RIS ", "CENTRE"))) is None  # exactly
    assert authorised((ris,), read_envelope(header("RIS", " CENTRE"))) is None
    assert authorised((ris,), read_envelope(header("LAB^1.2.3^ISO", "LAB CO"))) is None
    assert authorised((lab,), read_envelope(header("LAB^1.2.3^ISO", "LAB CO"))) is lab
    # Components are compared with ^ whatever separator the message declares.
    assert authorised((lab,), read_envelope(header("LAB~1.2.3~ISO", "LAB CO", "^~|\\&"))) is lab
    assert authorised((ris, lab), read_envelope(b"not HL7 at all")) is None


def test_an_entry_with_cn_needs_a_verified_certificate_with_that_cn():
    ris, lab = parse_senders(TWO)
    certificate = {"subject": ((("countryName", "US"),), (("commonName", "ris.centre.example"),))}
    assert certificate_names(certificate) == {"ris.centre.example"}
    assert certificate_names({}) == certificate_names(None) == frozenset()
    assert with_certificate((ris, lab), certificate_names(certificate)) == (ris, lab)
    assert with_certificate((ris, lab), frozenset({"other.example"})) == (lab,)
    assert with_certificate((ris,), frozenset()) == ()
