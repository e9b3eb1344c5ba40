"""Times as a notice writes them: in the location's zone, in the reader's language, with
the zone's name, so "9:45" cannot be read in the wrong zone.

E-mail gets the long form ("Tuesday 8 December 2026, 9:45 am EST (Eastern Standard
Time)"), SMS and push the short one ("Tue 8 Dec, 9:45 am EST"). The abbreviation comes
from the time zone database (the same in both languages, as the portal shows it), the
long name from Babel in the reader's language.
"""

from datetime import datetime
from zoneinfo import ZoneInfo

from babel.dates import format_datetime, get_timezone_name

DAY_FORMATS = {"en": "EEEE d MMMM y", "es": "EEEE, d 'de' MMMM 'de' y"}
SHORT_DAY_FORMATS = {"en": "EEE d MMM", "es": "EEE d MMM"}
TIME_FORMATS = {"en": "h:mm a", "es": "H:mm"}


def long_when(instant: datetime, zone: str, language: str) -> str:
    """Day, time, zone abbreviation and the zone's name in ``language``."""
    local = instant.astimezone(ZoneInfo(zone))
    day = format_datetime(local, DAY_FORMATS[language], locale=language)
    name = get_timezone_name(local, width="long", locale=language)
    return _plain(f"{day}, {_time(local, language)} {local.tzname()} ({name})")


def short_when(instant: datetime, zone: str, language: str) -> str:
    """Abbreviated day, time and zone abbreviation."""
    local = instant.astimezone(ZoneInfo(zone))
    day = format_datetime(local, SHORT_DAY_FORMATS[language], locale=language)
    return _plain(f"{day.rstrip('.')}, {_time(local, language)} {local.tzname()}")


def _time(local: datetime, language: str) -> str:
    text = format_datetime(local, TIME_FORMATS[language], locale=language)
    return text.replace("AM", "am").replace("PM", "pm")


def _plain(text: str) -> str:
    """Ordinary spaces for the no-break ones CLDR puts in times (they cost an SMS its
    GSM-7 alphabet)."""
    return text.replace("\u202f", " ").replace("\u00a0", " ")
