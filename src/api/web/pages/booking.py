"""Booking, one question per page: the scan, the place, the day, the time, then "check
your answers" before anything is booked. Each step reads the choices so far from its
query string and sends a person back to the step whose answer is missing or wrong.

Booking one of the RIS's orders ("Scans to book") is the same journey with ``order`` in
every step's query: the scans offered are those that perform the order's procedure (the
step is skipped when only one does), and the booking is made with the order's id."""

import secrets
from collections.abc import Callable
from datetime import datetime
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter
from fastapi.responses import RedirectResponse, Response

from api.web.catalog_words import CatalogWords, Exam, Place
from api.web.forms import Problems, within_budget
from api.web.i18n import N_
from api.web.pages.journey import (
    NOT_A_TIME,
    TAKEN,
    Journey,
    is_free,
    parse_day,
    parse_start,
    parse_uuid,
    render_days,
    render_times,
    site_words,
)
from api.web.pages.records import own_order
from api.web.render import render
from api.web.visit import PageRefused, PatientForm, PatientPage, Visit
from application.errors import (
    BeyondBookingHorizonError,
    BookingLimitReachedError,
    ExamNotForOrderError,
    IdempotencyKeyReusedError,
)
from application.ris.patient_records import OrderView
from domain.appointment import BookingInPastError, NotASlotError, OutsideOpeningHoursError
from domain.resource_day import SlotUnavailableError
from domain.ris.order import OrderNotWaitingError

router = APIRouter()


class StepBack(Exception):
    """An earlier answer is missing or wrong: show that step again, with the problem."""

    def __init__(self, response: Response) -> None:
        super().__init__("step back")
        self.response = response


NOT_WAITING = {
    "scheduled": (
        N_("This scan is already booked"),
        N_("You can see it, change the time or cancel it in My appointments."),
    ),
    "completed": (
        N_("This scan is done"),
        N_("Your result will be under Results when the imaging centre releases it."),
    ),
    "cancelled": (
        N_("This scan was cancelled"),
        N_("The imaging centre cancelled this request. If you think that is wrong, call them."),
    ),
}
NOT_ONLINE = (
    N_("This scan cannot be booked online"),
    N_("The imaging centre will call you to book it. You can also call them."),
)


def _order(visit: Visit, value: str) -> OrderView | None:
    """The patient's order being booked (none without ``order``): a 404 page for an
    order that is not theirs, a page saying why for one no longer waiting."""
    if not value:
        return None
    order = own_order(visit, value)
    if order.status != "waiting":
        title, message = NOT_WAITING.get(order.status, NOT_WAITING["scheduled"])
        raise PageRefused(409, title, message)
    if not order.appointment_type_ids:
        raise PageRefused(409, *NOT_ONLINE)
    return order


def _order_fields(order: OrderView | None) -> dict[str, str]:
    return {"order": str(order.id)} if order else {}


def _exams(words: CatalogWords, order: OrderView | None) -> list[Exam]:
    """The scans to choose from: those that perform the order's procedure, if any."""
    exams = [
        exam
        for exam in words.exams().values()
        if order is None or exam.id in order.appointment_type_ids
    ]
    return sorted(exams, key=lambda exam: (exam.kind, exam.name))


def _exam_page(
    visit: Visit,
    order: OrderView | None,
    chosen: str = "",
    problems: Problems | None = None,
    status: int = 200,
) -> Response:
    return render(
        visit,
        "book_exam.html",
        status=status,
        exams=_exams(CatalogWords(visit.services), order),
        order=order,
        chosen=chosen,
        problems=problems or Problems(),
    )


def _exam(visit: Visit, words: CatalogWords, value: str, order: OrderView | None) -> Exam:
    wanted = parse_uuid(value) if value else None
    exam = next((e for e in _exams(words, order) if e.id == wanted), None)
    if exam is None:
        problems = Problems()
        problems.add("appointment_type_id", N_("Choose the scan you need"))
        raise StepBack(_exam_page(visit, order, problems=problems, status=422))
    return exam


