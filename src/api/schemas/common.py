from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """Request bodies refuse fields they do not know (no mass assignment)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ErrorBody(BaseModel):
    code: str
    detail: str


class Created(BaseModel):
    id: str
