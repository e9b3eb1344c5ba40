"""Staff endpoints: accounts (admin), appointments and patients of their centres,
front-desk actions, and break-glass."""

from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query

from api.deps import ActorDep, AuditDep, ConsistencyDep, ServicesDep, requires
from api.schemas.appointments import ChangeAppointment
from api.schemas.common import INSTANT_HELP, Created, ErrorBody, Instant
from api.schemas.staff import (
    AppointmentStatus,
    BreakGlassOut,
    BreakGlassRequest,
    ChangeRole,
    CreateStaff,
    PatientBrief,
    Reason,
    StaffAccountItem,
    StaffAccountList,
    StaffAppointmentOut,
    StaffOut,
)
from application.errors import InvalidQueryError, NotFoundError
from application.permissions import Permission
from application.ports import Principal
from application.scheduling import Written
from application.services import Services
from domain.account import Account

router = APIRouter(prefix="/v1/staff", tags=["staff"])

StaffAdmin = Annotated[Principal, requires(Permission.STAFF_MANAGE)]
AppointmentsReader = Annotated[Principal, requires(Permission.APPOINTMENTS_READ)]
AppointmentsManager = Annotated[Principal, requires(Permission.APPOINTMENTS_MANAGE)]
BreakGlass = Annotated[Principal, requires(Permission.BREAK_GLASS)]


def _staff_account(services: Services, account_id: UUID) -> Account:
    account = services.registry.account(account_id)
    if not account.is_staff:
        raise NotFoundError("no such staff account")
    return account


class Briefs:
    """Who each appointment is for (name, birth date, MRN), read once per patient per
    request from the Registry's records: no read model keeps names (see migration 0016)."""

    def __init__(self, services: Services) -> None:
        self._services = services
        self._seen: dict[UUID, PatientBrief | None] = {}

    def patient(self, patient_id: UUID) -> PatientBrief | None:
        if patient_id not in self._seen:
            found = self._services.patient_search.summary(patient_id)
            self._seen[patient_id] = None if found is None else PatientBrief.model_validate(found)
        return self._seen[patient_id]

    def appointment(self, described: Any) -> StaffAppointmentOut:
        """``described``: an appointment with its details (``AppointmentDetails``)."""
        out = StaffAppointmentOut.model_validate(described)
        out.patient = self.patient(described.patient_id)
        return out


# Accounts ---------------------------------------------------------------------------


@router.post("/accounts", status_code=201, response_model=Created, summary="Create a staff account")
def create_staff(
    request: CreateStaff, _: StaffAdmin, actor: ActorDep, services: ServicesDep
) -> Created:
    """The new member of staff signs in with this password and must enrol a second factor
    before any staff permission works."""
    account_id = services.registry.open_staff_account(
        email=request.email,
        password=request.password,
        role=request.role,
        centres=list(request.centres),
        actor=actor,
    )
    return Created(id=str(account_id))


@router.get("/accounts", response_model=StaffAccountList, summary="Every staff account")
def list_staff(_: StaffAdmin, services: ServicesDep) -> StaffAccountList:
    """By e-mail address; no password hash, no second-factor secret."""
    accounts = services.registry.staff_accounts()
    return StaffAccountList(items=[StaffAccountItem.model_validate(a) for a in accounts])


@router.get("/accounts/{account_id}", response_model=StaffOut, summary="One staff account")
def get_staff(account_id: UUID, _: StaffAdmin, services: ServicesDep) -> StaffOut:
    return StaffOut.model_validate(_staff_account(services, account_id))


OWN_ACCOUNT: dict[int | str, dict[str, Any]] = {
    422: {
        "model": ErrorBody,
        "description": "`validation_error`, or `own_account`: not on your own account",
    }
}


@router.post(
    "/accounts/{account_id}/role",
    response_model=StaffOut,
    responses=OWN_ACCOUNT,
    summary="Change role/centres",
)
def change_role(
    account_id: UUID, request: ChangeRole, _: StaffAdmin, actor: ActorDep, services: ServicesDep
) -> StaffOut:
    _staff_account(services, account_id)
    account = services.auth.change_staff_role(
        account_id, request.role, list(request.centres), actor
    )
    return StaffOut.model_validate(account)


@router.post(
    "/accounts/{account_id}/disable",
    response_model=StaffOut,
    responses=OWN_ACCOUNT,
    summary="Disable",
)
def disable(
    account_id: UUID, request: Reason, _: StaffAdmin, actor: ActorDep, services: ServicesDep
) -> StaffOut:
    _staff_account(services, account_id)
    return StaffOut.model_validate(services.auth.disable_account(account_id, request.reason, actor))


@router.post("/accounts/{account_id}/enable", response_model=StaffOut, summary="Enable again")
def enable(account_id: UUID, _: StaffAdmin, actor: ActorDep, services: ServicesDep) -> StaffOut:
    _staff_account(services, account_id)
    services.registry.enable_account(account_id, actor)
    return StaffOut.model_validate(services.registry.account(account_id))


# Appointments and patients of the caller's centres ------------------------------------


