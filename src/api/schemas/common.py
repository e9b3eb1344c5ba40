from datetime import date, datetime
from typing import Annotated, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
)
from pydantic_core import PydanticCustomError

from domain.schedule import out_of_range_problem

# How every instant in a query string is written: a URL's query turns a bare + into a space.
INSTANT_HELP = (
    "an ISO-8601 instant with a UTC offset, e.g. 2026-11-30T12:00:00Z or"
    " 2026-11-30T07:00:00-05:00 (in a URL, write + as %2B)"
)


# Every date and instant the API accepts lies in the years of ``domain.schedule``'s sane
# range, with an offset that exists somewhere (at most ±14:00): far-off values (9999-12-31,
# 0001-01-01, +23:59) overflowed the arithmetic and the database behind a route and
# answered 500. Bookings are held much closer still by each exam's booking horizon.
OUT_OF_RANGE = "out_of_range"
D = TypeVar("D", bound=date)


def _in_range(value: D) -> D:
    problem = out_of_range_problem(value)
    if problem is not None:
        raise PydanticCustomError(OUT_OF_RANGE, problem)
    return value


# An instant with its UTC offset, in the accepted range.
Instant = Annotated[AwareDatetime, AfterValidator(_in_range)]
# A date or time (with or without an offset, e.g. a location's wall-clock time) in range.
Moment = Annotated[datetime, AfterValidator(_in_range)]
Day = Annotated[date, AfterValidator(_in_range)]


class Strict(BaseModel):
    """Request bodies refuse fields they do not know (no mass assignment), and their text
    is trimmed, except for passwords (see ``Password``)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# A password is used exactly as typed, spaces included, everywhere (ASVS 6.2.x): trimming
# it on some routes but not on sign-in locked out anyone whose password began or ended
# with a space.
Password = Annotated[
    str, StringConstraints(strip_whitespace=False), Field(min_length=1, max_length=1024)
]


class FromView(BaseModel):
    """A response model read from an application view (or aggregate) by attribute:
    ``Model.model_validate(view)``, never copied field by field."""

    model_config = ConfigDict(from_attributes=True)


class ErrorBody(BaseModel):
    code: str
    detail: str


class Created(BaseModel):
    id: str
