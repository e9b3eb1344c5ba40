"""A patient's orders and results (references only) and links to the result viewer."""

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field

from api.schemas.common import FromView


class OrderOut(FromView):
    id: UUID
    status: Literal["waiting", "scheduled", "completed", "cancelled"] = Field(
        description="waiting to be booked; scheduled (appointment_id); completed (its"
        " appointment was completed, or a final or corrected result arrived); cancelled"
        " by the RIS"
    )
    procedure_code: str
    procedure_text: str
    accession_number: str
    appointment_id: UUID | None
    appointment_type_ids: list[UUID] = Field(
        description="the exam types that perform the procedure: book one of them with"
        " order_id (POST /v1/appointments); empty: the centre books it"
    )


class OrdersOut(BaseModel):
    items: list[OrderOut]


class ResultOut(FromView):
    id: UUID
    order_id: UUID
    accession_number: str
    procedure_text: str
    status: Literal["preliminary", "final", "corrected"]
    observed_at: datetime | None


class ResultsOut(BaseModel):
    items: list[ResultOut]


class ResultLinkOut(BaseModel):
    url: str = Field(description="the centre's viewer, with a signed token for this result")
    expires_at: datetime = Field(description="when the token stops being accepted")


class JwkOut(BaseModel):
    kty: Literal["OKP"]
    crv: Literal["Ed25519"]
    x: str
    kid: str
    alg: Literal["EdDSA"]
    use: Literal["sig"]


class JwksOut(BaseModel):
    keys: list[JwkOut]
