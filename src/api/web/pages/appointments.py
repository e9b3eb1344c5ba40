"""My appointments: the list (upcoming, past), one appointment, its calendar file, the
booked confirmation, and moving or cancelling it. Every page that shows an appointment
writes an access-log row, as the API's reads do; another patient's id is a 404 page."""

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter
from fastapi.responses import RedirectResponse, Response

from api.web.catalog_words import AppointmentWords, CatalogWords
from api.web.forms import Problems, within_budget
from api.web.i18n import N_
from api.web.ics import calendar_file
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
from api.web.render import pages_of, render
from api.web.visit import PageRefused, PatientForm, PatientPage, Visit
from application.errors import BeyondBookingHorizonError
from domain.appointment import (
    BookingInPastError,
    InvalidTransitionError,
    NotASlotError,
    OutsideOpeningHoursError,
    ReasonRequiredError,
)
from domain.resource_day import SlotUnavailableError

router = APIRouter()
CANCELLED_ONLINE = "Cancelled by the patient in the portal"
NOT_FOUND = PageRefused(
    404,
    N_("Page not found"),
    N_("We could not find that appointment. It may have been removed, or the address is wrong."),
)


def own_appointment(visit: Visit, raw_id: str) -> AppointmentWords:
    """The patient's own appointment (logged as a read), or the 404 page (logged as a
    refusal, with the owner when there is one)."""
    appointment_id = parse_uuid(raw_id)
    view = visit.services.appointments.get(appointment_id) if appointment_id else None
    if view is None or view.patient_id != visit.patient_id:
        visit.record(
            "appointment",
            str(appointment_id or ""),
            view.patient_id if view else None,
            outcome="denied_or_missing",
        )
        raise NOT_FOUND
    visit.record("appointment", str(view.id), view.patient_id)
    return CatalogWords(visit.services).appointment(view)


def _details(visit: Visit, words: AppointmentWords) -> dict[str, Any]:
    """What every appointment page shows about it."""
    view = words.view
    return {
        "appointment": words,
        "when": visit.dates.when(view.start, view.timezone),
        "site": words.site,
        "now": visit.services.clock.now(),
    }


@router.get("/appointments")
def my_appointments(visit: PatientPage, done: str = "") -> Response:
    patient_id = visit.patient
    views = visit.services.appointments.for_patient(patient_id)
    visit.record("appointment", "*", patient_id)
    words = CatalogWords(visit.services)
    now = visit.services.clock.now()
    listed = [{**_details(visit, words.appointment(view)), "id": view.id} for view in views]
    upcoming = [item for item in listed if item["appointment"].upcoming(now)]
    past = [item for item in listed if not item["appointment"].upcoming(now)]
    past.reverse()  # newest first
    return render(visit, "appointments.html", upcoming=upcoming, past=past, done=done[:20])


@router.get("/appointments/{appointment_id}.ics")
def calendar(appointment_id: str, visit: PatientPage) -> Response:
    words = own_appointment(visit, appointment_id)
    pages = pages_of(visit)
    view = words.view
    site = words.site
    summary = words.exam.name if words.exam else pages.text(visit, "Appointment")
    body = calendar_file(
        uid=f"{view.id}@imaging-bridge",
        start=view.start,
        end=view.end,
        now=visit.services.clock.now(),
        summary=summary,
        location=", ".join(site) if site else "",
        description=words.exam.preparation if words.exam else "",
    )
    return Response(
        body,
        media_type="text/calendar; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="appointment.ics"'},
    )


@router.get("/appointments/{appointment_id}/booked")
def booked(appointment_id: str, visit: PatientPage) -> Response:
    words = own_appointment(visit, appointment_id)
    return render(visit, "booked.html", **_details(visit, words))


@router.get("/appointments/{appointment_id}")
def one_appointment(appointment_id: str, visit: PatientPage, done: str = "") -> Response:
    words = own_appointment(visit, appointment_id)
    return render(visit, "appointment.html", done=done[:20], **_details(visit, words))


# Moving an appointment ------------------------------------------------------------------


def _changeable(visit: Visit, words: AppointmentWords) -> Journey:
    """The journey that moves it, or the 409 page when it cannot change any more."""
    now = visit.services.clock.now()
    if not words.changeable(now) or words.exam is None or words.place is None:
        raise _cannot_change()
    here = f"/appointments/{words.view.id}/reschedule"
    return Journey(
        exam=words.exam,
        place=words.place,
        days_page=here,
        day_action=here,
        time_action=here,
        back=f"/appointments/{words.view.id}",
    )


