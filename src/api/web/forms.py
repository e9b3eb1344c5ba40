"""What the portal's forms share: problems to show (an error summary at the top and the
message beside each field), the three-field date, request budgets, and safe redirects."""

import re
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import date
from math import ceil
from typing import Any

from api.web.i18n import N_
from api.web.visit import PageRefused, Visit

PHONE = re.compile(r"^\+?[0-9 ()\-]{5,32}$")


@dataclass(frozen=True)
class Problem:
    """One thing to fix: the field it is about (its input's id) and what to do."""

    field: str
    text: str
    variables: dict[str, Any] = dataclass_field(default_factory=dict)


class Problems(dict[str, Problem]):
    """The problems of one form, by field, in the order they were found."""

    def add(self, field_id: str, text: str, **variables: Any) -> None:
        self.setdefault(field_id, Problem(field_id, text, variables))


def text_field(
    form: dict[str, str], name: str, problems: Problems, missing: str, max_length: int = 100
) -> str:
    """A required line of text, trimmed."""
    value = form.get(name, "").strip()
    if not value:
        problems.add(name, missing)
    elif len(value) > max_length:
        problems.add(name, N_("Use %(max)s characters or fewer"), max=max_length)
    return value


def date_field(
    form: dict[str, str], prefix: str, problems: Problems, today: date, missing: str
) -> date | None:
    """A date from three fields (day, month, year), as GOV.UK asks for one: between 1900
    and today (a birth date)."""
    parts = [form.get(f"{prefix}_{part}", "").strip() for part in ("day", "month", "year")]
    if not any(parts):
        problems.add(f"{prefix}_day", missing)
        return None
    if not all(part.isdigit() and len(part) <= 4 for part in parts):
        problems.add(f"{prefix}_day", N_("Enter a real date, for example 27 3 1980"))
        return None
    day, month, year = (int(part) for part in parts)
    try:
        value = date(year, month, day)
    except ValueError:
        problems.add(f"{prefix}_day", N_("Enter a real date, for example 27 3 1980"))
        return None
    if not date(1900, 1, 1) <= value <= today:
        problems.add(f"{prefix}_day", N_("The date must be between 1900 and today"))
        return None
    return value


@dataclass(frozen=True)
class Person:
    """A person's names and birth date as a form gave them (checked)."""

    given_name: str
    family_name: str
    birth_date: date | None


def person_fields(form: dict[str, str], problems: Problems, today: date) -> Person:
    """First and last name and date of birth (create account, your details)."""
    return Person(
        given_name=text_field(form, "given_name", problems, N_("Enter your first name")),
        family_name=text_field(form, "family_name", problems, N_("Enter your last name")),
        birth_date=date_field(form, "birth", problems, today, N_("Enter your date of birth")),
    )


def phone_field(form: dict[str, str], problems: Problems) -> str | None:
    """An optional phone number, as the API accepts them."""
    phone = form.get("phone", "").strip() or None
    if phone and not PHONE.match(phone):
        problems.add("phone", N_("Enter a phone number, like 01632 960 001 or +1 215 555 0100"))
    return phone


def within_budget(visit: Visit, bucket: str, limit: int, window_seconds: int, key: str) -> None:
    """Count one request against a budget the API keeps too (same bucket and key); past
    it, a 429 page saying how long to wait."""
    services = visit.services
    if limit <= 0:
        return
    wait = services.rate_limiter.hit(bucket, key, limit, window_seconds, services.clock.now())
    if wait > 0:
        raise too_many(wait)


def too_many(seconds: float) -> PageRefused:
    return PageRefused(
        429,
        N_("Too many attempts"),
        N_("Wait %(minutes)s minutes, then try again."),
        {"minutes": max(1, ceil(seconds / 60))},
    )


def client_address(visit: Visit) -> str:
    client = visit.request.client
    return client.host if client else "unknown"


def safe_next(target: str, default: str = "/appointments") -> str:
    """Where to go after signing in: a path on this site only (never another host)."""
    if (
        target.startswith("/")
        and not target.startswith("//")
        and "\\" not in target
        and len(target) <= 500
        and all(ord(c) > 31 for c in target)
    ):
        return target
    return default
