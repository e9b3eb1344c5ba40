"""The steps booking and rescheduling share: choose a day, then a time of that day, in
the place's own time zone; "next available" when a day is full; the nearest free times
when the chosen one was just taken. Query values are read leniently and checked: a page
never fails on what a person (or a bot) typed into its address."""

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode
from uuid import UUID
from zoneinfo import ZoneInfo

from fastapi.responses import Response

from api.web.catalog_words import Exam, Place
from api.web.forms import Problems
from api.web.i18n import N_
from api.web.render import render
from api.web.visit import Visit
from application.slot_search import FreeDay, Slot
from domain.schedule import out_of_range_problem

DAYS_SHOWN = 28
NEAREST = 6


def parse_uuid(text: str) -> UUID | None:
    try:
        return UUID(text.strip())
    except (ValueError, AttributeError):
        return None


def parse_day(text: str) -> date | None:
    try:
        day = date.fromisoformat(text.strip())
    except (ValueError, AttributeError):
        return None
    return day if out_of_range_problem(day) is None else None


def parse_start(text: str) -> datetime | None:
    """An instant with its offset; a ``+`` that a hand-typed address turned into a space
    is read as the ``+`` it was."""
    try:
        start = datetime.fromisoformat(text.strip().replace(" ", "+"))
    except (ValueError, AttributeError):
        return None
    if start.tzinfo is None or start.utcoffset() is None:
        return None
    return start if out_of_range_problem(start) is None else None


@dataclass(frozen=True)
class Journey:
    """Where the day and time steps of one journey send the person."""

    exam: Exam
    place: Place
    days_page: str  # the day step (GET), with ``from`` to page through weeks
    day_action: str  # where the chosen day goes (GET)
    time_action: str  # where the chosen time goes (GET)
    hidden: dict[str, str] = field(default_factory=dict)
    back: str = "/"
    order_text: str = ""  # the procedure of the order being booked (none: no order)

    def url(self, page: str, **query: str) -> str:
        return f"{page}?{urlencode({**self.hidden, **query})}"


def local_midnight(day: date, timezone: str) -> datetime:
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(timezone))


def today_at(visit: Visit, place: Place) -> date:
    return visit.services.clock.now().astimezone(ZoneInfo(place.timezone)).date()


def last_day(visit: Visit, journey: Journey) -> date:
    return today_at(visit, journey.place) + timedelta(days=journey.exam.horizon_days)


def free_slots(visit: Visit, journey: Journey, first: date, days: int) -> list[Slot]:
    """Free slots of the exam at the place on ``days`` local days from ``first``."""
    tz = journey.place.timezone
    days = min(days, 31)
    return visit.services.slots.find(
        appointment_type_id=journey.exam.id,
        location_id=journey.place.id,
        start=local_midnight(first, tz),
        end=local_midnight(first + timedelta(days=days), tz),
    )


def free_days(visit: Visit, journey: Journey, first: date, days: int) -> dict[date, FreeDay]:
    """The local days among ``days`` from ``first`` with free slots of the exam at the
    place: how many each, and the first (counted, not listed: see ``free_slots``)."""
    tz = journey.place.timezone
    days = min(days, 31)
    return visit.services.slots.free_days(
        appointment_type_id=journey.exam.id,
        location_id=journey.place.id,
        start=local_midnight(first, tz),
        end=local_midnight(first + timedelta(days=days), tz),
    )


def next_available(visit: Visit, journey: Journey, after: date) -> date | None:
    """The first day after ``after`` with a free time (looking a month ahead)."""
    found = free_days(visit, journey, after + timedelta(days=1), 31)
    return min(found) if found else None


def _local_day(slot: Slot, place: Place) -> date:
    return slot.start.astimezone(ZoneInfo(place.timezone)).date()


def site_words(place: Place, day: date) -> tuple[str, str] | None:
    """Where to go on a day: the mobile unit's site, or the place itself."""
    return place.site(day) if place.mobile else (place.name, place.address)


def render_days(
    visit: Visit,
    journey: Journey,
    start_from: date | None,
    problems: Problems | None = None,
    status: int = 200,
    **extra: Any,
) -> Response:
    today = today_at(visit, journey.place)
    first = start_from if start_from is not None and today <= start_from else today
    horizon = last_day(visit, journey)
    first = min(first, horizon)
    found = free_days(visit, journey, first, DAYS_SHOWN)
    days = [
        {
            "value": day.isoformat(),
            "label": visit.dates.short_day(day),
            "count": found[day].count,
            "first": visit.dates.time(found[day].first, journey.place.timezone),
            "site": site_words(journey.place, day) if journey.place.mobile else None,
        }
        for day in sorted(found)
    ]
    window_end = first + timedelta(days=DAYS_SHOWN)
    later = journey.url(journey.days_page, **{"from": window_end.isoformat()})
    earlier_from = max(today, first - timedelta(days=DAYS_SHOWN))
    earlier = journey.url(journey.days_page, **{"from": earlier_from.isoformat()})
    following = None if days else next_available(visit, journey, window_end - timedelta(days=1))
    return render(
        visit,
        "choose_day.html",
        status=status,
        journey=journey,
        days=days,
        first=visit.dates.short_day(first),
        last=visit.dates.short_day(window_end - timedelta(days=1)),
        later=later if window_end <= horizon else None,
        earlier=earlier if first > today else None,
        following=(visit.dates.short_day(following), following.isoformat()) if following else None,
        problems=problems or Problems(),
        **extra,
    )


def render_times(
    visit: Visit,
    journey: Journey,
    day: date,
    problems: Problems | None = None,
    status: int = 200,
    around: datetime | None = None,
    **extra: Any,
) -> Response:
    """The free times of a day; with ``around``, the nearest free times to that instant
    (the one the person chose was just taken), on that day or the next ones."""
    tz = journey.place.timezone
    slots = free_slots(visit, journey, day, 1)
    if around is not None:
        nearby = free_slots(visit, journey, day, 3)
        slots = sorted(nearby, key=lambda slot: abs(slot.start - around))[:NEAREST]
        slots.sort(key=lambda slot: slot.start)
    times = [
        {
            "value": slot.start.astimezone(ZoneInfo(tz)).isoformat(),
            "label": visit.dates.time(slot.start, tz),
            "day": visit.dates.short_day(_local_day(slot, journey.place)),
        }
        for slot in slots
    ]
    following = None if times else next_available(visit, journey, day)
    sample = local_midnight(day, tz) + timedelta(hours=12)
    return render(
        visit,
        "choose_time.html",
        status=status,
        journey=journey,
        day=day.isoformat(),
        day_words=visit.dates.day(day),
        zone=visit.dates.zone(sample, tz),
        site=site_words(journey.place, day),
        times=times,
        nearest=around is not None,
        following=(visit.dates.short_day(following), following.isoformat()) if following else None,
        problems=problems or Problems(),
        **extra,
    )


def is_free(visit: Visit, journey: Journey, start: datetime) -> bool:
    """Whether a slot of the exam starts at ``start`` at the place and is still free."""
    found = visit.services.slots.find(
        appointment_type_id=journey.exam.id,
        location_id=journey.place.id,
        start=start,
        end=start + timedelta(minutes=1),
    )
    return any(slot.start == start for slot in found)


TAKEN = N_("That time was just taken. Here are the nearest free times")
NOT_A_TIME = N_("Choose a time from the list")
