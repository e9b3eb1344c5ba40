"""Scans to book (the RIS's orders) and results: what each is in plain words, a way into
the booking journey for an order, and "Open result", which answers with a redirect to the
centre's own viewer through a short-lived signed link. Each list read, each order read
and each opening is in the access log, as the API writes them; another patient's id is a
404 page."""

from urllib.parse import urlsplit

from fastapi import APIRouter
from fastapi.responses import RedirectResponse, Response

from api.web.catalog_words import CatalogWords
from api.web.i18n import N_
from api.web.pages.journey import parse_uuid
from api.web.render import render
from api.web.visit import PageRefused, PatientForm, PatientPage, Visit
from application.errors import NotFoundError, NoViewerError
from application.ris.patient_records import OrderView

router = APIRouter()

ORDER_STATUS = {
    "waiting": N_("To book"),
    "scheduled": N_("Booked"),
    "completed": N_("Done"),
    "cancelled": N_("Cancelled"),
}
RESULT_STATUS = {
    "preliminary": N_("Preliminary result"),
    "final": N_("Final result"),
    "corrected": N_("Corrected result"),
}
ORDER_NOT_FOUND = PageRefused(
    404,
    N_("Page not found"),
    N_("We could not find that scan. It may have been removed, or the address is wrong."),
)
RESULT_NOT_FOUND = PageRefused(
    404,
    N_("Page not found"),
    N_("We could not find that result. It may have been removed, or the address is wrong."),
)


def own_order(visit: Visit, raw_id: str) -> OrderView:
    """One of the patient's orders (logged as a read), or the 404 page (logged as a
    refusal): the orders of their whole record, merged ones too."""
    order_id = parse_uuid(raw_id)
    patient_id = visit.patient
    found = next((o for o in visit.services.records.orders(patient_id) if o.id == order_id), None)
    if found is None:
        visit.record("order", str(order_id or ""), None, outcome="denied_or_missing")
        raise ORDER_NOT_FOUND
    visit.record("order", str(found.id), patient_id)
    return found


def viewer_origin(template: str) -> str | None:
    """The origin of the viewer's URL template (None without a usable one)."""
    parts = urlsplit(template)
    if parts.scheme not in {"http", "https"} or not parts.netloc or "{" in parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


@router.get("/orders")
def orders(visit: PatientPage, done: str = "") -> Response:
    patient_id = visit.patient
    found = visit.services.records.orders(patient_id)
    visit.record("order", "*", patient_id)
    listed = [
        {"order": order, "status": ORDER_STATUS.get(order.status, order.status)} for order in found
    ]
    return render(visit, "orders.html", orders=listed, done=done[:20])


@router.get("/results")
def results(visit: PatientPage) -> Response:
    patient_id = visit.patient
    records = visit.services.records
    found = records.results(patient_id)
    visit.record("result", "*", patient_id)
    origin = viewer_origin(records.viewer.url_template)
    if origin:
        visit.allow_form_target(origin)
    listed = [
        {
            "result": result,
            "status": RESULT_STATUS.get(result.status, result.status),
            "day": visit.dates.day(result.observed_at.date()) if result.observed_at else "",
        }
        for result in found
    ]
    minutes = max(1, int(records.viewer.lifetime.total_seconds() // 60))
    return render(visit, "results.html", results=listed, minutes=minutes)


@router.post("/results/{result_id}/open")
def open_result(result_id: str, visit: PatientPage, form: PatientForm) -> Response:
    """A 303 to the viewer with a fresh link; without a viewer, a page that says whom to
    call (never a broken link)."""
    patient_id = visit.patient
    wanted = parse_uuid(result_id)
    try:
        if wanted is None:
            raise NotFoundError("no such result")
        issued = visit.services.records.link(patient_id, wanted)
    except NotFoundError:
        visit.record(
            "result", result_id[:64], None, action="open_link", outcome="denied_or_missing"
        )
        raise RESULT_NOT_FOUND from None
    except NoViewerError:
        visit.record("result", str(wanted), patient_id, action="open_link", outcome="no_viewer")
        places = sorted(CatalogWords(visit.services).places().values(), key=lambda p: p.name)
        return render(visit, "result_offline.html", status=409, places=places)
    visit.record(
        "result", str(wanted), patient_id, action="open_link", reason=f"token {issued.token_id}"
    )
    return visit.finish(RedirectResponse(issued.url, status_code=303))
