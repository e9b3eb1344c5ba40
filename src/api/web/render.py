"""Rendering pages: one Jinja2 environment, the request's language, and the stylesheet.

Templates translate with ``_("text %(name)s", name=value)`` (gettext's new style: the
values are escaped, the text is not); the functions are handed to each render, so one
environment serves both languages at once."""

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlencode

from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, pass_context
from jinja2.runtime import Context
from markupsafe import Markup

from api.web.i18n import LANGUAGES, load_translations
from api.web.visit import Visit

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"


def _gettext(translate: Callable[[str], str]) -> Callable[..., str]:
    @pass_context
    def gettext(context: Context, message: str, **variables: Any) -> str:
        text: str = translate(message)
        if context.eval_ctx.autoescape:
            text = Markup(text)  # noqa: S704 (our catalog's text; the values are escaped)
        return text % variables

    return gettext


def _ngettext(translate: Callable[[str, str, int], str]) -> Callable[..., str]:
    @pass_context
    def ngettext(context: Context, singular: str, plural: str, n: int, **variables: Any) -> str:
        variables.setdefault("num", n)
        text: str = translate(singular, plural, n)
        if context.eval_ctx.autoescape:
            text = Markup(text)  # noqa: S704 (our catalog's text; the values are escaped)
        return text % variables

    return ngettext


class StaticFile:
    """A file under /static/, held in memory, addressed with its digest so that it can
    be cached for a year and still change with a release."""

    def __init__(self, path: Path, media_type: str) -> None:
        self.body = path.read_bytes()
        self.media_type = media_type
        self.version = hashlib.sha256(self.body).hexdigest()[:12]
        self.url = f"/static/{path.name}?v={self.version}"


class Pages:
    """Renders templates for a visit, in its language, with the shared page context."""

    def __init__(self) -> None:
        self.env = Environment(
            loader=FileSystemLoader(TEMPLATES),
            autoescape=True,
            extensions=["jinja2.ext.i18n"],
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            # The templates ship with the code and change only with it (a restart): each
            # page takes its compiled templates from memory without looking at the files.
            auto_reload=False,
        )
        # Only so that the i18n extension compiles in new style; each render hands over
        # its language's functions.
        self.env.install_null_translations(newstyle=True)  # type: ignore[attr-defined]
        self.translations = load_translations()
        self.functions = {
            language: {
                "_": _gettext(translations.gettext),
                "gettext": _gettext(translations.gettext),
                "ngettext": _ngettext(translations.ngettext),
            }
            for language, translations in self.translations.items()
        }
        self.static = {
            "portal.css": StaticFile(STATIC / "portal.css", "text/css"),
            "push.js": StaticFile(STATIC / "push.js", "text/javascript"),
        }

    def text(self, visit: Visit, message: str, **variables: Any) -> str:
        """A message translated outside a template (e.g. a calendar file)."""
        translated: str = self.translations[visit.language].gettext(message)
        return translated % variables if variables else translated

    def render(
        self, visit: Visit, template: str, status: int = 200, **context: Any
    ) -> HTMLResponse:
        request = visit.request
        page = self.env.get_template(template).render(
            **self.functions[visit.language],
            visit=visit,
            lang=visit.language,
            dates=visit.dates,
            weekday_names=visit.dates.weekdays,
            signed_in=visit.principal is not None,
            patient=visit.principal is not None and visit.principal.patient_id is not None,
            csrf_token=visit.form_token,
            path=request.url.path,
            language_links=language_links(request.url.path, dict(request.query_params)),
            stylesheet=self.static["portal.css"].url,
            **context,
        )
        return visit.finish(HTMLResponse(page, status_code=status))


def language_links(path: str, query: dict[str, str]) -> dict[str, str]:
    """The same page in each language (``?lang=`` sets the cookie and comes back here)."""
    return {language: f"{path}?{urlencode({**query, 'lang': language})}" for language in LANGUAGES}


def pages_of(visit: Visit) -> Pages:
    return cast(Pages, visit.request.app.state.pages)


def render(visit: Visit, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """The page ``template`` for this visit (see ``Pages.render``)."""
    return pages_of(visit).render(visit, template, status, **context)
