"""Rendering a notice with its versioned Jinja2 template.

Templates live beside this module as ``templates/<kind>/<channel>.<language>.v<N>.jinja``
(e-mail layouts under ``templates/_layouts``). A published file never changes: a new
wording is a new file with the next version, and ``manifest.json`` holds the hash of
every published file (a test compares them). So a delivery that records the template
id (kind, channel, language, version) and its notice data can render the very same text
again, years later, for a compliance officer.

A template file defines blocks: ``subject``, ``text`` and ``html`` for e-mail, ``text``
for SMS, ``title`` and ``body`` for push. ``html`` is rendered with autoescaping on,
the plain blocks with it off (they are not HTML). The links come from ``PortalLinks``,
the times from ``dates``; an SMS is fitted to two segments by ``sms.fit_sms``.

Rendering is a pure function of the template file, the notice, the base URL and the
centre's name; it lives in the application layer because the template ids and versions
are part of what the application records and shows (the delivery, the compliance view),
and Jinja2 and Babel here only turn data into text.
"""

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template
from markupsafe import Markup, escape

from application.notices.dates import long_when, short_when
from application.notices.kinds import (
    BookingCancelled,
    BookingConfirmation,
    BookingMoved,
    NeedsNewTime,
    NewSecureMessage,
    Notice,
    NoticeError,
    OrderInvitation,
    PasswordReset,
    Reminder,
    ResultAvailable,
    Visit,
)
from application.notices.links import PortalLinks
from application.notices.sms import fit_sms, sms_encoding, sms_segments

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
EMAIL = "email"
SMS = "sms"
PUSH = "push"
CHANNELS = (EMAIL, SMS, PUSH)
LANGUAGES = ("en", "es")
BLOCKS = {EMAIL: ("subject", "text", "html"), SMS: ("text",), PUSH: ("title", "body")}
FILE_NAME = re.compile(
    r"^(?P<channel>[a-z]+)\.(?P<language>[a-z]{2})\.v(?P<version>[1-9][0-9]*)\.jinja$"
)


def template_digests(directory: Path = TEMPLATE_DIR) -> dict[str, str]:
    """The SHA-256 of every template file (layouts included), by its path under
    ``directory``: what ``manifest.json`` records for the published versions."""
    return {
        path.relative_to(directory).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(directory.glob("*/*.jinja"))
    }


@dataclass(frozen=True)
class RenderedNotice:
    """A rendered notice and the template it came from. E-mail fills ``subject``, ``text``
    and ``html``; SMS ``text`` (with its ``encoding`` and ``segments``); push ``title``,
    ``body`` and ``url``. ``url`` is the notice's main link on every channel."""

    kind: str
    channel: str
    language: str
    version: int
    url: str
    subject: str = ""
    text: str = ""
    html: str = ""
    title: str = ""
    body: str = ""
    encoding: str = ""
    segments: int = 0

    @property
    def template_id(self) -> str:
        """``reminder/sms.es.v1``: what a delivery records to render it again."""
        return f"{self.kind}/{self.channel}.{self.language}.v{self.version}"

    def push_data(self) -> dict[str, str]:
        """The JSON the service worker shows (``PushNotice.data``)."""
        return {"kind": self.kind, "title": self.title, "body": self.body, "url": self.url}


