from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

# How every instant in a query string is written: a URL's query turns a bare + into a space.
INSTANT_HELP = (
    "an ISO-8601 instant with a UTC offset, e.g. 2026-11-30T12:00:00Z or"
    " 2026-11-30T07:00:00-05:00 (in a URL, write + as %2B)"
)


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
