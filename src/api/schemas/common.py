from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """Request bodies refuse fields they do not know (no mass assignment)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class FromView(BaseModel):
    """A response model read from an application view (or aggregate) by attribute:
    ``Model.model_validate(view)``, never copied field by field."""

    model_config = ConfigDict(from_attributes=True)


class ErrorBody(BaseModel):
    code: str
    detail: str


class Created(BaseModel):
    id: str
