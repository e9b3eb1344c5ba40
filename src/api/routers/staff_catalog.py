"""Staff endpoints for the catalog (schedulers and admins): read it whole, create or revise
one entry, and the front desk's closures, blocks and opening hours of a resource.

A change that would leave booked appointments outside the resource's opening times is
refused with 409 ``would_strand_appointments`` listing them, unless ``force=true``.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, TypeVar
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Body, Depends, Query, Response
from fastapi.responses import JSONResponse

from api.deps import (
    ActorDep,
    Audit,
    AuditDep,
    Consistency,
    ConsistencyDep,
    PrincipalDep,
    ServicesDep,
    requires,
)
from api.errors import ApiError
from api.routers.staff import Briefs
from api.schemas.catalog import AppointmentTypeOut, LocationOut
from api.schemas.staff_catalog import (
    AppointmentTypeChangeOut,
    AppointmentTypeIn,
    BlockIn,
    BlockOut,
    ClosureIn,
    ClosureOut,
    LocationChangeOut,
    LocationIn,
    ResourceChangeOut,
    ResourceIn,
    ResourceOut,
    StrandedAppointmentOut,
    StrandRefusalOut,
)
from application import ports
from application.catalog_admin import (
    Booking,
    CatalogAdmin,
    Editor,
    EntryChange,
    Spec,
    WouldStrandAppointmentsError,
)
from application.permissions import Permission

router = APIRouter(
    prefix="/v1/staff/catalog",
    tags=["staff catalog"],
    dependencies=[requires(Permission.CATALOG_WRITE)],
)
T = TypeVar("T")
R = TypeVar("R")
STRAND: dict[int | str, dict[str, Any]] = {
    409: {"model": StrandRefusalOut, "description": "would strand booked appointments"}
}


def get_admin(services: ServicesDep) -> CatalogAdmin:
    return CatalogAdmin(
        services.catalog,
        services.scheduling,
        services.appointments,
        services.catalog_view,
        services.sync,
        services.clock,
    )


def get_editor(actor: ActorDep, principal: PrincipalDep) -> Editor:
    return Editor(actor, frozenset(principal.centres))


AdminDep = Annotated[CatalogAdmin, Depends(get_admin)]
EditorDep = Annotated[Editor, Depends(get_editor)]
Force = Annotated[
    bool, Query(description="apply the change even if it strands booked appointments")
]


# Rendering ------------------------------------------------------------------------------


def _location_out(entry: Spec) -> LocationOut:
    location_id, spec = entry
    return LocationOut.model_validate({**spec, "id": str(location_id)})


def _appointment_type_out(entry: Spec) -> AppointmentTypeOut:
    type_id, spec = entry
    return AppointmentTypeOut.model_validate({**spec, "id": str(type_id)})


def _resource_out(entry: ports.ResourceEntry) -> ResourceOut:
    spec, tz = entry.spec, ZoneInfo(entry.location_spec["timezone"])
    return ResourceOut(
        id=str(entry.id),
        code=spec["code"],
        name=spec["name"],
        modality=spec["modality"],
        location=entry.location_spec["code"],
        location_id=str(entry.location_id),
        timezone=tz.key,
        hours=spec["hours"],
        closures=[ClosureOut.model_validate(closure) for closure in spec["closures"]],
        blocks=[
            BlockOut(
                start=datetime.fromisoformat(block["start"]).astimezone(tz),
                end=datetime.fromisoformat(block["end"]).astimezone(tz),
                reason=block["reason"],
            )
            for block in spec["blocks"]
        ],
    )


def _stranded_out(
    bookings: list[Booking], briefs: Briefs | None = None
) -> list[StrandedAppointmentOut]:
    return [
        StrandedAppointmentOut(
            id=str(b.id),
            start=b.start.astimezone(ZoneInfo(b.timezone)),
            end=b.end.astimezone(ZoneInfo(b.timezone)),
            patient=None if briefs is None else briefs.patient(b.patient_id),
        )
        for b in bookings
    ]


@dataclass
class Write:
    """Runs one catalog command and answers for it: 201 when it created the entry, 200
    otherwise, 409 listing the appointments it would strand; the stranded appointments
    listed are reads of patient data, so each is recorded in the access log. A forced
    change also lists those it moved to ``needs_new_time``, with who they are for."""

    consistency: Consistency
    audit: Audit
    response: Response
    briefs: Briefs

    def run(
        self, command: Callable[[], EntryChange[T]], render: Callable[[EntryChange[T]], R]
    ) -> R | JSONResponse:
        try:
            change = command()
        except WouldStrandAppointmentsError as error:
            self._log_reads(error.appointments)
            refusal = StrandRefusalOut(
                code="would_strand_appointments",
                detail=error.detail,
                appointments=_stranded_out(error.appointments, self.briefs),
            )
            return JSONResponse(refusal.model_dump(mode="json"), status_code=409)
        self._log_reads(change.stranded)  # the displaced ones are among them
        self.consistency.wrote(change.position)
        self.response.status_code = 201 if change.outcome == "created" else 200
        return render(change)

    def resource(
        self, command: Callable[[], EntryChange[ports.ResourceEntry]]
    ) -> ResourceChangeOut | JSONResponse:
        return self.run(
            command,
            lambda change: ResourceChangeOut(
                outcome=change.outcome,
                resource=_resource_out(change.entry),
                stranded=_stranded_out(change.stranded, self.briefs),
                displaced=_stranded_out(change.displaced, self.briefs),
            ),
        )

    def _log_reads(self, bookings: list[Booking]) -> None:
        for booking in bookings:
            self.audit.read("appointment", str(booking.id), booking.patient_id)


def get_write(
    consistency: ConsistencyDep, audit: AuditDep, response: Response, services: ServicesDep
) -> Write:
    return Write(consistency, audit, response, Briefs(services))


WriteDep = Annotated[Write, Depends(get_write)]


def _same_code(path_code: str, body_code: str) -> None:
    if path_code != body_code:
        raise ApiError(422, "code_mismatch", "the code in the body must be the one in the path")


# Reading --------------------------------------------------------------------------------


@router.get("/locations", response_model=list[LocationOut], summary="Every location")
def locations(services: ServicesDep, consistency: ConsistencyDep) -> list[LocationOut]:
    consistency.before_read()
    return [_location_out(entry) for entry in services.catalog_view.locations()]


@router.get("/locations/{code}", response_model=LocationOut, summary="One location")
def location(code: str, admin: AdminDep) -> LocationOut:
    return _location_out(admin.location(code))


@router.get(
    "/resources",
    response_model=list[ResourceOut],
    summary="Every resource with its hours, closures and blocks",
)
def resources(
    admin: AdminDep,
    consistency: ConsistencyDep,
    location: Annotated[str | None, Query(description="only this location's (its code)")] = None,
) -> list[ResourceOut]:
    consistency.before_read()
    return [_resource_out(entry) for entry in admin.resources(location)]


@router.get("/resources/{code}", response_model=ResourceOut, summary="One resource")
def resource(code: str, admin: AdminDep) -> ResourceOut:
    return _resource_out(admin.resource(code))


@router.get(
    "/appointment-types", response_model=list[AppointmentTypeOut], summary="Every exam type"
)
def appointment_types(
    services: ServicesDep, consistency: ConsistencyDep
) -> list[AppointmentTypeOut]:
    consistency.before_read()
    return [_appointment_type_out(entry) for entry in services.catalog_view.appointment_types()]


@router.get("/appointment-types/{code}", response_model=AppointmentTypeOut, summary="One exam type")
def appointment_type(code: str, admin: AdminDep) -> AppointmentTypeOut:
    return _appointment_type_out(admin.appointment_type(code))


# Creating and revising entries ----------------------------------------------------------


@router.put(
    "/locations/{code}",
    response_model=LocationChangeOut,
    responses=STRAND,
    summary="Create or revise a location (201 when created)",
)
def put_location(
    code: str,
    body: LocationIn,
    admin: AdminDep,
    editor: EditorDep,
    write: WriteDep,
    force: Force = False,
) -> LocationChangeOut | JSONResponse:
    _same_code(code, body.code)
    return write.run(
        lambda: admin.put_location(body, editor, force=force),
        lambda change: LocationChangeOut(
            outcome=change.outcome,
            location=_location_out(change.entry),
            stranded=_stranded_out(change.stranded, write.briefs),
            displaced=_stranded_out(change.displaced, write.briefs),
        ),
    )


@router.put(
    "/resources/{code}",
    response_model=ResourceChangeOut,
    responses=STRAND,
    summary="Create or revise a resource (201 when created)",
)
def put_resource(
    code: str,
    body: ResourceIn,
    admin: AdminDep,
    editor: EditorDep,
    write: WriteDep,
    force: Force = False,
) -> ResourceChangeOut | JSONResponse:
    _same_code(code, body.code)
    return write.resource(lambda: admin.put_resource(body, editor, force=force))


@router.put(
    "/appointment-types/{code}",
    response_model=AppointmentTypeChangeOut,
    summary="Create or revise an exam type (201 when created)",
)
def put_appointment_type(
    code: str, body: AppointmentTypeIn, admin: AdminDep, editor: EditorDep, write: WriteDep
) -> AppointmentTypeChangeOut | JSONResponse:
    _same_code(code, body.code)
    return write.run(
        lambda: admin.put_appointment_type(body, editor),
        lambda change: AppointmentTypeChangeOut(
            outcome=change.outcome,
            appointment_type=_appointment_type_out(change.entry),
        ),
    )


# The front desk's changes to a resource -------------------------------------------------


@router.post(
    "/resources/{code}/closures",
    response_model=ResourceChangeOut,
    responses=STRAND,
    summary="Close a resource for a whole local day",
)
def add_closure(
    code: str,
    body: ClosureIn,
    admin: AdminDep,
    editor: EditorDep,
    write: WriteDep,
    force: Force = False,
) -> ResourceChangeOut | JSONResponse:
    return write.resource(
        lambda: admin.add_closure(code, body.date, body.reason, editor, force=force)
    )


@router.delete(
    "/resources/{code}/closures/{day}",
    response_model=ResourceChangeOut,
    summary="Open a resource again on a day it was closed",
)
def remove_closure(
    code: str, day: date, admin: AdminDep, editor: EditorDep, write: WriteDep
) -> ResourceChangeOut | JSONResponse:
    return write.resource(lambda: admin.remove_closure(code, day, editor))


@router.post(
    "/resources/{code}/blocks",
    response_model=ResourceChangeOut,
    responses=STRAND,
    summary="Take a resource out of service for a while",
)
def add_block(
    code: str,
    body: BlockIn,
    admin: AdminDep,
    editor: EditorDep,
    write: WriteDep,
    force: Force = False,
) -> ResourceChangeOut | JSONResponse:
    return write.resource(
        lambda: admin.add_block(code, body.start, body.end, body.reason, editor, force=force)
    )


@router.delete(
    "/resources/{code}/blocks/{which}",
    response_model=ResourceChangeOut,
    summary="Remove a block, named by its index (from 0) or its start time",
)
def remove_block(
    code: str, which: str, admin: AdminDep, editor: EditorDep, write: WriteDep
) -> ResourceChangeOut | JSONResponse:
    return write.resource(lambda: admin.remove_block(code, which, editor))


@router.put(
    "/resources/{code}/hours",
    response_model=ResourceChangeOut,
    responses=STRAND,
    summary="Replace a resource's weekly opening hours",
)
def set_hours(
    code: str,
    hours: Annotated[
        dict[str, list[str]],
        Body(examples=[{"mon": ["08:00-12:00", "13:00-18:00"], "sat": ["09:00-13:00"]}]),
    ],
    admin: AdminDep,
    editor: EditorDep,
    write: WriteDep,
    force: Force = False,
) -> ResourceChangeOut | JSONResponse:
    return write.resource(lambda: admin.set_hours(code, hours, editor, force=force))
