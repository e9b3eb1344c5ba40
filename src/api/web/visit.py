"""One request to the portal: who is signed in (the session cookie), the language, the
form token, and the page dependencies that check permissions and form tokens.

Cookies are HttpOnly and SameSite=Strict, and Secure whenever the request came over
HTTPS (the scheme uvicorn put in the scope: the connection's, or a proxy's named in
``TRUSTED_PROXIES``)."""

import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Annotated, Any, TypeVar
from urllib.parse import urlencode
from uuid import UUID

from fastapi import Depends, Request
from starlette.responses import Response

from api.deps import record_access, request_id
from api.web.i18n import LANGUAGES, N_, Dates, accepted_language
from application.errors import InvalidTokenError
from application.permissions import Permission, allows
from application.ports import Principal
from application.services import Services
from domain.context import Actor

R = TypeVar("R", bound=Response)
SESSION_COOKIE = "ib_session"
FORM_COOKIE = "ib_form"  # binds the form tokens of pages shown before signing in
CHALLENGE_COOKIE = "ib_challenge"  # the sign-in's second-factor challenge (5 minutes)
LANGUAGE_COOKIE = "lang"
LANGUAGE_COOKIE_AGE = timedelta(days=365)
FORM_TARGETS = "form_targets"  # request state: origins this page's forms may redirect to
PAGE_SCRIPTS = "page_scripts"  # request state: this page runs our own scripts


STAFF_ELSEWHERE = N_(
    "Staff accounts use the centre's own systems. Sign out, then sign in with a patient account."
)


class SignInRequired(Exception):
    """The page needs a signed-in patient: answered with a redirect to sign in."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class PageRefused(Exception):
    """An error page (403, 404, 429...) with a title and what to do next."""

    def __init__(
        self, status: int, title: str, message: str, variables: dict[str, Any] | None = None
    ) -> None:
        super().__init__(title)
        self.status = status
        self.title = title
        self.message = message
        self.variables = variables or {}


@dataclass
class Visit:
    """What a page needs to know about the request it answers."""

    request: Request
    services: Services
    language: str
    principal: Principal | None = None
    session_cookie: str = ""
    form_cookie: str = ""
    cookies_to_set: dict[str, tuple[str, int | None]] = field(default_factory=dict)
    cookies_to_clear: set[str] = field(default_factory=set)

    @property
    def https(self) -> bool:
        return self.request.url.scheme == "https"

    @property
    def dates(self) -> Dates:
        return Dates(self.language)

    @property
    def patient_id(self) -> UUID | None:
        """The signed-in patient's id, if any (for access-log entries)."""
        return self.principal.patient_id if self.principal else None

    @property
    def signed_in(self) -> Principal:
        """Who is signed in, on a page behind ``requires_page``."""
        if self.principal is None:
            raise SignInRequired(sign_in_path(self.request))
        return self.principal

    @property
    def patient(self) -> UUID:
        """The signed-in patient's id, on a page behind ``requires_page(OWN_RECORDS)``."""
        patient_id = self.signed_in.patient_id
        if patient_id is None:
            raise PageRefused(403, N_("This page is for patients"), STAFF_ELSEWHERE)
        return patient_id

    def actor(self) -> Actor:
        """Who writes: the signed-in account, or an anonymous visitor."""
        if self.principal is None:
            return Actor(
                id="anonymous", role="anonymous", request_id=request_id(self.request), source="web"
            )
        return Actor(
            id=str(self.principal.account_id),
            role=self.principal.role,
            request_id=request_id(self.request),
            source="web",
        )

    def form_token(self) -> str:
        """The token every form of this page carries: bound to the session cookie, or
        before signing in to an anonymous cookie (made here if the browser has none)."""
        if self.session_cookie and self.principal is not None:
            return self.services.browser.form_token(self.session_cookie)
        if not self.form_cookie:
            self.form_cookie = secrets.token_urlsafe(32)
            self.cookies_to_set[FORM_COOKIE] = (self.form_cookie, None)
        return self.services.browser.form_token(self.form_cookie)

    def form_token_valid(self, token: str) -> bool:
        if self.principal is not None:
            return self.services.browser.form_token_valid(token, self.session_cookie)
        return self.services.browser.form_token_valid(token, self.form_cookie)

    def sign_in_as(self, cookie: str) -> None:
        """The browser's new session (after signing in, or after turning on two factors,
        which ends the sessions before)."""
        self.session_cookie = cookie
        self.principal = self.services.browser.principal(cookie)
        self.cookies_to_set[SESSION_COOKIE] = (cookie, None)
        self.cookies_to_clear.discard(SESSION_COOKIE)

    def signed_out(self) -> None:
        self.principal = None
        self.session_cookie = ""
        self.cookies_to_clear.add(SESSION_COOKIE)
        self.cookies_to_set.pop(SESSION_COOKIE, None)

    def record(
        self,
        resource: str,
        resource_id: str,
        patient_id: object,
        *,
        action: str = "read",
        outcome: str = "allowed",
        reason: str = "",
    ) -> None:
        """One access-log entry for this page (the same log the API writes)."""
        principal = self.principal
        record_access(
            self.request,
            self.services,
            actor_id=str(principal.account_id) if principal else "anonymous",
            role=principal.role if principal else "anonymous",
            patient_id=patient_id,
            resource=resource,
            resource_id=resource_id,
            action=action,
            outcome=outcome,
            reason=reason,
        )

    def allow_form_target(self, origin: str) -> None:
        """Let this page's forms end up at ``origin`` (added to the CSP's form-action)."""
        state = self.request.scope.setdefault("state", {})
        state[FORM_TARGETS] = (*state.get(FORM_TARGETS, ()), origin)

    def allow_scripts(self) -> None:
        """Let this page run scripts from this server (and register a service worker):
        the CSP of every other page allows none."""
        self.request.scope.setdefault("state", {})[PAGE_SCRIPTS] = True

    def finish(self, response: R) -> R:
        """Set and clear the cookies this visit decided on."""
        for name, (value, max_age) in self.cookies_to_set.items():
            set_cookie(response, name, value, https=self.https, max_age=max_age)
        for name in self.cookies_to_clear:
            response.delete_cookie(
                name, path="/", secure=self.https, httponly=True, samesite="strict"
            )
        return response


