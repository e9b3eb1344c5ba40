"""Linking a signed-in patient's account to the imaging centre's record of them, with the
activation code from the centre's letter or e-mail and their birth date: the same service
as ``POST /v1/me/activation``. Linking ends every session of the account (their tokens
named the record merged away), so the browser is signed in again with the new session.

``/activate?token=`` is the link in the centre's invitation: it fills the code in, and
sends a visitor who is not signed in to create an account with it (from where they can
sign in to link an account they already have)."""

from urllib.parse import urlencode

from fastapi import APIRouter
from fastapi.responses import RedirectResponse, Response

from api.web.forms import Problems, date_field, too_many
from api.web.i18n import N_
from api.web.pages.signing_in import ACTIVATION_FAILED
from api.web.render import render
from api.web.visit import PatientForm, PatientPage, PublicPage
from application.errors import TooManyAttemptsError
from domain.activation_code import ActivationRefusedError

router = APIRouter()
FIELDS = ("activation_code", "birth_day", "birth_month", "birth_year")
LINKED_REASON = "linked to the centre's record in the portal"


@router.get("/activate")
def activate_page(visit: PublicPage, token: str = "") -> Response:
    code = token.strip()[:32]
    if visit.principal is None:
        target = "/register" + (f"?{urlencode({'activation_code': code})}" if code else "")
        return visit.finish(RedirectResponse(target, status_code=303))
    visit.patient  # noqa: B018 - staff get the "this page is for patients" page
    values = {**dict.fromkeys(FIELDS, ""), "activation_code": code}
    return render(visit, "activate.html", problems=Problems(), values=values)


@router.post("/activate")
def activate(visit: PatientPage, form: PatientForm) -> Response:
    services = visit.services
    principal = visit.signed_in
    problems = Problems()
    values = {name: form.get(name, "").strip() for name in FIELDS}
    code = values["activation_code"][:32]
    if not code:
        problems.add("activation_code", N_("Enter the activation code from the centre's letter"))
    birth_date = date_field(
        form, "birth", problems, services.clock.now().date(), N_("Enter your date of birth")
    )
    if not problems and birth_date is not None:
        try:
            linked = services.activation.link(
                account_id=principal.account_id,
                code=code,
                birth_date=birth_date,
                actor=visit.actor(),
            )
        except ActivationRefusedError:
            visit.record(
                "patient", "", principal.patient_id, action="link_account", outcome="failure"
            )
            problems.add("activation_code", ACTIVATION_FAILED)
        except TooManyAttemptsError as locked:
            visit.record(
                "patient", "", principal.patient_id, action="link_account", outcome="locked_out"
            )
            raise too_many(locked.retry_after) from None
        else:
            if linked.position is not None:
                services.sync.wait(linked.position)
            pair = services.auth.renew_sessions(principal, LINKED_REASON)
            visit.sign_in_as(services.browser.open(pair))
            visit.record(
                "patient", str(linked.patient_id), linked.patient_id, action="link_account"
            )
            return visit.finish(RedirectResponse("/orders?done=linked", status_code=303))
    return render(visit, "activate.html", status=422, problems=problems, values=values)
