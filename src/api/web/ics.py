"""A calendar file (RFC 5545) for one appointment: what, where, when (in UTC, so every
calendar shows it in its own zone) and what to do before."""

from datetime import UTC, datetime

LINE_LIMIT = 75  # octets per line before folding


def _text(value: str) -> str:
    """RFC 5545 TEXT: backslash, semicolon, comma and line breaks escaped."""
    return (
        value.replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\r\n", "\\n")
        .replace("\n", "\\n")
        .replace("\r", "\\n")
    )


def _fold(line: str) -> str:
    """Lines longer than 75 octets continue on the next line after a space, never
    splitting a UTF-8 character."""
    encoded = line.encode()
    if len(encoded) <= LINE_LIMIT:
        return line
    parts: list[str] = []
    current = ""
    limit = LINE_LIMIT
    for char in line:
        if len((current + char).encode()) > limit:
            parts.append(current)
            current = char
            limit = LINE_LIMIT - 1  # the leading space counts
        else:
            current += char
    parts.append(current)
    return "\r\n ".join(parts)


def _instant(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def calendar_file(
    *,
    uid: str,
    start: datetime,
    end: datetime,
    now: datetime,
    summary: str,
    location: str,
    description: str,
) -> bytes:
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Imaging Bridge//Patient portal//EN",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        "BEGIN:VEVENT",
        f"UID:{uid}",
        f"DTSTAMP:{_instant(now)}",
        f"DTSTART:{_instant(start)}",
        f"DTEND:{_instant(end)}",
        f"SUMMARY:{_text(summary)}",
        f"LOCATION:{_text(location)}",
        f"DESCRIPTION:{_text(description)}",
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return ("\r\n".join(_fold(line) for line in lines) + "\r\n").encode()
