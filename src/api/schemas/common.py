from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints


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


class ErrorBody(BaseModel):
    code: str
    detail: str


class Created(BaseModel):
    id: str
