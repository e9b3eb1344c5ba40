"""The portal as a patient uses it, in headless Chromium: create an account, sign in, turn
on two-factor sign-in, book, reschedule, cancel, switch language, sign out everywhere;
without JavaScript; and at 200 % zoom. Each page seen is screenshotted at phone and
desktop size and checked by axe-core (see conftest.Look)."""

from datetime import timedelta
from pathlib import Path
from uuid import uuid4

import pytest

from tests.browser.conftest import Look, horizontal_overflow, new_context
from tests.browser.steps import (
    EXAM,
    PASSWORD,
    PLACE_ADDRESS,
    TIME_WITH_ZONE,
    at,
    book_first_slot,
    booked_through_api,
    choose_first,
    confirm,
    my_appointments,
    new_patient,
    second_factor,
    shown_secret,
    sign_in,
    sign_out,
    signed_in,
    submit,
)

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

APPOINTMENT_PAGE = "/appointments/[0-9a-f-]{36}"


@pytest.fixture(autouse=True)
def own_minute(portal):
    """Each test in its own minute of the server's clock: the sign-in and registration
    budgets count per address per minute of that clock, and every test comes from
    127.0.0.1."""
    portal.clock.advance(timedelta(minutes=1))


def test_a_new_patient_creates_an_account_and_signs_in(page, look: Look) -> None:
    page.goto("/")
    look(page, "start")
    page.locator("main a[href='/register']").first.click()
    at(page, "/register")
    look(page, "register")

    submit(page, "email")  # nothing filled in: the error summary says what to fix
    summary = page.locator(".error-summary[role=alert]")
    summary.wait_for()
    look(page, "register-errors")
    first_link = summary.locator("a[href^='#']").first
    target = str(first_link.get_attribute("href"))
    first_link.click()
    assert page.evaluate("document.activeElement.id") == target.removeprefix("#")

    email = f"browser-{uuid4().hex[:10]}@example.org"
    page.locator("input[name=given_name]").fill("Ana")
    page.locator("input[name=family_name]").fill("Example")
    page.locator("input[name=birth_day]").fill("29")
    page.locator("input[name=birth_month]").fill("2")
    page.locator("input[name=birth_year]").fill("1980")
    page.locator("input[name=email]").fill(email)
    page.locator("input[name=password]").fill(PASSWORD)
    submit(page, "email")
    signed_in(page)  # a new account is signed in at once
    look(page, "appointments-empty")

    sign_out(page)
    page.goto("/appointments")
    at(page, "/sign-in")
    sign_in(page, look, email, PASSWORD, name="sign-in-again")
    signed_in(page)


def test_wrong_password_is_told_beside_the_field(page, portal, look: Look) -> None:
    patient = new_patient(portal)
    sign_in(page, look, patient.email, "not the password at all")
    page.locator(".error-summary[role=alert]").wait_for()
    look(page, "sign-in-refused")
    assert page.url.endswith("/sign-in")


def test_two_factor_is_turned_on_and_asked_at_the_next_sign_in(page, portal, look: Look) -> None:
    patient = new_patient(portal)
    sign_in(page, look, patient.email, patient.password)
    signed_in(page)
    page.goto("/security")
    look(page, "security")
    page.locator("main a[href='/security/two-factor']").first.click()
    at(page, "/security/two-factor")
    look(page, "two-factor-enrol")
    qr = page.locator("main img[src*='/security/two-factor/qr']")
    assert qr.count() == 1, "no QR code image"
    assert qr.get_attribute("alt"), "the QR code has no text alternative"
    assert page.evaluate("(img) => img.naturalWidth > 0", qr.element_handle()), "QR did not load"
    secret = shown_secret(page)

    from tests.support import totp_now

    page.locator("input[name=code]").fill(totp_now(secret, portal.clock))
    submit(page, "code")
    page.locator("main #recovery-codes li").first.wait_for()
    assert page.locator("main #recovery-codes li").count() >= 8, (
        "fewer recovery codes than promised"
    )
    look(page, "two-factor-recovery-codes")

    sign_out(page)
    portal.clock.advance(timedelta(seconds=30))  # a fresh code: the last one is used up
    sign_in(page, look, patient.email, patient.password, name="sign-in-with-2fa")
    second_factor(page, look, secret, portal.clock)
    signed_in(page)
    look(page, "appointments-after-2fa")


def test_booking_from_exam_to_confirmation_and_calendar_file(
    page, portal, look: Look, tmp_path: Path
) -> None:
    patient = new_patient(portal)
    sign_in(page, look, patient.email, patient.password)
    signed_in(page)
    book_first_slot(page, look)
    look(page, "booked")
    (booked,) = my_appointments(portal, patient)
    assert booked["status"] == "booked"
    assert page.url.endswith(f"/appointments/{booked['id']}/booked")
    text = page.locator("main").inner_text()
    assert EXAM in text
    assert PLACE_ADDRESS in text

    with page.expect_download() as download:
        page.locator("main a[href$='.ics']").first.click()
    calendar = download.value.path().read_text()
    assert calendar.startswith("BEGIN:VCALENDAR")
    assert "BEGIN:VEVENT" in calendar
    assert EXAM in calendar.replace("\\,", ",")

    page.goto("/appointments")
    look(page, "appointments-one")
    assert page.locator(f"main a[href='/appointments/{booked['id']}']").count() >= 1


