"""Profile and security: names, birth date and phone; two-factor sign-in with a QR code
and recovery codes shown once; sign out everywhere (in signing_in)."""

import qrcode
import qrcode.image.svg
from fastapi import APIRouter
from fastapi.responses import RedirectResponse, Response

from api.web.forms import (
    Problems,
    client_address,
    person_fields,
    phone_field,
    too_many,
    within_budget,
)
from api.web.i18n import N_
from api.web.pages.signing_in import SECOND_FACTOR_BUDGET
from api.web.render import render
from api.web.visit import PatientForm, PatientPage, SignedInForm, SignedInPage, Visit
from application.errors import InvalidCredentialsError, TooManyAttemptsError
from domain.account import SecondFactorError
from domain.errors import InvalidValueError

router = APIRouter()
PROFILE_FIELDS = ("given_name", "family_name", "birth_day", "birth_month", "birth_year", "phone")


@router.get("/profile")
def profile_page(visit: PatientPage, done: str = "") -> Response:
    patient = visit.services.registry.patient(visit.patient)
    visit.record("patient", str(patient.id), patient.id)
    values = {
        "given_name": patient.given_name,
        "family_name": patient.family_name,
        "birth_day": str(patient.birth_date.day),
        "birth_month": str(patient.birth_date.month),
        "birth_year": str(patient.birth_date.year),
        "phone": patient.phone or "",
    }
    return render(
        visit,
        "profile.html",
        values=values,
        email=visit.services.registry.account(visit.signed_in.account_id).email,
        problems=Problems(),
        done=done[:20],
    )


@router.post("/profile")
def change_profile(visit: PatientPage, form: PatientForm) -> Response:
    services = visit.services
    problems = Problems()
    values = {name: form.get(name, "").strip() for name in PROFILE_FIELDS}
    person = person_fields(form, problems, services.clock.now().date())
    phone = phone_field(form, problems)
    if not problems:
        try:
            services.registry.change_profile(
                visit.patient,
                {**vars(person), "phone": phone},
                visit.actor(),
            )
        except InvalidValueError:
            problems.add("birth_day", N_("The date must be between 1900 and today"))
        else:
            return visit.finish(RedirectResponse("/profile?done=saved", status_code=303))
    account = services.registry.account(visit.signed_in.account_id)
    return render(
        visit,
        "profile.html",
        status=422,
        values=values,
        email=account.email,
        problems=problems,
        done="",
    )


@router.get("/security")
def security(visit: SignedInPage) -> Response:
    account = visit.services.registry.account(visit.signed_in.account_id)
    return render(visit, "security.html", two_factor=account.totp_enabled)


def _enrolment_page(visit: Visit, problems: Problems | None = None, status: int = 200) -> Response:
    principal = visit.signed_in
    services = visit.services
    account = services.registry.account(principal.account_id)
    if account.totp_enabled:
        return render(visit, "two_factor_on.html")
    enrolment = services.auth.pending_enrolment(account.id) or services.auth.start_totp_enrolment(
        principal, visit.actor()
    )
    return render(
        visit,
        "two_factor.html",
        status=status,
        secret=enrolment.secret,
        problems=problems or Problems(),
    )


@router.get("/security/two-factor")
def two_factor_page(visit: SignedInPage) -> Response:
    return _enrolment_page(visit)


@router.get("/security/two-factor/qr.svg")
def two_factor_qr(visit: SignedInPage) -> Response:
    """The QR code of the enrolment in progress (none once it is confirmed)."""
    enrolment = visit.services.auth.pending_enrolment(visit.signed_in.account_id)
    if enrolment is None:
        return Response(status_code=404)
    image = qrcode.make(
        enrolment.provisioning_uri, image_factory=qrcode.image.svg.SvgPathImage, border=2
    )
    return Response(image.to_string(encoding="unicode"), media_type="image/svg+xml")


@router.post("/security/two-factor")
def confirm_two_factor(visit: SignedInPage, form: SignedInForm) -> Response:
    """Turn two-factor sign-in on with a first code. Every session signed in with the
    password alone ends, this one too: the browser gets the new two-factor session."""
    principal = visit.signed_in
    code = "".join(form.get("code", "").split())
    problems = Problems()
    if not code:
        problems.add("code", N_("Enter the 6-digit code from your authenticator app"))
        return _enrolment_page(visit, problems, 422)
    within_budget(visit, *SECOND_FACTOR_BUDGET, key=client_address(visit))
    try:
        codes, pair = visit.services.auth.confirm_totp(principal, code, visit.actor())
    except InvalidCredentialsError:
        problems.add("code", N_("That code is not right. Check it and try again"))
        return _enrolment_page(visit, problems, 422)
    except SecondFactorError:
        return visit.finish(RedirectResponse("/security/two-factor", status_code=303))
    except TooManyAttemptsError as locked:
        raise too_many(locked.retry_after) from None
    visit.sign_in_as(visit.services.browser.open(pair))
    return render(visit, "two_factor_done.html", codes=codes)
