"""Shared dependencies: services, the caller, their actor, consistency and access logging."""

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from fastapi.security import OAuth2PasswordBearer
from starlette.concurrency import run_in_threadpool

from api.consistency import HEADER, LastWrites, check_token, parse_token
from api.errors import ApiError
from application.base import Position
from application.errors import InvalidTokenError
from application.permissions import Permission, allows, needs_second_factor
from application.ports import AccessRecord, Principal
from application.services import Services
from domain.context import Actor

bearer = OAuth2PasswordBearer(tokenUrl="/v1/auth/token", auto_error=False)


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def _services(request: Request) -> Services:
    # A coroutine, so that FastAPI does not hand this lookup to a worker thread.
    return get_services(request)


ServicesDep = Annotated[Services, Depends(_services)]


def request_id(request: Request) -> str:
    return str(getattr(request.state, "request_id", ""))


def client_address(request: Request) -> str:
    return request.client.host if request.client else ""


def record_access(
    request: Request,
    services: Services,
    *,
    actor_id: str,
    role: str,
    patient_id: object,
    resource: str,
    action: str,
    outcome: str,
    resource_id: str = "",
    reason: str = "",
) -> None:
    """Append one access-log entry for this request (its time, id and client address).
    ``patient_id`` may be a UUID, its text, or None; the log keeps it as a UUID."""
    # A request that wrote its own entry is not logged again by record_object_refusal.
    request.state.access_logged = True
    who = Actor(id=actor_id, role=role, request_id=request_id(request), source="api")
    services.access_log.record(
        AccessRecord.of(
            who,
            at=services.clock.now(),
            client_address=client_address(request),
            patient_id=patient_id,  # type: ignore[arg-type]
            resource=resource,
            resource_id=resource_id,
            action=action,
            outcome=outcome,
            reason=reason,
        )
    )


def get_principal(
    request: Request, services: ServicesDep, token: Annotated[str | None, Depends(bearer)]
) -> Principal:
    """The caller of a bearer token; a call without one, or with a forged, expired or
    otherwise invalid one, or one of a session that has ended, is refused (401) and
    recorded in the access log."""
    if not token:
        _record_refusal(request, services, outcome="denied_no_token", reason="no bearer token")
        raise ApiError(401, "not_authenticated", "sign in first", {"WWW-Authenticate": "Bearer"})
    try:
        principal = services.auth.principal(token)
    except InvalidTokenError as error:
        _record_refusal(request, services, outcome="denied_token", reason=error.detail)
        raise
    request.state.principal = principal  # for record_object_refusal
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def requires(permission: Permission) -> Any:
    """A dependency that lets the call through only with ``permission`` (see the matrix in
    application.permissions); staff must also have signed in with two factors. The route
    table test reads the ``permission`` attribute, so every route must declare one."""

    if permission is Permission.PUBLIC:

        async def public() -> None:
            return None

        public.permission = permission  # type: ignore[attr-defined]
        return Depends(public)

    async def check(request: Request, principal: PrincipalDep) -> Principal:
        if not allows(principal.role, permission):
            await run_in_threadpool(_record_denial, request, principal, permission, "denied_role")
            raise ApiError(403, "forbidden", "your role may not do this")
        if (
            permission is not Permission.SIGNED_IN
            and needs_second_factor(principal.role)
            and not principal.two_factor
        ):
            await run_in_threadpool(
                _record_denial, request, principal, permission, "denied_second_factor"
            )
            raise ApiError(
                403, "second_factor_required", "staff must sign in with a second factor first"
            )
        return principal

    check.permission = permission  # type: ignore[attr-defined]
    return Depends(check)


def _record_denial(
    request: Request, principal: Principal, permission: Permission, outcome: str
) -> None:
    """A refused call is an access-log entry too (who tried what, from where)."""
    _record_refusal(
        request,
        get_services(request),
        outcome=outcome,
        action=f"{request.method.lower()}:{permission.value}",
        principal=principal,
        patient_id=principal.patient_id,
    )


def _record_refusal(
    request: Request,
    services: Services,
    *,
    outcome: str,
    action: str = "",
    principal: Principal | None = None,
    patient_id: object = None,
    resource_id: str = "",
    reason: str = "",
) -> None:
    """Append a refused call to the access log: the route it aimed at, who (when known),
    from where, and why."""
    route = request.scope.get("route")
    record_access(
        request,
        services,
        actor_id=str(principal.account_id) if principal else "anonymous",
        role=principal.role if principal else "anonymous",
        patient_id=patient_id,
        resource=str(getattr(route, "path", request.url.path)),
        resource_id=resource_id,
        action=action or f"{request.method.lower()}:authenticate",
        outcome=outcome,
        reason=reason,
    )


# An object-level refusal after the permission check: someone else's object (404) or
# one outside the caller's centres (403).
REFUSAL_OUTCOMES = {403: "denied", 404: "not_found"}


