"""The portal's dates and times, remembered once written out (``api.web.i18n``), read as
Babel writes them each time: every minute of a day in both languages, on the days US
clocks change, and a year of days."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from babel.dates import format_date, format_datetime

from api.web.i18n import DAY_FORMATS, LANGUAGES, SHORT_DAY_FORMATS, TIME_FORMATS, Dates


def babel_time(instant: datetime, timezone: str, language: str) -> str:
    """How ``Dates.time`` wrote a time before it remembered any."""
    local = instant.astimezone(ZoneInfo(timezone))
    text = format_datetime(local, TIME_FORMATS[language], locale=language)
    return text.replace("AM", "am").replace("PM", "pm")


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize(
    ("day", "timezone"),
    [
        (date(2026, 11, 1), "America/New_York"),  # 25 hours: 01:00-02:00 twice
        (date(2027, 3, 14), "America/Chicago"),  # 23 hours: no 02:00-03:00
        (date(2026, 12, 8), "Asia/Kolkata"),  # a half-hour offset
    ],
)
def test_every_minute_of_a_day_reads_as_babel_writes_it(language, day, timezone):
    dates = Dates(language)
    start = datetime.combine(day, datetime.min.time(), tzinfo=ZoneInfo(timezone))
    instants = [start.astimezone(UTC) + timedelta(minutes=m) for m in range(25 * 60)]
    written = [dates.time(instant, timezone) for instant in instants]
    assert written == [babel_time(instant, timezone, language) for instant in instants]
    assert {"9:45 am", "9:45"} & set(written)


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_year_of_days_reads_as_babel_writes_it(language):
    dates = Dates(language)
    days = [date(2026, 12, 1) + timedelta(days=n) for n in range(366)]
    for _ in range(2):  # written out, then remembered
        assert [dates.day(d) for d in days] == [
            format_date(d, DAY_FORMATS[language], locale=language) for d in days
        ]
        assert [dates.short_day(d) for d in days] == [
            format_date(d, SHORT_DAY_FORMATS[language], locale=language) for d in days
        ]
    assert dates.short_day(date(2026, 12, 8)) in {"Tuesday 8 December", "martes, 8 de diciembre"}
