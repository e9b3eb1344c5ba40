"""Start page, sign in (with a second factor), create account, sign out, and the
password reset pages. Budgets and audit entries are the API's own (same buckets)."""

import asyncio
import re
import time
from typing import Annotated
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from api.web.forms import (
    Person,
    Problems,
    client_address,
    date_field,
    person_fields,
    phone_field,
    safe_next,
    text_field,
    too_many,
    within_budget,
)
from api.web.i18n import N_
from api.web.render import render
from api.web.visit import (
    CHALLENGE_COOKIE,
    PublicForm,
    PublicPage,
    SignedInForm,
    SignedInPage,
    Visit,
)
from application.auth import RESET_FLOOR_SECONDS, TokenPair
from application.errors import (
    InvalidCredentialsError,
    InvalidTokenError,
    SecondFactorRequiredError,
    TooManyAttemptsError,
    WeakPasswordError,
)
from domain.account import EmailTakenError
from domain.activation_code import ActivationRefusedError
from domain.errors import InvalidValueError

router = APIRouter()

# The API's budgets per client address (api.routers.auth, api.routers.patients).
SIGN_IN_BUDGET = ("sign-in", 30, 60)
SECOND_FACTOR_BUDGET = ("second-factor", 30, 60)
REGISTER_BUDGET = ("register", 30, 60)
RESET_BUDGET = ("password-reset", 5, 300)
CHALLENGE_SECONDS = 300
SIX_DIGITS = re.compile(r"^[0-9]{6}$")


def _budget(visit: Visit, budget: tuple[str, int, int]) -> None:
    within_budget(visit, *budget, key=client_address(visit))


def _start_session(visit: Visit, pair: TokenPair, action: str) -> None:
    visit.sign_in_as(visit.services.browser.open(pair))
    visit.record("session", "", visit.patient_id, action=action, outcome="success")


def _audit_refusal(visit: Visit, action: str, outcome: str) -> None:
    visit.record("session", "", None, action=action, outcome=outcome)


@router.get("/")
def start(visit: PublicPage, done: str = "") -> Response:
    if visit.principal is not None:
        return visit.finish(RedirectResponse("/appointments", status_code=303))
    return render(visit, "start.html", done=done)


# Signing in ---------------------------------------------------------------------------


@router.get("/sign-in")
def sign_in_page(visit: PublicPage, next: str = "", done: str = "") -> Response:
    if visit.principal is not None:
        return visit.finish(RedirectResponse(safe_next(next), status_code=303))
    return render(
        visit, "sign_in.html", problems=Problems(), email="", next=safe_next(next), done=done
    )


@router.post("/sign-in")
def sign_in(visit: PublicPage, form: PublicForm) -> Response:
    email, password = form.get("email", "").strip(), form.get("password", "")
    target = safe_next(form.get("next", ""))
    problems = Problems()
    if not email:
        problems.add("email", N_("Enter your e-mail address"))
    if not password:
        problems.add("password", N_("Enter your password"))
    if not problems:
        _budget(visit, SIGN_IN_BUDGET)
        try:
            pair = visit.services.auth.sign_in(email, password, visit.actor())
        except SecondFactorRequiredError as needed:
            _audit_refusal(visit, "sign_in", "second_factor_required")
            visit.cookies_to_set[CHALLENGE_COOKIE] = (needed.challenge, CHALLENGE_SECONDS)
            return visit.finish(
                RedirectResponse(
                    f"/sign-in/second-factor?next={quote(target, safe='')}", status_code=303
                )
            )
        except InvalidCredentialsError:
            _audit_refusal(visit, "sign_in", "failure")
            problems.add("email", N_("The e-mail address or password is not right"))
        except TooManyAttemptsError as locked:
            _audit_refusal(visit, "sign_in", "locked_out")
            raise too_many(locked.retry_after) from None
        else:
            _start_session(visit, pair, "sign_in")
            return visit.finish(RedirectResponse(target, status_code=303))
    return render(
        visit, "sign_in.html", status=422, problems=problems, email=email, next=target, done=""
    )


@router.get("/sign-in/second-factor")
def second_factor_page(visit: PublicPage, next: str = "") -> Response:
    if not visit.request.cookies.get(CHALLENGE_COOKIE):
        return visit.finish(RedirectResponse("/sign-in", status_code=303))
    return render(visit, "second_factor.html", problems=Problems(), next=safe_next(next))


