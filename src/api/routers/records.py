"""The patient's own orders and results from the RIS, and links to open a result in the
centre's viewer. Every read, and every link issued, is in the PHI access log."""

from uuid import UUID

from fastapi import APIRouter, Request

from api.deps import AuditDep, ConsistencyDep, PatientDep, ServicesDep, record_access
from api.schemas.records import OrderOut, OrdersOut, ResultLinkOut, ResultOut, ResultsOut
from application.errors import NoViewerError

router = APIRouter(prefix="/v1/me", tags=["orders and results"])


@router.get("/orders", response_model=OrdersOut, summary="My orders from the RIS")
def orders(
    patient: PatientDep, services: ServicesDep, consistency: ConsistencyDep, audit: AuditDep
) -> OrdersOut:
    assert patient.patient_id is not None  # PatientDep refuses callers without one
    consistency.before_read()
    found = services.records.orders(patient.patient_id)
    audit.read("order", "*", patient.patient_id)
    return OrdersOut(items=[OrderOut.model_validate(view) for view in found])


@router.get("/results", response_model=ResultsOut, summary="My results (references only)")
def results(
    patient: PatientDep, services: ServicesDep, consistency: ConsistencyDep, audit: AuditDep
) -> ResultsOut:
    assert patient.patient_id is not None
    consistency.before_read()
    found = services.records.results(patient.patient_id)
    audit.read("result", "*", patient.patient_id)
    return ResultsOut(items=[ResultOut.model_validate(view) for view in found])


@router.post(
    "/results/{result_id}/link",
    response_model=ResultLinkOut,
    summary="A short-lived link to open one of my results in the centre's viewer",
    description="The URL carries a signed token (EdDSA JWT: `sub` the patient, `aud` the"
    " viewer, `accession`, `exp` at most 5 minutes ahead, `jti`, `kid` in the header) that"
    " the viewer verifies against `/.well-known/jwks.json`. 409 `no_viewer` when no viewer"
    " is configured; 404 for anyone else's result.",
)
def link(
    result_id: UUID, request: Request, patient: PatientDep, services: ServicesDep
) -> ResultLinkOut:
    assert patient.patient_id is not None

    def logged(outcome: str, reason: str = "") -> None:
        record_access(
            request,
            services,
            actor_id=str(patient.account_id),
            role=patient.role,
            patient_id=patient.patient_id,
            resource="result",
            resource_id=str(result_id),
            action="open_link",
            outcome=outcome,
            reason=reason,
        )

    try:
        issued = services.records.link(patient.patient_id, result_id)
    except NoViewerError:
        logged("no_viewer")
        raise
    logged("allowed", f"token {issued.token_id}")
    return ResultLinkOut(url=issued.url, expires_at=issued.expires_at)
