"""Who may send us HL7: ``HL7_SENDERS``, read and applied per connection and per message.

Interface engines authenticate senders per channel; so do we. Each entry names a
channel, the addresses it may connect from, the MSH-3 and MSH-4 its messages must
carry and, optionally, the subject CN of the client certificate it must present::

    HL7_SENDERS=ris=10.0.0.5,10.0.1.0/24;app=RIS;facility=CENTRE;cn=ris.centre.example,
                lab=192.0.2.7;app=LAB;facility=LABCO

The grammar, exactly:

- entries are separated by ``,`` or a line break;
- an entry is ``name=ADDRESS[,ADDRESS…];app=MSH-3;facility=MSH-4[;cn=CN]``, options in
  any order after the addresses; ``app`` and ``facility`` are required;
- an ADDRESS is an IPv4 or IPv6 address or network (``10.0.1.0/24``; no host bits);
- so a comma-separated item with ``=`` before its first ``;`` starts a new entry, and
  one without is one more address of the entry before it (addresses never hold ``=``);
- values cannot hold ``,`` or ``;``; spaces around items and values are ignored;
- a message matches when its MSH-3 and MSH-4, written with ``^`` between components,
  equal ``app`` and ``facility`` exactly (case included).

A connection is admitted when at least one entry allows its address (and, for an entry
with ``cn``, its verified client certificate has that CN); each message on it must
then match one of those entries.
"""

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from adapters.hl7.envelope import Envelope

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
OPTIONS = ("app", "facility", "cn")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
FORMAT = "name=ADDRESS[,ADDRESS…];app=MSH-3;facility=MSH-4[;cn=CN]"


class SendersError(ValueError):
    """``HL7_SENDERS`` cannot be read; the message names the entry at fault."""


@dataclass(frozen=True)
class Sender:
    """One channel allowed to send us HL7."""

    name: str
    networks: tuple[IPNetwork, ...]
    application: str | None  # MSH-3 it must carry; None: any (the development rule only)
    facility: str | None  # MSH-4 it must carry; None: any
    common_name: str | None = None  # subject CN of the client certificate it must present

    def allows(self, address: IPAddress | None) -> bool:
        return address is not None and any(address in network for network in self.networks)

    def matches(self, envelope: Envelope) -> bool:
        return _expected(self.application, envelope.sending_application, envelope) and (
            _expected(self.facility, envelope.sending_facility, envelope)
        )


# Without HL7_SENDERS, development and test runs take messages from this machine only.
DEVELOPMENT_LOOPBACK = Sender(
    name="loopback",
    networks=(ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")),
    application=None,
    facility=None,
)


def _expected(expected: str | None, value: str, envelope: Envelope) -> bool:
    """Whether an MSH field, components written with ``^``, is what the entry expects."""
    if expected is None:
        return True
    separator = envelope.component_separator
    return value.replace(separator, "^") == expected  # exactly: no space trimmed


def peer_address(peername: Any) -> IPAddress | None:
    """The IP address of an asyncio ``peername`` (IPv4-mapped IPv6 read as IPv4)."""
    if not isinstance(peername, tuple) or not peername:
        return None
    try:
        address = ipaddress.ip_address(str(peername[0]))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def allowed_at(senders: Iterable[Sender], address: IPAddress | None) -> tuple[Sender, ...]:
    """The entries that may connect from ``address``."""
    return tuple(sender for sender in senders if sender.allows(address))


def certificate_names(peercert: Any) -> frozenset[str]:
    """The subject CNs of a verified peer certificate (``SSLSocket.getpeercert()``)."""
    if not isinstance(peercert, dict):
        return frozenset()
    return frozenset(
        value
        for relative_name in peercert.get("subject", ())
        for key, value in relative_name
        if key == "commonName"
    )


def with_certificate(senders: Iterable[Sender], names: frozenset[str]) -> tuple[Sender, ...]:
    """The entries a connection presenting a certificate with these CNs satisfies."""
    return tuple(s for s in senders if s.common_name is None or s.common_name in names)


def authorised(senders: Iterable[Sender], envelope: Envelope) -> Sender | None:
    """The entry this message comes under, or None: not an authorised sender."""
    return next((sender for sender in senders if sender.matches(envelope)), None)


def parse_senders(text: str) -> tuple[Sender, ...]:
    """``HL7_SENDERS`` as entries (see the module docstring for the grammar)."""
    entries: list[_Entry] = []
    for item in filter(None, (part.strip() for part in re.split(r"[,\r\n]", text))):
        head, *options = (part.strip() for part in item.split(";"))
        if "=" in head:
            name, _, address = (part.strip() for part in head.partition("="))
            if name in OPTIONS:
                where = f"after entry {entries[-1].name!r}" if entries else "at the start"
                raise SendersError(
                    f"{name}= {where} follows a comma; options are separated"
                    f" by ';', entries by ','; each entry is {FORMAT}"
                )
            if not NAME.match(name):
                raise SendersError(
                    f"entry name {name!r} must be letters, digits, '.', '_' or"
                    f" '-'; each entry is {FORMAT}"
                )
            if any(entry.name == name for entry in entries):
                raise SendersError(f"entry {name!r} appears twice")
            entries.append(_Entry(name))
        elif not entries:
            raise SendersError(f"{item!r} does not start with name=: each entry is {FORMAT}")
        else:
            address = head
        entries[-1].add_address(address)
        for option in options:
            entries[-1].add_option(option)
    return tuple(entry.build() for entry in entries)


class _Entry:
    """One entry while it is read."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.networks: list[IPNetwork] = []
        self.options: dict[str, str] = {}

    def add_address(self, text: str) -> None:
        if self.options:
            raise SendersError(
                f"entry {self.name!r}: address {text!r} comes after its options;"
                f" list the addresses right after {self.name}="
            )
        try:
            self.networks.append(ipaddress.ip_network(text, strict=True))
        except ValueError as error:
            raise SendersError(
                f"entry {self.name!r}: {text!r} is not an IP address or network ({error})"
            ) from None

    def add_option(self, text: str) -> None:
        key, equals, value = (part.strip() for part in text.partition("="))
        if not equals or key not in OPTIONS:
            raise SendersError(
                f"entry {self.name!r}: {text!r} is not one of {', '.join(f'{o}=' for o in OPTIONS)}"
            )
        if key in self.options:
            raise SendersError(f"entry {self.name!r}: {key}= given twice")
        if not value:
            raise SendersError(f"entry {self.name!r}: {key}= is empty")
        self.options[key] = value

    def build(self) -> Sender:
        missing = [key for key in ("app", "facility") if key not in self.options]
        if missing:
            raise SendersError(
                f"entry {self.name!r}: {' and '.join(f'{k}=' for k in missing)}"
                f" missing; each entry is {FORMAT}"
            )
        return Sender(
            name=self.name,
            networks=tuple(self.networks),
            application=self.options["app"],
            facility=self.options["facility"],
            common_name=self.options.get("cn"),
        )