def _move_check(
    visit: Visit,
    words: AppointmentWords,
    start: datetime,
    problems: Problems | None = None,
    status: int = 200,
) -> Response:
    journey = _changeable(visit, words)
    tz = journey.place.timezone
    return render(
        visit,
        "reschedule_check.html",
        status=status,
        journey=journey,
        start=start.isoformat(),
        new_when=visit.dates.when(start, tz),
        new_site=site_words(journey.place, start.astimezone(ZoneInfo(tz)).date()),
        problems=problems or Problems(),
        **_details(visit, words),
    )


def _taken(visit: Visit, journey: Journey, start: datetime, status: int = 409) -> Response:
    problems = Problems()
    problems.add("start", TAKEN)
    day = start.astimezone(ZoneInfo(journey.place.timezone)).date()
    return render_times(visit, journey, day, problems, status, around=start)


@router.get("/appointments/{appointment_id}/reschedule")
def reschedule_page(
    appointment_id: str, visit: PatientPage, day: str = "", start: str = ""
) -> Response:
    words = own_appointment(visit, appointment_id)
    journey = _changeable(visit, words)
    if start:
        chosen = parse_start(start)
        if chosen is None:
            problems = Problems()
            problems.add("start", NOT_A_TIME)
            return render_days(visit, journey, None, problems, 422)
        if not is_free(visit, journey, chosen):
            return _taken(visit, journey, chosen)
        return _move_check(visit, words, chosen)
    if day:
        chosen_day = parse_day(day)
        if chosen_day is not None:
            return render_times(visit, journey, chosen_day)
    from_day = parse_day(visit.request.query_params.get("from", ""))
    return render_days(visit, journey, from_day)


@router.post("/appointments/{appointment_id}/reschedule")
def reschedule(appointment_id: str, visit: PatientPage, form: PatientForm) -> Response:
    services = visit.services
    words = own_appointment(visit, appointment_id)
    journey = _changeable(visit, words)
    start = parse_start(form.get("start", ""))
    if start is None:
        problems = Problems()
        problems.add("start", NOT_A_TIME)
        return render_days(visit, journey, None, problems, 422)
    principal = visit.signed_in
    within_budget(
        visit,
        "booking",
        services.scheduling.limits.requests_per_hour,
        3600,
        key=f"patient:{principal.account_id}",
    )
    try:
        written = services.scheduling.reschedule(
            words.view.id,
            start=start,
            location_id=None,
            reason="",
            actor=visit.actor(),
            owner=principal.patient_id,
        )
    except (SlotUnavailableError, NotASlotError, OutsideOpeningHoursError, BookingInPastError):
        return _taken(visit, journey, start)
    except BeyondBookingHorizonError:
        problems = Problems()
        problems.add("", N_("That day is too far ahead to book yet. Choose an earlier day"))
        return _move_check(visit, words, start, problems, 409)
    except InvalidTransitionError:
        raise _cannot_change() from None
    if written.position is not None:
        services.sync.wait(written.position)
    return visit.finish(
        RedirectResponse(f"/appointments/{words.view.id}?done=rescheduled", status_code=303)
    )


def _cannot_change() -> PageRefused:
    return PageRefused(
        409,
        N_("This appointment cannot be changed"),
        N_("It has already happened, or it was cancelled. Call the centre if you need help."),
    )


# Cancelling -----------------------------------------------------------------------------


@router.get("/appointments/{appointment_id}/cancel")
def cancel_page(appointment_id: str, visit: PatientPage) -> Response:
    words = own_appointment(visit, appointment_id)
    _changeable(visit, words)
    return render(visit, "cancel.html", problems=Problems(), reason="", **_details(visit, words))


@router.post("/appointments/{appointment_id}/cancel")
def cancel(appointment_id: str, visit: PatientPage, form: PatientForm) -> Response:
    services = visit.services
    words = own_appointment(visit, appointment_id)
    _changeable(visit, words)
    reason = " ".join(form.get("reason", "").split())
    if len(reason) > 500:
        problems = Problems()
        problems.add("reason", N_("Use %(max)s characters or fewer"), max=500)
        return render(
            visit,
            "cancel.html",
            status=422,
            problems=problems,
            reason=reason,
            **_details(visit, words),
        )
    try:
        written = services.scheduling.cancel(
            words.view.id,
            reason=reason or CANCELLED_ONLINE,
            actor=visit.actor(),
            owner=visit.patient,
        )
    except (InvalidTransitionError, ReasonRequiredError):
        raise _cannot_change() from None
    if written.position is not None:
        services.sync.wait(written.position)
    return visit.finish(
        RedirectResponse(f"/appointments/{words.view.id}?done=cancelled", status_code=303)
    )