def _place_page(
    visit: Visit,
    words: CatalogWords,
    exam: Exam,
    order: OrderView | None,
    chosen: str = "",
    problems: Problems | None = None,
    status: int = 200,
) -> Response:
    exam_query = {"appointment_type_id": str(exam.id), **_order_fields(order)}
    # With one scan for the order, its step was skipped: back goes to the list of orders.
    single = order is not None and len(_exams(words, order)) == 1
    return render(
        visit,
        "book_location.html",
        status=status,
        exam=exam,
        order=order,
        hidden_fields=exam_query,
        back_to="/orders" if single else f"/book?{urlencode(exam_query)}",
        places=words.places_for(exam),
        chosen=chosen,
        problems=problems or Problems(),
    )


def _place(
    visit: Visit, words: CatalogWords, exam: Exam, order: OrderView | None, value: str
) -> Place:
    wanted = parse_uuid(value) if value else None
    place = next((p for p in words.places_for(exam) if p.id == wanted), None)
    if place is None:
        problems = Problems()
        problems.add("location_id", N_("Choose where you want to go"))
        raise StepBack(_place_page(visit, words, exam, order, problems=problems, status=422))
    return place


def _journey(exam: Exam, place: Place, order: OrderView | None) -> Journey:
    hidden = {"appointment_type_id": str(exam.id), "location_id": str(place.id)}
    hidden.update(_order_fields(order))
    return Journey(
        exam=exam,
        place=place,
        days_page="/book/day",
        day_action="/book/time",
        time_action="/book/check",
        hidden=hidden,
        back=f"/book/location?{urlencode(hidden)}",
        order_text=(order.procedure_text or order.procedure_code) if order else "",
    )


def _chosen(visit: Visit, query: dict[str, str]) -> Journey:
    words = CatalogWords(visit.services)
    order = _order(visit, query.get("order", ""))
    exam = _exam(visit, words, query.get("appointment_type_id", ""), order)
    place = _place(visit, words, exam, order, query.get("location_id", ""))
    return _journey(exam, place, order)


def _query(visit: Visit) -> dict[str, str]:
    return {key: value[:200] for key, value in visit.request.query_params.items()}


def _stepping(build: Callable[[], Response]) -> Response:
    """Run a step; an earlier step shown again is its answer."""
    try:
        return build()
    except StepBack as back:
        return back.response


@router.get("/book")
def choose_exam(visit: PatientPage, appointment_type_id: str = "", order: str = "") -> Response:
    """The first step; for an order that only one scan performs, straight to the place."""
    wanted = _order(visit, order[:64])
    if wanted is not None and not appointment_type_id:
        exams = _exams(CatalogWords(visit.services), wanted)
        if len(exams) == 1:
            query = urlencode({"appointment_type_id": str(exams[0].id), "order": str(wanted.id)})
            return visit.finish(RedirectResponse(f"/book/location?{query}", status_code=303))
    return _exam_page(visit, wanted, chosen=appointment_type_id[:64])


@router.get("/book/location")
def choose_place(visit: PatientPage) -> Response:
    query = _query(visit)

    def build() -> Response:
        words = CatalogWords(visit.services)
        order = _order(visit, query.get("order", ""))
        exam = _exam(visit, words, query.get("appointment_type_id", ""), order)
        return _place_page(visit, words, exam, order, chosen=query.get("location_id", ""))

    return _stepping(build)


@router.get("/book/day")
def choose_day(visit: PatientPage) -> Response:
    query = _query(visit)
    return _stepping(
        lambda: render_days(visit, _chosen(visit, query), parse_day(query.get("from", "")))
    )


def _time_step(visit: Visit, journey: Journey, query: dict[str, str]) -> Response:
    day = parse_day(query.get("day", ""))
    if day is None:
        problems = Problems()
        problems.add("day", N_("Choose a day"))
        return render_days(visit, journey, None, problems, 422)
    return render_times(visit, journey, day)


@router.get("/book/time")
def choose_time(visit: PatientPage) -> Response:
    query = _query(visit)
    return _stepping(lambda: _time_step(visit, _chosen(visit, query), query))