@router.post("/sign-in/second-factor")
def second_factor(visit: PublicPage, form: PublicForm) -> Response:
    challenge = visit.request.cookies.get(CHALLENGE_COOKIE, "")
    target = safe_next(form.get("next", ""))
    if not challenge:
        return visit.finish(RedirectResponse("/sign-in?done=expired", status_code=303))
    code = "".join(form.get("code", "").split())
    problems = Problems()
    if not code:
        problems.add("code", N_("Enter the code from your authenticator app"))
    else:
        _budget(visit, SECOND_FACTOR_BUDGET)
        is_totp = bool(SIX_DIGITS.match(code))
        try:
            pair = visit.services.auth.sign_in_second_factor(
                challenge,
                code=code if is_totp else None,
                recovery_code=None if is_totp else code,
                actor=visit.actor(),
            )
        except InvalidTokenError:
            _audit_refusal(visit, "sign_in_second_factor", "failure")
            visit.cookies_to_clear.add(CHALLENGE_COOKIE)
            return visit.finish(RedirectResponse("/sign-in?done=expired", status_code=303))
        except InvalidCredentialsError:
            _audit_refusal(visit, "sign_in_second_factor", "failure")
            problems.add("code", N_("That code is not right. Check it and try again"))
        except TooManyAttemptsError as locked:
            _audit_refusal(visit, "sign_in_second_factor", "locked_out")
            raise too_many(locked.retry_after) from None
        else:
            visit.cookies_to_clear.add(CHALLENGE_COOKIE)
            _start_session(visit, pair, "sign_in_second_factor")
            return visit.finish(RedirectResponse(target, status_code=303))
    return render(visit, "second_factor.html", status=422, problems=problems, next=target)


# Creating an account ------------------------------------------------------------------

REGISTER_FIELDS = (
    "activation_code",
    "given_name",
    "family_name",
    "birth_day",
    "birth_month",
    "birth_year",
    "email",
    "phone",
)


ACTIVATION_FAILED = N_(
    "We could not match that code and date of birth. Check both, or ask the centre for a new code."
)


@router.get("/register")
def register_page(visit: PublicPage, activation_code: str = "") -> Response:
    """``?activation_code=`` (the centre's letter or e-mail) fills the code in; a
    signed-in patient with a code is sent to link their account instead."""
    code = activation_code.strip()[:32]
    if visit.principal is not None:
        target = f"/activate?{urlencode({'token': code})}" if code else "/appointments"
        return visit.finish(RedirectResponse(target, status_code=303))
    values = {**dict.fromkeys(REGISTER_FIELDS, ""), "activation_code": code}
    return render(visit, "register.html", problems=Problems(), values=values)


def _person(form: dict[str, str], problems: Problems, visit: Visit, code: str) -> Person:
    """Names and birth date; with an activation code the names come from the centre's
    record, and only the birth date (which must match it) is asked for."""
    today = visit.services.clock.now().date()
    if not code:
        return person_fields(form, problems, today)
    birth_date = date_field(form, "birth", problems, today, N_("Enter your date of birth"))
    return Person("", "", birth_date)


@router.post("/register")
def register(visit: PublicPage, form: PublicForm) -> Response:
    services = visit.services
    problems = Problems()
    values = {name: form.get(name, "").strip() for name in REGISTER_FIELDS}
    code = values["activation_code"][:32]
    person = _person(form, problems, visit, code)
    email = text_field(form, "email", problems, N_("Enter your e-mail address"), 254)
    if email and "@" not in email:
        problems.add("email", N_("Enter an e-mail address like name@example.com"))
    password = form.get("password", "")
    if not password:
        problems.add("password", N_("Enter a password"))
    phone = phone_field(form, problems)
    if not problems and person.birth_date is not None:
        _budget(visit, REGISTER_BUDGET)
        try:
            if code:
                services.activation.register(
                    code=code,
                    birth_date=person.birth_date,
                    email=email,
                    password=password,
                    throttle_key=client_address(visit),
                    actor=visit.actor(),
                )
            else:
                services.registry.register_patient(
                    email=email,
                    password=password,
                    given_name=person.given_name,
                    family_name=person.family_name,
                    birth_date=person.birth_date,
                    phone=phone,
                    actor=visit.actor(),
                )
            pair = services.auth.sign_in(email, password, visit.actor())
        except ActivationRefusedError:
            _audit_refusal(visit, "register_activation", "failure")
            problems.add("activation_code", ACTIVATION_FAILED)
        except TooManyAttemptsError as locked:
            _audit_refusal(visit, "register_activation", "locked_out")
            raise too_many(locked.retry_after) from None
        except EmailTakenError:
            problems.add(
                "email",
                N_("An account with this e-mail address already exists. Sign in instead"),
            )
        except WeakPasswordError as weak:
            problems.add("password", _password_words(weak.detail))
        except InvalidValueError:
            problems.add("email", N_("Check your details: something could not be accepted"))
        else:
            _start_session(visit, pair, "sign_in")
            # With a code the account holds the centre's orders: show those first.
            target = "/orders?done=welcome" if code else "/appointments?done=welcome"
            return visit.finish(RedirectResponse(target, status_code=303))
    return render(visit, "register.html", status=422, problems=problems, values=values)


