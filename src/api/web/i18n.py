"""English and Spanish: gettext catalogs read from their ``.po`` files at start-up (no build
step), the language of a request, and dates written out in a place's own time zone."""

import gettext
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache
from io import BytesIO
from pathlib import Path
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime, get_day_names, get_timezone_name
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

LANGUAGES = ("en", "es")
DEFAULT_LANGUAGE = "en"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"


def N_(message: str) -> str:
    """Marks a message for the catalogs; it is translated where it is shown."""
    return message


def load_translations(locale_dir: Path = LOCALE_DIR) -> dict[str, gettext.NullTranslations]:
    """Each language's translations, compiled in memory from its ``messages.po``
    (English is the source text: no catalog). Fuzzy entries are left out."""
    found: dict[str, gettext.NullTranslations] = {DEFAULT_LANGUAGE: gettext.NullTranslations()}
    for language in LANGUAGES:
        if language == DEFAULT_LANGUAGE:
            continue
        with (locale_dir / language / "LC_MESSAGES" / "messages.po").open("rb") as po:
            catalog = read_po(po, locale=language)
        compiled = BytesIO()
        write_mo(compiled, catalog)
        compiled.seek(0)
        found[language] = Translations(compiled)
    return found


def accepted_language(header: str) -> str:
    """The first language of an ``Accept-Language`` header we speak, by its weights."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        weight = 1.0
        if params.strip().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                weight = 0.0
        primary = tag.strip().split("-")[0].lower()
        if primary in LANGUAGES and weight > 0:
            ranked.append((-weight, position, primary))
    return min(ranked)[2] if ranked else DEFAULT_LANGUAGE


# How each language writes a day and a time ("Tuesday 8 December 2026, 9:45 am CST";
# "martes, 8 de diciembre de 2026, 9:45 CST").
DAY_FORMATS = {"en": "EEEE d MMMM y", "es": "EEEE, d 'de' MMMM 'de' y"}
SHORT_DAY_FORMATS = {"en": "EEEE d MMMM", "es": "EEEE, d 'de' MMMM"}
TIME_FORMATS = {"en": "h:mm a", "es": "H:mm"}
WEEKDAY_CODES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MINUTES_PER_DAY = 24 * 60


# Babel takes a tenth of a millisecond or more for each date it writes out (it looks up
# the locale and parses the pattern every time), and a booking page writes out dozens:
# the few days and times a page shows are written once per process and remembered.


@lru_cache(maxsize=4096)
def _day_words(language: str, pattern: str, day: date) -> str:
    return format_date(day, pattern, locale=language)


@lru_cache(maxsize=2 * len(LANGUAGES) * MINUTES_PER_DAY)
def _clock_words(language: str, hour: int, minute: int) -> str:
    """A wall-clock time in ``language``: its time pattern holds only the hour, the
    minute and am/pm, so these two numbers decide the words."""
    wall_clock = datetime(2000, 1, 3, hour, minute, tzinfo=UTC)
    text = format_datetime(wall_clock, TIME_FORMATS[language], tzinfo=UTC, locale=language)
    return text.replace("AM", "am").replace("PM", "pm")


@dataclass(frozen=True)
class Dates:
    """Dates and times written out in one language; instants in a place's zone, with the
    zone's short name (from the time zone database, the same in both languages)."""

    language: str

    def day(self, day: date) -> str:
        return _day_words(self.language, DAY_FORMATS[self.language], day)

    def short_day(self, day: date) -> str:
        return _day_words(self.language, SHORT_DAY_FORMATS[self.language], day)

    def time(self, instant: datetime, timezone: str) -> str:
        local = instant.astimezone(ZoneInfo(timezone))
        return _clock_words(self.language, local.hour, local.minute)

    def when(self, instant: datetime, timezone: str) -> str:
        """Day, time and zone: the way every appointment time is shown."""
        local = instant.astimezone(ZoneInfo(timezone))
        return f"{self.day(local.date())}, {self.time(local, timezone)} {local.tzname()}"

    def weekdays(self, codes: list[str]) -> str:
        """ "Monday, Wednesday" for ``["mon", "wed"]`` (a mobile unit's days)."""
        names = get_day_names("wide", locale=self.language)
        return ", ".join(str(names[WEEKDAY_CODES.index(c)]) for c in codes if c in WEEKDAY_CODES)

    def zone(self, instant: datetime, timezone: str) -> str:
        """The zone's name at that instant: "Central Standard Time (CST)"."""
        local = instant.astimezone(ZoneInfo(timezone))
        name = get_timezone_name(local, width="long", locale=self.language)
        return f"{name} ({local.tzname()})"
