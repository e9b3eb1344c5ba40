"""Messages with the imaging centre: the patient's conversations, a new one, and one
conversation with its messages and a reply form. Opening a conversation marks it read.
Each list, each conversation read and each message sent is in the access log, as the
API writes them; another patient's conversation is a 404 page."""

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter
from fastapi.responses import RedirectResponse, Response

from api.web.catalog_words import CatalogWords
from api.web.forms import Problems, within_budget
from api.web.i18n import N_
from api.web.pages.journey import parse_uuid
from api.web.render import render
from api.web.visit import Form, PageRefused, Visit, checked_form, requires_page
from application.errors import NotFoundError
from application.messaging_views import ThreadView
from application.permissions import Permission
from domain.errors import InvalidValueError
from domain.secure_thread import MAX_BODY, MAX_SUBJECT, ThreadClosedError

router = APIRouter()

MessagesPage = Annotated[Visit, requires_page(Permission.MESSAGES_OWN)]
MessagesForm = Annotated[Form, checked_form(Permission.MESSAGES_OWN)]
RESOURCE = "secure_thread"
# The same budget as the API's (bucket and key): messages a patient writes per hour.
MESSAGES_PER_HOUR = 30
THREAD_NOT_FOUND = PageRefused(
    404,
    N_("Page not found"),
    N_("We could not find that conversation. The address may be wrong."),
)


def budget(visit: Visit) -> None:
    key = f"patient:{visit.signed_in.account_id}"
    within_budget(visit, "secure_message", MESSAGES_PER_HOUR, 3600, key)


def centre_zone(visit: Visit) -> str:
    """The zone messages' times are written in: the centre's (its first location's, by
    name; UTC without any)."""
    places = sorted(CatalogWords(visit.services).places().values(), key=lambda p: p.name)
    return places[0].timezone if places else "UTC"


def when(visit: Visit, instant: datetime, zone: str) -> str:
    return visit.dates.when(instant, zone)


def subject_field(form: Form, problems: Problems) -> str:
    subject = form.get("subject", "").strip()
    if not subject:
        problems.add("subject", N_("Enter a subject"))
    elif len(subject) > MAX_SUBJECT:
        problems.add("subject", N_("Use %(max)s characters or fewer"), max=MAX_SUBJECT)
    return subject


def body_field(form: Form, problems: Problems) -> str:
    body = form.get("body", "").strip()
    if not body:
        problems.add("body", N_("Enter your message"))
    elif len(body) > MAX_BODY:
        problems.add("body", N_("Use %(max)s characters or fewer"), max=MAX_BODY)
    return body


def unusable_text(field: str, problems: Problems) -> None:
    """What the domain refused after the form's own checks: a control character."""
    problems.add(field, N_("Remove the special characters, then send it again"))


@router.get("/messages")
def threads(visit: MessagesPage, done: str = "") -> Response:
    patient_id = visit.patient
    found = visit.services.messaging.threads_of(patient_id)
    visit.record(RESOURCE, "*", patient_id)
    zone = centre_zone(visit)
    listed = [{"thread": t, "when": when(visit, t.last_message_at, zone)} for t in found]
    return render(visit, "messages.html", threads=listed, done=done[:20])


@router.get("/messages/new")
def new_thread_page(visit: MessagesPage) -> Response:
    return render(
        visit, "message_new.html", values={"subject": "", "body": ""}, problems=Problems()
    )


@router.post("/messages/new")
def start_thread(visit: MessagesPage, form: MessagesForm) -> Response:
    patient_id = visit.patient
    problems = Problems()
    subject = subject_field(form, problems)
    body = body_field(form, problems)
    if not problems:
        budget(visit)
        try:
            posted = visit.services.messaging.start(patient_id, subject, body, visit.actor())
        except InvalidValueError as error:
            unusable_text("subject" if "subject" in error.detail else "body", problems)
        else:
            visit.record(RESOURCE, str(posted.thread_id), patient_id, action="post")
            return visit.finish(
                RedirectResponse(f"/messages/{posted.thread_id}?done=sent", status_code=303)
            )
    values = {"subject": subject, "body": body}
    return render(visit, "message_new.html", status=422, values=values, problems=problems)


def _thread_page(visit: Visit, view: ThreadView, *, status: int = 200, **context: Any) -> Response:
    zone = centre_zone(visit)
    messages = [
        {"message": m, "mine": m.author_role == "patient", "when": when(visit, m.at, zone)}
        for m in view.messages
    ]
    context.setdefault("problems", Problems())
    context.setdefault("body", "")
    context.setdefault("done", "")
    return render(
        visit, "message_thread.html", status=status, thread=view, messages=messages, **context
    )


def _read(visit: Visit, raw_id: str) -> ThreadView:
    """One of the patient's conversations, now marked read (logged as a read), or the
    404 page (logged as a refusal)."""
    thread_id = parse_uuid(raw_id)
    patient_id = visit.patient
    try:
        if thread_id is None:
            raise NotFoundError("no such conversation")
        view, _ = visit.services.messaging.read(patient_id, thread_id, visit.actor())
    except NotFoundError:
        visit.record(RESOURCE, raw_id[:64], patient_id, outcome="denied_or_missing")
        raise THREAD_NOT_FOUND from None
    visit.record(RESOURCE, str(view.id), patient_id)
    return view


@router.get("/messages/{thread_id}")
def thread(thread_id: str, visit: MessagesPage, done: str = "") -> Response:
    return _thread_page(visit, _read(visit, thread_id), done=done[:20])


@router.post("/messages/{thread_id}")
def reply(thread_id: str, visit: MessagesPage, form: MessagesForm) -> Response:
    patient_id = visit.patient
    wanted: UUID | None = parse_uuid(thread_id)
    problems = Problems()
    body = body_field(form, problems)
    if not problems and wanted is not None:
        budget(visit)
        try:
            visit.services.messaging.post(patient_id, wanted, body, visit.actor())
        except NotFoundError:
            visit.record(
                RESOURCE, thread_id[:64], patient_id, action="post", outcome="denied_or_missing"
            )
            raise THREAD_NOT_FOUND from None
        except ThreadClosedError:
            problems.add("body", N_("This conversation is closed. Start a new message instead."))
        except InvalidValueError:
            unusable_text("body", problems)
        else:
            visit.record(RESOURCE, str(wanted), patient_id, action="post")
            return visit.finish(
                RedirectResponse(f"/messages/{wanted}?done=sent#latest", status_code=303)
            )
    view = _read(visit, thread_id)
    return _thread_page(visit, view, status=422, problems=problems, body=body)