def _password_words(detail: str) -> str:
    if "common" in detail:
        return N_("That password is too common. Choose one that is harder to guess")
    if "at most" in detail:
        return N_("Use a password of 128 characters or fewer")
    if "e-mail" in detail:
        return N_("Your password must not be your e-mail address")
    return N_("Use a password of at least 8 characters")


# Signing out ------------------------------------------------------------------------


@router.post("/sign-out")
def sign_out(visit: SignedInPage, form: SignedInForm) -> Response:
    principal = visit.principal
    if principal is not None:
        visit.services.auth.sign_out(principal)
        visit.record("session", "", principal.patient_id, action="sign_out", outcome="success")
    visit.signed_out()
    return visit.finish(RedirectResponse("/?done=signed-out", status_code=303))


@router.post("/security/sign-out-everywhere")
def sign_out_everywhere(visit: SignedInPage, form: SignedInForm) -> Response:
    principal = visit.principal
    if principal is not None:
        visit.services.auth.sign_out_everywhere(principal.account_id)
        visit.record(
            "session", "", principal.patient_id, action="sign_out_everywhere", outcome="success"
        )
    visit.signed_out()
    return visit.finish(RedirectResponse("/sign-in?done=everywhere", status_code=303))


# Password reset -----------------------------------------------------------------------


@router.get("/forgot-password")
def forgot_page(visit: PublicPage) -> Response:
    return render(visit, "forgot_password.html", problems=Problems(), email="")


@router.post("/forgot-password")
async def forgot(visit: PublicPage, form: PublicForm) -> Response:
    """Answered no sooner than the API answers (RESET_FLOOR_SECONDS), with the same
    page whether or not the address has an account."""
    started = time.monotonic()
    email = form.get("email", "").strip()
    problems = Problems()
    if not email or "@" not in email or len(email) > 254:
        problems.add("email", N_("Enter an e-mail address like name@example.com"))
        return render(visit, "forgot_password.html", status=422, problems=problems, email=email)
    await run_in_threadpool(_budget, visit, RESET_BUDGET)
    await run_in_threadpool(visit.services.auth.request_password_reset, email, visit.actor())
    await asyncio.sleep(max(0.0, RESET_FLOOR_SECONDS - (time.monotonic() - started)))
    return render(visit, "forgot_sent.html", email=email)


@router.get("/reset-password")
def reset_page(visit: PublicPage, token: Annotated[str, Query(max_length=4096)] = "") -> Response:
    return render(visit, "reset_password.html", problems=Problems(), token=token, failed=False)


@router.post("/reset-password")
def reset(visit: PublicPage, form: PublicForm) -> Response:
    token, password = form.get("token", ""), form.get("password", "")
    problems = Problems()
    if not password:
        problems.add("password", N_("Enter a new password"))
    if not token:
        return render(
            visit, "reset_password.html", status=400, problems=problems, token="", failed=True
        )
    if not problems:
        _budget(visit, RESET_BUDGET)
        try:
            visit.services.auth.reset_password(token, password, visit.actor())
        except InvalidTokenError:
            return render(
                visit, "reset_password.html", status=400, problems=problems, token="", failed=True
            )
        except WeakPasswordError as weak:
            problems.add("password", _password_words(weak.detail))
        else:
            visit.signed_out()
            return visit.finish(RedirectResponse("/sign-in?done=password", status_code=303))
    return render(
        visit, "reset_password.html", status=422, problems=problems, token=token, failed=False
    )
