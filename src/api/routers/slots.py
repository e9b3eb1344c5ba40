from typing import Annotated
from uuid import UUID
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query
from pydantic import AwareDatetime

from api.deps import Public, ServicesDep
from api.schemas.slots import SlotOut

router = APIRouter(prefix="/v1", tags=["slots"], dependencies=[Public])


@router.get("/slots", response_model=list[SlotOut], summary="Free slots for an exam")
def slots(
    services: ServicesDep,
    appointment_type_id: UUID,
    start: Annotated[AwareDatetime, Query(description="ISO-8601 with offset")],
    end: Annotated[AwareDatetime, Query(description="ISO-8601 with offset; at most 31 days on")],
    location_id: UUID | None = None,
) -> list[SlotOut]:
    found = services.slots.find(
        appointment_type_id=appointment_type_id, location_id=location_id, start=start, end=end
    )
    return [
        SlotOut(
            start=slot.start.astimezone(ZoneInfo(slot.timezone)),
            end=slot.end.astimezone(ZoneInfo(slot.timezone)),
            location_id=str(slot.location_id),
            resource_id=str(slot.resource_id),
            site=slot.site,
        )
        for slot in found
    ]
