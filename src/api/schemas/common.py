from pydantic import BaseModel, ConfigDict

# How every instant in a query string is written: a URL's query turns a bare + into a space.
INSTANT_HELP = (
    "an ISO-8601 instant with a UTC offset, e.g. 2026-11-30T12:00:00Z or"
    " 2026-11-30T07:00:00-05:00 (in a URL, write + as %2B)"
)


class Strict(BaseModel):
    """Request bodies refuse fields they do not know (no mass assignment)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ErrorBody(BaseModel):
    code: str
    detail: str


class Created(BaseModel):
    id: str
