"""The HL7 receivers outbound messages go to (the RIS or its interface engine), as
configured in ``HL7_DESTINATIONS``."""

from dataclasses import dataclass

from domain.errors import InvalidValueError

DEFAULT_VERSION = "2.5.1"


@dataclass(frozen=True)
class Destination:
    """One HL7 receiver (the RIS or its interface engine)."""

    name: str
    host: str
    port: int
    version: str = DEFAULT_VERSION
    tls: bool = False
    timeout: float = 10.0


def parse_destinations(text: str) -> list[Destination]:
    """``name=host:port[;version=2.5.1][;tls=1][;timeout=10]``, comma-separated."""
    result = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, rest = item.partition("=")
        address, *options = rest.split(";")
        host, colon, port = address.rpartition(":")
        if not sep or not name.strip() or not colon or not port.isdigit():
            raise InvalidValueError(f"bad HL7 destination {item!r}: name=host:port expected")
        opts = dict(o.split("=", 1) for o in options if "=" in o)
        result.append(
            Destination(
                name=name.strip(),
                host=host,
                port=int(port),
                version=opts.get("version", DEFAULT_VERSION),
                tls=opts.get("tls", "0") in ("1", "true", "yes"),
                timeout=float(opts.get("timeout", "10")),
            )
        )
    return result