def set_cookie(
    response: Response, name: str, value: str, *, https: bool, max_age: int | None = None
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        secure=https,
        httponly=True,
        samesite="strict",
    )


def language_of(request: Request) -> str:
    chosen = request.cookies.get(LANGUAGE_COOKIE, "")
    if chosen in LANGUAGES:
        return chosen
    return accepted_language(request.headers.get("accept-language", ""))


def get_visit(request: Request) -> Visit:
    """The visit of this request; a session cookie whose session has ended is cleared."""
    services: Services = request.app.state.services
    visit = Visit(
        request,
        services,
        language_of(request),
        form_cookie=request.cookies.get(FORM_COOKIE, "")[:100],
    )
    cookie = request.cookies.get(SESSION_COOKIE, "")[:100]
    if cookie:
        try:
            visit.principal = services.browser.principal(cookie)
            visit.session_cookie = cookie
        except InvalidTokenError:
            visit.cookies_to_clear.add(SESSION_COOKIE)
    request.state.visit = visit
    return visit


VisitDep = Annotated[Visit, Depends(get_visit)]


def sign_in_path(request: Request) -> str:
    target = request.url.path
    if request.url.query:
        target += f"?{request.url.query}"
    return "/sign-in?" + urlencode({"next": target})


def requires_page(permission: Permission) -> Any:
    """A page (or form) that needs ``permission``: without a session, a redirect to sign
    in; with a role that lacks it, a 403 page (and an access-log entry, as the API
    writes). ``OWN_RECORDS`` pages are for patients: staff get the 403 page too."""

    if permission is Permission.PUBLIC:

        def public(visit: VisitDep) -> Visit:
            return visit

        public.permission = permission  # type: ignore[attr-defined]
        return Depends(public)

    def check(visit: VisitDep) -> Visit:
        principal = visit.principal
        if principal is None:
            raise SignInRequired(sign_in_path(visit.request))
        if not allows(principal.role, permission) or (
            permission is Permission.OWN_RECORDS and principal.patient_id is None
        ):
            visit.record(
                str(getattr(visit.request.scope.get("route"), "path", visit.request.url.path)),
                "",
                principal.patient_id,
                action=f"{visit.request.method.lower()}:{permission.value}",
                outcome="denied_role",
            )
            raise PageRefused(403, N_("This page is for patients"), STAFF_ELSEWHERE)
        return visit

    check.permission = permission  # type: ignore[attr-defined]
    return Depends(check)


Form = dict[str, str]


async def posted_form(request: Request) -> Form:
    """The fields of a posted form, text only (a file or repeated field keeps its first)."""
    form = await request.form()
    fields: Form = {}
    for name, value in form.multi_items():
        if isinstance(value, str) and name not in fields:
            fields[name] = value
    return fields


def checked_form(permission: Permission) -> Any:
    """A posted form of a page that needs ``permission``, refused (403 page) unless it
    carries this browser's form token: another site cannot post it on the user's behalf."""

    def check(
        visit: Annotated[Visit, requires_page(permission)],
        form: Annotated[Form, Depends(posted_form)],
    ) -> Form:
        if not visit.form_token_valid(form.get("csrf_token", "")):
            visit.record(
                "form",
                visit.request.url.path,
                visit.patient_id,
                action="post",
                outcome="denied_csrf",
            )
            raise PageRefused(
                403,
                N_("This form has expired"),
                N_(
                    "For your security we could not accept it. Go back, reload the page and"
                    " try again."
                ),
            )
        return form

    check.permission = permission  # type: ignore[attr-defined]
    return Depends(check)


PatientPage = Annotated[Visit, requires_page(Permission.OWN_RECORDS)]
PatientForm = Annotated[Form, checked_form(Permission.OWN_RECORDS)]
PublicPage = Annotated[Visit, requires_page(Permission.PUBLIC)]
PublicForm = Annotated[Form, checked_form(Permission.PUBLIC)]
SignedInPage = Annotated[Visit, requires_page(Permission.SIGNED_IN)]
SignedInForm = Annotated[Form, checked_form(Permission.SIGNED_IN)]