def _start(visit: Visit, journey: Journey, value: str) -> datetime:
    start = parse_start(value)
    if start is None:
        problems = Problems()
        problems.add("start", NOT_A_TIME)
        raise StepBack(render_days(visit, journey, None, problems, 422))
    if not is_free(visit, journey, start):
        raise StepBack(_taken(visit, journey, start))
    return start


def _taken(visit: Visit, journey: Journey, start: datetime) -> Response:
    problems = Problems()
    problems.add("start", TAKEN)
    day = start.astimezone(ZoneInfo(journey.place.timezone)).date()
    return render_times(visit, journey, day, problems, 409, around=start)


def _check_page(
    visit: Visit,
    journey: Journey,
    start: datetime,
    key: str,
    problems: Problems | None = None,
    status: int = 200,
) -> Response:
    day = start.astimezone(ZoneInfo(journey.place.timezone)).date()
    return render(
        visit,
        "book_check.html",
        status=status,
        journey=journey,
        start=start.isoformat(),
        when=visit.dates.when(start, journey.place.timezone),
        site=site_words(journey.place, day),
        booking_key=key,
        problems=problems or Problems(),
    )


@router.get("/book/check")
def check_answers(visit: PatientPage) -> Response:
    query = _query(visit)

    def build() -> Response:
        journey = _chosen(visit, query)
        start = _start(visit, journey, query.get("start", ""))
        return _check_page(visit, journey, start, secrets.token_urlsafe(16))

    return _stepping(build)


@router.post("/book/check")
def book(visit: PatientPage, form: PatientForm) -> Response:
    """Book what the person checked. The hidden ``booking_key`` makes a second press of
    the button (or a resent form) answer the same booking, as Idempotency-Key does."""
    services = visit.services

    def build() -> Response:
        journey = _chosen(visit, form)
        start = parse_start(form.get("start", ""))
        if start is None:
            problems = Problems()
            problems.add("start", NOT_A_TIME)
            return render_days(visit, journey, None, problems, 422)
        key = form.get("booking_key", "")[:128] or secrets.token_urlsafe(16)
        budget = services.scheduling.limits.requests_per_hour
        within_budget(visit, "booking", budget, 3600, key=f"patient:{visit.signed_in.account_id}")
        try:
            written = services.scheduling.book(
                patient_id=visit.patient,
                appointment_type_id=journey.exam.id,
                location_id=journey.place.id,
                start=start,
                actor=visit.actor(),
                idempotency_key=f"web:{key}",
                order_id=parse_uuid(journey.hidden.get("order", "")),
            )
        except OrderNotWaitingError:
            # Booked or cancelled since the journey began (another tab, the centre): the
            # order's page says which; until the lists catch up, "already booked".
            _order(visit, journey.hidden.get("order", ""))
            raise PageRefused(409, *NOT_WAITING["scheduled"]) from None
        except ExamNotForOrderError:
            problems = Problems()
            problems.add("appointment_type_id", N_("Choose the scan you need"))
            order = _order(visit, journey.hidden.get("order", ""))
            return _exam_page(visit, order, problems=problems, status=422)
        except (SlotUnavailableError, NotASlotError, OutsideOpeningHoursError, BookingInPastError):
            return _taken(visit, journey, start)
        except (BookingLimitReachedError, BeyondBookingHorizonError) as refused:
            problems = Problems()
            problems.add("", _refusal_words(refused))
            return _check_page(visit, journey, start, key, problems, 409)
        except IdempotencyKeyReusedError:
            return _check_page(visit, journey, start, secrets.token_urlsafe(16))
        if written.position is not None:
            services.sync.wait(written.position)
        return RedirectResponse(f"/appointments/{written.appointment.id}/booked", status_code=303)

    return visit.finish(_stepping(build))


def _refusal_words(refused: Exception) -> str:
    if isinstance(refused, BookingLimitReachedError):
        if "for this exam" in str(refused):
            return N_(
                "You already have as many upcoming appointments for this scan as one person"
                " can hold. Cancel one to book another"
            )
        return N_(
            "You already have as many upcoming appointments as one person can hold."
            " Cancel one to book another"
        )
    return N_("That day is too far ahead to book yet. Choose an earlier day")
