"""Every text the portal shows has its Spanish translation: the messages are extracted
from the templates and the Python code (``_``, ``N_``, ``gettext``, ``ngettext``) as
Babel would, and looked up in the committed catalog."""

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from api.web.i18n import LOCALE_DIR, Dates, accepted_language

WEB = Path(__file__).resolve().parents[2] / "src" / "api" / "web"
KEYWORDS = {"_": None, "N_": None, "gettext": None, "ngettext": (1, 2)}


def page_texts() -> set[str | tuple[str, ...]]:
    found: set[str | tuple[str, ...]] = set()
    for _, _, message, _, _ in extract_from_dir(
        str(WEB),
        method_map=[("**/templates/**.html", "jinja2"), ("**.py", "python")],
        options_map={"**/templates/**.html": {"extensions": "jinja2.ext.i18n"}},
        keywords=KEYWORDS,
    ):
        found.add(message if isinstance(message, str) else tuple(message))
    return found


def test_every_page_text_has_a_spanish_translation():
    with (LOCALE_DIR / "es" / "LC_MESSAGES" / "messages.po").open("rb") as po:
        catalog = read_po(po, locale="es")
    texts = page_texts()
    assert len(texts) > 150  # the extraction found the pages
    missing = []
    for text in texts:
        message = catalog.get(text if isinstance(text, str) else text[0])
        translated = message.string if message is not None else None
        if (
            not translated
            or (isinstance(translated, tuple) and not all(translated))
            or (message is not None and message.fuzzy)
        ):
            missing.append(text)
    assert missing == [], f"add these to messages.po: {missing}"


def test_the_browser_language_is_chosen_by_its_weights():
    assert accepted_language("es-MX,es;q=0.9,en;q=0.8") == "es"
    assert accepted_language("en-GB,en;q=0.9,es;q=0.8") == "en"
    assert accepted_language("fr;q=1, es;q=0.5") == "es"
    assert accepted_language("es;q=0, en;q=0.1") == "en"
    assert accepted_language("de, fr") == "en"
    assert accepted_language("es;q=bogus,,;;") == "en"
    assert accepted_language("") == "en"


def test_dates_are_written_out_in_the_places_zone():
    from datetime import UTC, datetime

    instant = datetime(2026, 12, 8, 15, 45, tzinfo=UTC)
    assert Dates("en").when(instant, "America/Chicago") == "Tuesday 8 December 2026, 9:45 am CST"
    assert (
        Dates("es").when(instant, "America/Chicago") == "martes, 8 de diciembre de 2026, 9:45 CST"
    )
    assert Dates("en").when(instant, "America/New_York").endswith("10:45 am EST")
    summer = datetime(2026, 7, 8, 15, 45, tzinfo=UTC)
    assert Dates("en").zone(summer, "America/Chicago") == "Central Daylight Time (CDT)"
    assert Dates("es").weekdays(["mon", "wed"]) == "lunes, miércoles"