def record_object_refusal(request: Request, status_code: int, reason: str) -> None:
    """Log a 403 or 404 answered to a signed-in caller (the error handlers call this), so
    that refused writes are in the access log as refused reads are: a patient's change of
    another patient's appointment, a scheduler's front-desk action or catalog change
    outside their centres. Calls that logged their own entry already (reads, role
    refusals) and calls without a signed-in caller are left alone."""
    outcome = REFUSAL_OUTCOMES.get(status_code)
    principal: Principal | None = getattr(request.state, "principal", None)
    if outcome is None or principal is None or getattr(request.state, "access_logged", False):
        return
    params = request.path_params
    _record_refusal(
        request,
        get_services(request),
        outcome=outcome,
        action=request.method.lower(),
        principal=principal,
        patient_id=params.get("patient_id"),
        resource_id=",".join(str(value) for value in params.values()),
        reason=reason,
    )


Public = requires(Permission.PUBLIC)


async def get_patient(
    principal: Annotated[Principal, requires(Permission.OWN_RECORDS)],
) -> Principal:
    if principal.patient_id is None:
        raise ApiError(403, "forbidden", "this endpoint is for patients")
    return principal


PatientDep = Annotated[Principal, Depends(get_patient)]
SignedInDep = Annotated[Principal, requires(Permission.SIGNED_IN)]


async def get_actor(request: Request, principal: PrincipalDep) -> Actor:
    return Actor(
        id=str(principal.account_id),
        role=principal.role,
        request_id=request_id(request),
        source="api",
    )


ActorDep = Annotated[Actor, Depends(get_actor)]


async def anonymous_actor(request: Request) -> Actor:
    return Actor(id="anonymous", role="anonymous", request_id=request_id(request), source="api")


AnonymousActorDep = Annotated[Actor, Depends(anonymous_actor)]


@dataclass
class Consistency:
    """Read-your-writes for one request (see api.consistency)."""

    request: Request
    response: Response
    services: Services
    principal: Principal

    @property
    def _last_writes(self) -> LastWrites:
        last: LastWrites = self.request.app.state.last_writes
        return last

    def wrote(self, position: Position | None) -> None:
        if position is None:
            return
        self._last_writes.note(str(self.principal.account_id), position)
        self.response.headers[HEADER] = str(position)

    def before_read(self) -> None:
        token = parse_token(self.request.headers.get(HEADER))
        if token is not None:
            check_token(token, self.services.sync)  # before any wait: 400 at once
        positions = [token, self._last_writes.last(str(self.principal.account_id))]
        if getattr(self.request.app.state, "several_workers", False):
            # This client's last write may have gone through another worker process:
            # wait until the read models hold everything scheduled so far.
            head = self.services.scheduling.recorder.max_notification_id()
            if head:
                positions.append(Position(self.services.scheduling.name, head))
        # One wait per log, for the furthest position: a client usually sends the token
        # of the very write noted in last_writes, and the head covers both.
        furthest: dict[str, Position] = {}
        for position in positions:
            if position is not None:
                held = furthest.get(position.application)
                if held is None or position.notification_id > held.notification_id:
                    furthest[position.application] = position
        for position in furthest.values():
            self.services.sync.wait(position)


async def get_consistency(
    request: Request, response: Response, services: ServicesDep, principal: PrincipalDep
) -> Consistency:
    return Consistency(request, response, services, principal)


ConsistencyDep = Annotated[Consistency, Depends(get_consistency)]


@dataclass
class Audit:
    """Records reads of patient data in the PHI access log."""

    request: Request
    services: Services
    principal: Principal

    def read(
        self,
        resource: str,
        resource_id: str,
        patient_id: object,
        *,
        outcome: str = "allowed",
        reason: str = "",
        action: str = "read",
    ) -> None:
        record_access(
            self.request,
            self.services,
            actor_id=str(self.principal.account_id),
            role=self.principal.role,
            patient_id=patient_id,
            resource=resource,
            resource_id=resource_id,
            action=action,
            outcome=outcome,
            reason=reason,
        )


async def get_audit(request: Request, services: ServicesDep, principal: PrincipalDep) -> Audit:
    return Audit(request, services, principal)


AuditDep = Annotated[Audit, Depends(get_audit)]


@dataclass
class SecurityAudit:
    """Records sign-in, sign-out, failures and lockouts in the access log (ATNA-style
    security events), including for callers that are not signed in."""

    request: Request
    services: Services

    def event(
        self,
        action: str,
        outcome: str,
        *,
        actor_id: str = "anonymous",
        role: str = "anonymous",
        patient_id: object = None,
        resource_id: str = "",
    ) -> None:
        record_access(
            self.request,
            self.services,
            actor_id=actor_id,
            role=role,
            patient_id=patient_id,
            resource="session",
            resource_id=resource_id,
            action=action,
            outcome=outcome,
        )

    def signed_in(self, access_token: str, action: str = "sign_in") -> None:
        principal = self.services.auth.principal(access_token)
        self.event(
            action,
            "success",
            actor_id=str(principal.account_id),
            role=principal.role,
            patient_id=principal.patient_id,
        )


async def get_security_audit(request: Request, services: ServicesDep) -> SecurityAudit:
    return SecurityAudit(request, services)


SecurityAuditDep = Annotated[SecurityAudit, Depends(get_security_audit)]
