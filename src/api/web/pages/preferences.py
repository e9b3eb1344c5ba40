"""How the patient hears from the centre: e-mail, text messages and notifications on this
device (each its own consent), language, quiet hours and time zone. The page works
without JavaScript; only turning on notifications on a device needs it (``push.js``
subscribes the browser through the service worker ``/sw.js`` and sends the subscription
with the form). Every read and change is in the access log."""

from datetime import UTC, datetime, time
from pathlib import Path

from babel.dates import get_timezone_location
from fastapi import APIRouter
from fastapi.responses import RedirectResponse, Response

from api.web.forms import Problems
from api.web.i18n import N_
from api.web.render import STATIC, render
from api.web.visit import PatientForm, PatientPage, PublicPage, Visit
from domain.contact_preferences import EMAIL, PUSH, SMS, e164
from domain.errors import InvalidValueError
from domain.patient import Patient
from domain.reminders import QuietHours

router = APIRouter()
RESOURCE = "notification_preferences"
SERVICE_WORKER = Path(STATIC) / "sw.js"
# Zones offered besides "the centre's": where the centre's patients live, and any other
# zone the patient chose before (through the API).
ZONES = (
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Phoenix",
    "America/Los_Angeles",
    "America/Anchorage",
    "Pacific/Honolulu",
    "America/Puerto_Rico",
    "America/Mexico_City",
    "Europe/Madrid",
)
HALF_HOURS = tuple(time(minutes // 60, minutes % 60) for minutes in range(0, 24 * 60, 30))
LANGUAGE_NAMES = {"en": "English", "es": "Español"}


def _choices(visit: Visit, patient: Patient) -> dict[str, object]:
    """The options of the page's selects, in the visit's language."""
    zone = patient.preferences.zone
    zones = ZONES if zone is None or zone in ZONES else (*ZONES, zone)
    quiet = patient.preferences.quiet_hours
    times = {*HALF_HOURS, *([quiet.start, quiet.end] if quiet else [])}
    return {
        "zones": [(name, get_timezone_location(name, locale=visit.language)) for name in zones],
        "times": [
            (f"{t:%H:%M}", visit.dates.time(datetime.combine(datetime(2000, 1, 3), t, UTC), "UTC"))
            for t in sorted(times)
        ],
        "languages": LANGUAGE_NAMES,
    }


def _values(patient: Patient) -> dict[str, str]:
    prefs = patient.preferences
    quiet = prefs.quiet_hours
    return {
        EMAIL: "on" if prefs.allows(EMAIL) else "",
        SMS: "on" if prefs.allows(SMS) else "",
        PUSH: "on" if _consented(patient, PUSH) else "",
        "language": prefs.language,
        "quiet_from": f"{quiet.start:%H:%M}" if quiet else "",
        "quiet_to": f"{quiet.end:%H:%M}" if quiet else "",
        "timezone": prefs.zone or "",
    }


def _consented(patient: Patient, channel: str) -> bool:
    consent = patient.preferences.consent(channel)
    return consent is not None and consent.granted


def _page(
    visit: Visit,
    patient: Patient,
    *,
    values: dict[str, str] | None = None,
    problems: Problems | None = None,
    done: str = "",
    status: int = 200,
) -> Response:
    visit.allow_scripts()  # push.js, and the service worker it registers
    prefs = patient.preferences
    return render(
        visit,
        "preferences.html",
        status=status,
        values=values or _values(patient),
        problems=problems or Problems(),
        done=done,
        email=patient.notice_email,
        phone=patient.phone if patient.phone and e164(patient.phone) else "",
        devices=len(prefs.push_subscriptions),
        push_key=visit.services.preferences.push_public_key,
        script=visit.request.app.state.pages.static["push.js"].url,
        **_choices(visit, patient),
    )


@router.get("/preferences")
def preferences_page(visit: PatientPage, done: str = "") -> Response:
    patient = visit.services.registry.patient(visit.patient)
    visit.record(RESOURCE, str(patient.id), patient.id)
    return _page(visit, patient, done=done[:20])


@router.post("/preferences")
def change_preferences(visit: PatientPage, form: PatientForm) -> Response:
    services = visit.services
    patient = services.registry.patient(visit.patient)
    values = {name: form.get(name, "").strip() for name in _values(patient)}
    problems = Problems()
    quiet_hours = _quiet_hours(values, problems)
    zone = values["timezone"] or None
    if zone is not None and zone not in ZONES and zone != patient.preferences.zone:
        problems.add("timezone", N_("Choose a time zone from the list"))
    language = values["language"] if values["language"] in LANGUAGE_NAMES else None
    if language is None:
        problems.add("language", N_("Choose a language"))
    consents = {EMAIL: bool(values[EMAIL]), SMS: bool(values[SMS])}
    if values[SMS] and not (patient.phone and e164(patient.phone)):
        problems.add("sms", N_("Add your mobile phone number in Your details first"))
    # Without JavaScript the notifications switch is not part of the form: leave it be.
    if form.get("push_control"):
        consents[PUSH] = bool(values[PUSH])
        endpoint = form.get("push_endpoint", "").strip()
        if endpoint and not endpoint.startswith("https://"):  # as browsers give them
            problems.add("push", N_("This browser could not be set up for notifications"))
        elif endpoint and values[PUSH] and not problems:
            try:
                services.preferences.add_push_subscription(
                    patient.id,
                    endpoint,
                    form.get("push_p256dh", "").strip(),
                    form.get("push_auth", "").strip(),
                    visit.actor(),
                )
            except InvalidValueError:
                problems.add("push", N_("This browser could not be set up for notifications"))
            patient = services.registry.patient(patient.id)
        if values[PUSH] and not patient.preferences.push_subscriptions and "push" not in problems:
            problems.add("push", N_("Allow notifications when your browser asks, then save again"))
    if not problems:
        try:
            services.preferences.update(
                patient.id,
                consents=consents,
                language=language,
                quiet_hours=quiet_hours,
                zone=zone,
                actor=visit.actor(),
                source="portal",
            )
        except InvalidValueError:
            problems.add("email", N_("Those choices could not be saved. Check them and try again"))
        else:
            visit.record(RESOURCE, str(patient.id), patient.id, action="update")
            return visit.finish(RedirectResponse("/preferences?done=saved", status_code=303))
    return _page(visit, patient, values=values, problems=problems, status=422)


def _quiet_hours(values: dict[str, str], problems: Problems) -> QuietHours | None:
    start, end = values["quiet_from"], values["quiet_to"]
    if not start and not end:
        return None
    if not start or not end:
        problems.add("quiet_from", N_("Choose when quiet hours start and when they end"))
        return None
    try:
        return QuietHours.parse(f"{start}-{end}")
    except InvalidValueError:
        problems.add("quiet_from", N_("Quiet hours must end at a different time than they start"))
        return None


@router.get("/sw.js")
def service_worker(visit: PublicPage) -> Response:
    """The service worker, from the site's root so that it may serve every page: it shows
    the notifications the centre pushes and opens their link when one is tapped."""
    answer = Response(
        SERVICE_WORKER.read_bytes(),
        media_type="text/javascript",
        headers={"Cache-Control": "no-cache"},
    )
    return visit.finish(answer)
