import json
from datetime import datetime
from typing import Annotated, NamedTuple
from uuid import UUID
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from api.consistency import HEADER, check_token, parse_token
from api.deps import Public, ServicesDep
from api.schemas.common import INSTANT_HELP, Instant
from api.schemas.slots import SlotOut
from application.base import Position
from application.services import Services
from application.slot_answers import SlotAnswer
from application.slot_search import Slot

router = APIRouter(prefix="/v1", tags=["slots"], dependencies=[Public])


@router.get(
    "/slots",
    response_model=list[SlotOut],
    summary="Free slots for an exam",
    description="Answers carry an `ETag` and `Cache-Control: private, no-cache`: send it back"
    " in `If-None-Match` and an unchanged answer is a bodiless 304. After a booking, send"
    " its `X-Consistency-Token` and the answer no longer offers the booked time. Clients"
    " that send `Accept-Encoding: gzip` get the answer gzipped (encoded once, when the"
    " answer is worked out).",
)
async def slots(
    request: Request,
    services: ServicesDep,
    appointment_type_id: UUID,
    start: Annotated[Instant, Query(description=f"slots from: {INSTANT_HELP}")],
    end: Annotated[
        Instant,
        Query(description=f"slots starting before: {INSTANT_HELP}; at most 31 days on"),
    ],
    location_id: UUID | None = None,
) -> Response:
    """The same question asked again is answered from ``SlotAnswers`` while the read
    models it was worked out from are unchanged, on the event loop (no database, no
    worker thread). A client that just booked may send its ``X-Consistency-Token``: the
    answer then waits until the slot shows as taken, in a worker thread."""
    token = parse_token(request.headers.get(HEADER))
    question = Question(appointment_type_id, location_id, start, end)
    answer = None if token is not None else services.slot_answers.kept(**question._asdict())
    if answer is None:
        answer = await run_in_threadpool(_worked_out, services, token, question)
    gzipped = accepts_gzip(request.headers.get("accept-encoding", ""))
    etag = answer.gzip_etag if gzipped else answer.etag
    headers = {"ETag": etag, "Cache-Control": "private, no-cache", "Vary": "Accept-Encoding"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    if gzipped:
        headers["Content-Encoding"] = "gzip"
        return Response(answer.gzipped, media_type="application/json", headers=headers)
    return Response(answer.body, media_type="application/json", headers=headers)


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether ``Accept-Encoding`` names gzip with a weight above zero (RFC 9110 12.5.3;
    ``*`` is not taken for it: a client that wants gzip says so)."""
    for item in accept_encoding.lower().split(","):
        coding, _, parameters = item.partition(";")
        if coding.strip() not in ("gzip", "x-gzip"):
            continue
        name, _, weight = parameters.strip().partition("=")
        if name.strip() != "q":
            return True
        try:
            return float(weight) > 0
        except ValueError:
            return False
    return False


class Question(NamedTuple):
    appointment_type_id: UUID
    location_id: UUID | None
    start: datetime
    end: datetime


def _worked_out(services: Services, token: Position | None, question: Question) -> SlotAnswer:
    if token is not None:
        check_token(token, services.sync)
        services.sync.wait(token)
    return services.slot_answers.answer(**question._asdict(), render=render_slots)


def render_slots(found: list[Slot]) -> bytes:
    """Slots are serialised by hand: a 14-day search of a 24-hour scanner is over a
    thousand slots, and validating each through the response model cost more than
    finding them. The shape is still ``list[SlotOut]`` (schemathesis checks it)."""
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
    return json.dumps(body, separators=(",", ":")).encode()