def test_an_appointment_is_rescheduled(page, portal, look: Look) -> None:
    patient = new_patient(portal)
    before = booked_through_api(portal, patient)
    sign_in(page, look, patient.email, patient.password)
    signed_in(page)
    page.locator(f"main a[href='/appointments/{before['id']}']").first.click()
    at(page, APPOINTMENT_PAGE)
    look(page, "appointment")
    page.locator("main a[href$='/reschedule']").first.click()
    at(page, "/appointments/[0-9a-f-]{36}/reschedule")
    look(page, "reschedule")
    choose_first(page, "day")
    look(page, "reschedule-times")
    times = page.locator("main input[type=radio][name=start]")
    assert times.count() >= 2, "fewer than two times to move to"
    times.last.check()
    chosen = str(times.last.get_attribute("value"))
    submit(page, "start")
    page.locator("main form[method=post i] input[name=start]").wait_for(state="attached")
    look(page, "reschedule-check")
    assert TIME_WITH_ZONE.search(page.locator("main").inner_text()), "new time without zone"
    confirm(page)
    at(page, APPOINTMENT_PAGE)
    look(page, "rescheduled")

    (after,) = my_appointments(portal, patient)
    assert after["id"] == before["id"]
    assert after["start"] != before["start"]
    assert chosen[:16] in (after["start"][:16], after["start"])


def test_an_appointment_is_cancelled(page, portal, look: Look) -> None:
    patient = new_patient(portal)
    booked = booked_through_api(portal, patient)
    sign_in(page, look, patient.email, patient.password)
    signed_in(page)
    page.goto(f"/appointments/{booked['id']}")
    page.locator("main a[href$='/cancel']").first.click()
    at(page, "/appointments/[0-9a-f-]{36}/cancel")
    look(page, "cancel")
    page.locator("[name=reason]").fill("I feel better")
    confirm(page)
    page.wait_for_url(lambda url: not url.endswith("/cancel"))
    look(page, "cancelled")
    (after,) = my_appointments(portal, patient)
    assert after["status"] == "cancelled"


def test_spanish_and_back_keeps_the_page(page, portal, look: Look) -> None:
    page.goto("/sign-in")
    assert page.locator("h1").inner_text().strip() == "Sign in"
    page.locator("a[href*='lang=es']").first.click()
    at(page, "/sign-in")
    assert page.locator("html").get_attribute("lang") == "es"
    assert page.locator("h1").inner_text().strip() == "Iniciar sesión"
    look(page, "sign-in-es")

    patient = new_patient(portal)
    page.locator("input[name=email]").fill(patient.email)
    page.locator("input[name=password]").fill(patient.password)
    submit(page, "password")
    signed_in(page)
    assert page.locator("html").get_attribute("lang") == "es", "the language was not kept"
    look(page, "appointments-es")

    page.goto("/book")
    page.locator("main input[type=radio][name=appointment_type_id]").first.check()
    submit(page, "appointment_type_id")
    at(page, "/book/location")
    spanish_heading = page.locator("h1").inner_text()
    look(page, "book-location-es")
    page.locator("a[href*='lang=en']").first.click()
    at(page, "/book/location")
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator("main input[type=radio][name=location_id]").count() >= 1, (
        "switching language lost the exam chosen"
    )
    assert page.locator("h1").inner_text() != spanish_heading
    look(page, "book-location-en")


def test_sign_out_everywhere_ends_every_session(browser, page, portal, look: Look) -> None:
    patient = new_patient(portal)  # its API session is one of "everywhere"
    other = new_context(browser, portal)
    try:
        other_page = other.new_page()
        sign_in(other_page, look, patient.email, patient.password, name="sign-in-other")
        signed_in(other_page)
        sign_in(page, look, patient.email, patient.password)
        signed_in(page)
        page.goto("/security")
        page.locator("form[action='/security/sign-out-everywhere'] button[type=submit]").click()
        page.wait_for_url(lambda url: "/security" not in url)
        look(page, "signed-out-everywhere")

        other_page.goto("/appointments")
        at(other_page, "/sign-in")
        with portal.api() as api:
            assert api.get("/v1/appointments", headers=patient.headers).status_code == 401
    finally:
        other.close()


def test_without_javascript_a_patient_signs_in_and_books(browser, portal, look: Look) -> None:
    context = look.without_scripts(new_context(browser, portal, java_script_enabled=False))
    try:
        page = context.new_page()
        patient = new_patient(portal)
        sign_in(page, look, patient.email, patient.password)
        signed_in(page)
        book_first_slot(page, look)
        look(page, "booked")
        (booked,) = my_appointments(portal, patient)
        assert booked["status"] == "booked"
    finally:
        context.close()


ZOOMED = {"width": 320, "height": 640}
"""A 640-pixel-wide window at 200 % zoom lays pages out in 320 CSS pixels (also WCAG's
reflow width: 1280 at 400 %); device_scale_factor 2 renders them as the zoomed page."""


def test_at_200_percent_zoom_nothing_scrolls_sideways(browser, portal, look: Look) -> None:
    context = new_context(browser, portal, viewport=ZOOMED, device_scale_factor=2)
    try:
        page = context.new_page()
        wide = {}
        for path in ("/", "/sign-in", "/register", "/forgot-password"):
            page.goto(path)
            wide[path] = horizontal_overflow(page)
        patient = new_patient(portal)
        sign_in(page, look, patient.email, patient.password)
        signed_in(page)
        booked = booked_through_api(portal, patient)
        for path in (
            "/appointments",
            f"/appointments/{booked['id']}",
            "/book",
            "/profile",
            "/security",
        ):
            page.goto(path)
            wide[path] = horizontal_overflow(page)
            look.folder.mkdir(parents=True, exist_ok=True)
            page.screenshot(
                path=str(
                    look.folder / f"{path.strip('/').replace('/', '-') or 'start'}-zoom200.png"
                ),
                full_page=True,
            )
        assert {path: px for path, px in wide.items() if px > 0} == {}, (
            "pages wider than the window at 200 % zoom (CSS px too wide)"
        )
    finally:
        context.close()