@router.get(
    "/appointments", response_model=list[StaffAppointmentOut], summary="A location's appointments"
)
def location_appointments(
    principal: AppointmentsReader,
    services: ServicesDep,
    audit: AuditDep,
    consistency: ConsistencyDep,
    location_id: UUID,
    start: Annotated[Instant, Query(description=f"starting at or after: {INSTANT_HELP}")],
    end: Annotated[
        Instant,
        Query(description=f"starting before: {INSTANT_HELP}; at most 31 days on"),
    ],
    status: Annotated[
        AppointmentStatus | None,
        Query(
            description="only those in this state (needs_new_time: those whose time no longer"
            " holds, after a forced closure, block or change of hours, or a booking of the RIS)"
        ),
    ] = None,
) -> list[StaffAppointmentOut]:
    if not start < end <= start + timedelta(days=31):
        raise InvalidQueryError("end must be after start and at most 31 days later")
    if not services.staff_access.may_see_location(principal, location_id):
        audit.read("appointment_list", str(location_id), None, outcome="denied_or_missing")
        raise NotFoundError("no such location")
    consistency.before_read()
    found = services.appointments.at_location(location_id, start, end)
    if status is not None:
        found = [view for view in found if view.status == status]
    audit.read("appointment_list", str(location_id), None)
    briefs = Briefs(services)
    return [briefs.appointment(d) for d in services.appointment_details.all(found)]


def _staff_appointment(
    principal: Principal, services: Services, audit: AuditDep, appointment_id: UUID
) -> StaffAppointmentOut:
    view = services.appointments.get(appointment_id)
    try:
        if view is None:
            raise NotFoundError("no such appointment")
        reach = services.staff_access.reach_appointment(
            principal, view.location_id, view.patient_id
        )
    except NotFoundError:
        owner = view.patient_id if view else None
        audit.read("appointment", str(appointment_id), owner, outcome="denied_or_missing")
        raise
    audit.read("appointment", str(appointment_id), view.patient_id, reason=reach.reason)
    return Briefs(services).appointment(services.appointment_details.one(view))


@router.get("/appointments/{appointment_id}", response_model=StaffAppointmentOut, summary="One")
def staff_appointment(
    appointment_id: UUID,
    principal: AppointmentsReader,
    services: ServicesDep,
    audit: AuditDep,
    consistency: ConsistencyDep,
) -> StaffAppointmentOut:
    consistency.before_read()
    return _staff_appointment(principal, services, audit, appointment_id)


def _front_desk(
    principal: Principal,
    services: Services,
    consistency: ConsistencyDep,
    appointment_id: UUID,
    change: Callable[[], Written],
) -> StaffAppointmentOut:
    """One front-desk change to an appointment of the caller's centres (404 elsewhere)."""
    view = services.appointments.get(appointment_id)
    if view is None or not services.staff_access.may_see_location(principal, view.location_id):
        raise NotFoundError("no such appointment")
    written = change()
    consistency.wrote(written.position)
    return Briefs(services).appointment(services.appointment_details.one(written.appointment))


@router.patch(
    "/appointments/{appointment_id}", response_model=StaffAppointmentOut, summary="Change its notes"
)
def change(
    appointment_id: UUID,
    request: ChangeAppointment,
    principal: AppointmentsManager,
    actor: ActorDep,
    services: ServicesDep,
    consistency: ConsistencyDep,
) -> StaffAppointmentOut:
    return _front_desk(
        principal,
        services,
        consistency,
        appointment_id,
        lambda: services.scheduling.modify(
            appointment_id, notes=request.notes, actor=actor, owner=None
        ),
    )


@router.post(
    "/appointments/{appointment_id}/check-in", response_model=StaffAppointmentOut, summary="Arrived"
)
def check_in(
    appointment_id: UUID,
    principal: AppointmentsManager,
    actor: ActorDep,
    services: ServicesDep,
    consistency: ConsistencyDep,
) -> StaffAppointmentOut:
    return _front_desk(
        principal,
        services,
        consistency,
        appointment_id,
        lambda: services.scheduling.check_in(appointment_id, actor=actor),
    )


@router.post(
    "/appointments/{appointment_id}/complete",
    response_model=StaffAppointmentOut,
    summary="Performed",
)
def complete(
    appointment_id: UUID,
    principal: AppointmentsManager,
    actor: ActorDep,
    services: ServicesDep,
    consistency: ConsistencyDep,
) -> StaffAppointmentOut:
    return _front_desk(
        principal,
        services,
        consistency,
        appointment_id,
        lambda: services.scheduling.complete(appointment_id, actor=actor),
    )


@router.post(
    "/appointments/{appointment_id}/no-show",
    response_model=StaffAppointmentOut,
    summary="Did not come",
)
def no_show(
    appointment_id: UUID,
    request: Reason,
    principal: AppointmentsManager,
    actor: ActorDep,
    services: ServicesDep,
    consistency: ConsistencyDep,
) -> StaffAppointmentOut:
    return _front_desk(
        principal,
        services,
        consistency,
        appointment_id,
        lambda: services.scheduling.mark_no_show(
            appointment_id, reason=request.reason, actor=actor
        ),
    )


@router.post(
    "/break-glass",
    status_code=201,
    response_model=BreakGlassOut,
    summary="Emergency access to one patient, with a reason, for a limited time",
)
def break_glass(
    request: BreakGlassRequest, principal: BreakGlass, services: ServicesDep
) -> BreakGlassOut:
    services.registry.patient(request.patient_id)  # 404 for an unknown patient
    grant = services.staff_access.break_glass(
        principal, request.patient_id, request.reason, request.minutes
    )
    return BreakGlassOut.model_validate(grant)