class NoticeTemplates:
    """Every version of every template found in ``directory``, and the rendering."""

    def __init__(self, directory: Path = TEMPLATE_DIR) -> None:
        self._versions: dict[tuple[str, str, str], list[int]] = {}
        for path in sorted(directory.glob("*/*.jinja")):
            found = FILE_NAME.match(path.name)
            if path.parent.name.startswith("_") or found is None:
                continue
            key = (path.parent.name, found["channel"], found["language"])
            self._versions.setdefault(key, []).append(int(found["version"]))
        options: dict[str, Any] = {
            "loader": FileSystemLoader(directory),
            "undefined": StrictUndefined,
            "trim_blocks": True,
            "lstrip_blocks": True,
        }
        self._plain = Environment(autoescape=False, **options)  # noqa: S701 (not HTML)
        self._html = Environment(autoescape=True, **options)
        self._html.filters["paragraphs"] = paragraphs

    def versions(self, kind: str, channel: str, language: str) -> tuple[int, ...]:
        """The published versions of one template, oldest first (empty when none)."""
        return tuple(sorted(self._versions.get((kind, channel, language), [])))

    def channels(self, kind: str) -> tuple[str, ...]:
        """The channels a kind of notice can go over (password resets are not pushed)."""
        return tuple(c for c in CHANNELS if any(k[:2] == (kind, c) for k in self._versions))

    def render(
        self,
        notice: Notice,
        channel: str,
        language: str,
        *,
        base_url: str,
        centre_name: str,
        version: int | None = None,
    ) -> RenderedNotice:
        """``notice`` over ``channel`` in ``language``, with the latest version of its
        template unless ``version`` names an older one."""
        kind = notice.kind
        published = self.versions(kind, channel, language)
        if not published:
            raise NoticeError(f"no {channel} template in {language!r} for {kind}")
        chosen = published[-1] if version is None else version
        if chosen not in published:
            raise NoticeError(f"{kind}/{channel}.{language} has no version {version}")
        name = f"{kind}/{channel}.{language}.v{chosen}.jinja"
        links = PortalLinks(base_url)
        url = main_link(notice, links)
        context = {
            "centre": centre_name,
            "url": url,
            "links": links,
            "language": language,
            **_facts(notice, language, long_form=channel == EMAIL),
        }
        parts = {
            block: _render_block(
                (self._html if block == "html" else self._plain).get_template(name), block, context
            )
            for block in BLOCKS[channel]
        }
        rendered = RenderedNotice(kind, channel, language, chosen, url)
        match channel:
            case "email":
                subject = " ".join(parts["subject"].split())
                text, html = parts["text"] + "\n", parts["html"] + "\n"
                return replace(rendered, subject=subject, text=text, html=html)
            case "sms":
                text = fit_sms(" ".join(parts["text"].split()))
                return replace(
                    rendered, text=text, encoding=sms_encoding(text), segments=sms_segments(text)
                )
            case _:
                title = " ".join(parts["title"].split())
                return replace(rendered, title=title, body=" ".join(parts["body"].split()))


def main_link(notice: Notice, links: PortalLinks) -> str:
    """Where a notice of this kind leads."""
    match notice:
        case BookingConfirmation(visit=visit) | Reminder(visit=visit) | BookingMoved(visit=visit):
            return links.appointment(visit.appointment_id)
        case OrderInvitation(order_id=order_id, activation_token=token, needs_account=needs):
            if token:
                return links.activate(token)
            return links.activate_page() if needs else links.book(order_id)
        case ResultAvailable():
            return links.results()
        case BookingCancelled():
            return links.book()
        case NeedsNewTime(visit=visit):
            return links.reschedule(visit.appointment_id)
        case NewSecureMessage(thread_id=thread_id):
            return links.messages(thread_id)
        case PasswordReset(token=token):
            return links.reset_password(token)
    raise NoticeError(f"unknown notice {notice!r}")


def paragraphs(text: str) -> Markup:
    """Plain text as HTML paragraphs: escaped, blank lines between paragraphs, single
    line breaks kept."""
    chunks = [chunk.strip() for chunk in re.split(r"\n\s*\n", text.strip()) if chunk.strip()]
    return Markup("").join(
        Markup("<p>{}</p>\n").format(
            Markup("<br>\n").join(escape(line) for line in chunk.split("\n"))
        )
        for chunk in chunks
    )


def _facts(notice: Notice, language: str, *, long_form: bool) -> dict[str, Any]:
    """The notice's fields for the template, with its times written out."""
    when: Callable[..., str] = long_when if long_form else short_when
    facts: dict[str, Any] = {field.name: getattr(notice, field.name) for field in fields(notice)}
    visit = facts.get("visit")
    if isinstance(visit, Visit):
        facts["when"] = when(visit.start, visit.zone, language)
        facts["when_short"] = short_when(visit.start, visit.zone, language)
        previous = facts.get("previous_start")
        if previous is not None:
            facts["previous_when"] = when(previous, visit.zone, language)
    return facts


def _render_block(template: Template, block: str, context: dict[str, Any]) -> str:
    render = template.blocks.get(block)
    if render is None:
        raise NoticeError(f"template {template.name} has no {block} block")
    return "".join(render(template.new_context(context))).strip()
