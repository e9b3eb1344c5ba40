import json
from typing import Annotated
from uuid import UUID
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Response

from api.deps import Public, ServicesDep
from api.schemas.common import INSTANT_HELP, Instant
from api.schemas.slots import SlotOut

router = APIRouter(prefix="/v1", tags=["slots"], dependencies=[Public])


@router.get("/slots", response_model=list[SlotOut], summary="Free slots for an exam")
def slots(
    services: ServicesDep,
    appointment_type_id: UUID,
    start: Annotated[Instant, Query(description=f"slots from: {INSTANT_HELP}")],
    end: Annotated[
        Instant,
        Query(description=f"slots starting before: {INSTANT_HELP}; at most 31 days on"),
    ],
    location_id: UUID | None = None,
) -> Response:
    """Slots are serialised by hand: a 14-day search of a 24-hour scanner is over a
    thousand slots, and validating each through the response model cost more than
    finding them. The shape is still ``list[SlotOut]`` (schemathesis checks it)."""
    found = services.slots.find(
        appointment_type_id=appointment_type_id, location_id=location_id, start=start, end=end
    )
    zones: dict[str, ZoneInfo] = {}
    ids: dict[UUID, str] = {}
    body = []
    for slot in found:
        tz = zones.get(slot.timezone) or zones.setdefault(slot.timezone, ZoneInfo(slot.timezone))
        body.append(
            {
                "start": slot.start.astimezone(tz).isoformat(),
                "end": slot.end.astimezone(tz).isoformat(),
                "location_id": ids.get(slot.location_id)
                or ids.setdefault(slot.location_id, str(slot.location_id)),
                "resource_id": ids.get(slot.resource_id)
                or ids.setdefault(slot.resource_id, str(slot.resource_id)),
                "site": slot.site,
            }
        )
    return Response(json.dumps(body, separators=(",", ":")), media_type="application/json")
