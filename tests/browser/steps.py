"""Steps of the portal journeys, as a person takes them: real clicks and typing, found by
the field names and labels of the page contract (notes in /work/notes/portal-contract.md,
mirrored by the portal's templates)."""

import re
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

from tests.support import register, totp_now

PASSWORD = "correct horse battery staple"
EXAM = "Chest X-ray, two views"
PLACE = "Riverside Imaging Center"
PLACE_ADDRESS = "100 Example Avenue"
PREPARATION = "Remove jewellery from the neck and chest"
# Base32, as authenticator secrets are shown (often in groups of four).
SECRET = re.compile(r"\b((?:[A-Z2-7]{4}[ -]?){4,}[A-Z2-7]*)\b")
# A written-out time with its zone, e.g. "9:45 am EST" / "9:45 EST" (no ISO strings).
TIME_WITH_ZONE = re.compile(r"\d{1,2}:\d{2}\s*(?:[ap]\.?\s?m\.?\s*)?[A-Z]{2,5}\b")
# Riverside's zone in December, named on the time page (once for all its times).
ZONE = re.compile(r"\bEST\b|Eastern Standard Time")
ISO_INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


@dataclass
class Patient:
    email: str
    password: str
    headers: dict[str, str]  # an API session's Authorization header


def new_patient(portal: Any) -> Patient:
    """A patient registered through the API (set-up, not what the test is about)."""
    email = f"browser-{uuid4().hex[:10]}@example.org"
    with portal.api() as api:
        headers = register(api, email, PASSWORD)
    return Patient(email, PASSWORD, headers)


def submit(page: Any, field: str) -> None:
    """Press the submit button of the page's form that holds the field named ``field``."""
    page.locator(f"main form:has([name='{field}']) button[type=submit]").first.click()


def sign_in(page: Any, look: Any, email: str, password: str, name: str = "sign-in") -> None:
    page.goto("/sign-in")
    look(page, name)
    page.locator("input[name=email]").fill(email)
    page.locator("input[name=password]").fill(password)
    submit(page, "password")


def at(page: Any, path: str) -> None:
    """Wait until the page is the one at ``path`` (a regular expression of the path; any
    query string is allowed after it)."""
    page.wait_for_url(re.compile(rf"^[a-z]+://[^/]+{path}(\?.*)?$"))


def signed_in(page: Any) -> None:
    """After signing in a patient lands on their appointments (the address may carry a
    note to show, e.g. ``?done=...``)."""
    at(page, "/appointments")


def sign_out(page: Any) -> None:
    page.locator("form[action='/sign-out'] button[type=submit]").first.click()


def second_factor(page: Any, look: Any, secret: str, clock: Any) -> None:
    at(page, "/sign-in/second-factor")
    look(page, "second-factor")
    page.locator("input[name=code]").fill(totp_now(secret, clock))
    submit(page, "code")


def shown_secret(page: Any) -> str:
    """The authenticator secret the two-factor page prints beside its QR code."""
    found = SECRET.search(page.locator("main").inner_text())
    assert found, "no authenticator secret shown beside the QR code"
    return re.sub(r"[ -]", "", found.group(1))


def choose(page: Any, field: str, label: str) -> None:
    """Tick the radio ``field`` whose label says ``label`` and go on."""
    page.locator(f"label:has-text('{label}')").first.click()
    submit(page, field)


def choose_first(page: Any, field: str) -> str:
    """Take the first choice offered for ``field`` (a radio, or a link carrying it in its
    query, as the day page may offer): the value chosen."""
    radios = page.locator(f"input[type=radio][name={field}]")
    if radios.count():
        value = radios.first.get_attribute("value")
        radios.first.check()
        submit(page, field)
        return str(value)
    link = page.locator(f"main a[href*='{field}=']").first
    href = str(link.get_attribute("href"))
    link.click()
    return href


def book_first_slot(page: Any, look: Any, exam: str = EXAM, place: str = PLACE) -> None:
    """The booking journey from its start page to the confirmation page, taking the first
    day and the first time offered, looking at every step."""
    page.goto("/book")
    look(page, "book-exam")
    choose(page, "appointment_type_id", exam)
    at(page, "/book/location")
    look(page, "book-location")
    choose(page, "location_id", place)
    at(page, "/book/day")
    look(page, "book-day")
    choose_first(page, "day")
    at(page, "/book/time")
    look(page, "book-time")
    assert ZONE.search(page.locator("main").inner_text()), "the times' zone is not named"
    choose_first(page, "start")
    at(page, "/book/check")
    look(page, "book-check")
    answers = page.locator("main").inner_text()
    for expected in (exam, place, PLACE_ADDRESS, PREPARATION):
        assert expected in answers, f"check-your-answers page does not say {expected!r}"
    assert TIME_WITH_ZONE.search(answers), "the time is not written with its zone"
    assert not ISO_INSTANT.search(answers), "an ISO timestamp on a page a patient reads"
    confirm(page)
    page.wait_for_url(lambda url: "/book/" not in url)


def confirm(page: Any) -> None:
    """Press the submit button of the page's own POST form (not the header's sign-out)."""
    page.locator("main form[method=post i] button[type=submit]").first.click()


def my_appointments(portal: Any, patient: Patient) -> list[dict[str, Any]]:
    """The patient's appointments as the API answers them, once the read models have
    caught up with every booking so far."""
    from application.base import Position

    sync = portal.runtime.services.sync
    head = sync.head("scheduling")
    assert head is not None
    assert sync.wait(Position("scheduling", head))
    with portal.api() as api:
        response = api.get("/v1/appointments", headers=patient.headers)
    assert response.status_code == 200, response.text
    return list(response.json())


def booked_through_api(portal: Any, patient: Patient) -> dict[str, Any]:
    """A chest X-ray at Riverside in the first free slot from tomorrow (set-up)."""
    from datetime import timedelta

    from tests.support import catalog_ids, post_booking

    now = portal.clock.now()
    with portal.api() as api:
        types, locations = catalog_ids(api)
        slots = api.get(
            "/v1/slots",
            params={
                "appointment_type_id": types["xr-chest"],
                "location_id": locations["riverside"],
                "start": (now + timedelta(days=1)).isoformat(),
                "end": (now + timedelta(days=8)).isoformat(),
            },
        )
        assert slots.status_code == 200, slots.text
        assert slots.json(), "no free chest X-ray at Riverside in the coming week"
        response = post_booking(
            api,
            patient.headers,
            slots.json()[0]["start"],
            "xr-chest",
            "riverside",
            (types, locations),
        )
    assert response.status_code == 201, response.text
    return dict(response.json())
