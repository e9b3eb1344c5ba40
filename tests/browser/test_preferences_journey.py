""" "How we contact you" in headless Chromium: a patient turns text messages on, picks the
language, quiet hours and time zone, and saves; with JavaScript the notifications switch
appears, registers the service worker and, when the browser cannot subscribe (no push
service here), the page says what to do; without JavaScript the page still saves and
says notifications need it. No script the page's CSP refuses. Screenshots and axe-core
on every page."""

from datetime import timedelta

import pytest

from tests.browser.conftest import Look, new_context
from tests.browser.steps import at, new_patient, sign_in, signed_in, submit
from tests.support import patient_of

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


@pytest.fixture(autouse=True)
def own_minute(portal):
    """Each test in its own minute of the server's clock (sign-in budgets count per minute)."""
    portal.clock.advance(timedelta(minutes=1))


def with_phone(portal, patient) -> None:
    with portal.api() as api:
        changed = api.patch(
            "/v1/patients/me", headers=patient.headers, json={"phone": "(215) 555-0111"}
        )
        assert changed.status_code == 200, changed.text


def test_a_patient_chooses_how_they_hear_from_the_centre(page, portal, look: Look) -> None:
    refused: list[str] = []
    page.on(
        "console",
        lambda message: (
            refused.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    patient = new_patient(portal)
    with_phone(portal, patient)
    sign_in(page, look, patient.email, patient.password)
    signed_in(page)
    page.locator("nav a[href='/preferences']").click()
    at(page, "/preferences")
    look(page, "preferences")
    # push.js ran: the switch is there, the "needs JavaScript" note is not.
    assert page.locator("#push").is_visible()
    assert page.locator("#push").is_enabled()
    assert not page.locator("#push-needs-js").is_visible()
    assert page.locator("#email").is_checked()

    page.get_by_label("Text message (SMS)").check()
    page.locator("label[for='language-es']").click()
    page.get_by_label("From").select_option("21:00")
    page.get_by_label("Until").select_option("07:30")
    page.get_by_label("Your time zone").select_option("America/Chicago")
    submit(page, "language")
    at(page, "/preferences")
    page.locator(".banner[role=status]").wait_for()
    look(page, "preferences-saved")
    assert page.locator("#sms").is_checked()
    assert page.locator("#quiet_from").input_value() == "21:00"
    prefs = portal.runtime.services.preferences.preferences(
        patient_of(portal.runtime, patient.email)
    )
    assert prefs.allows("sms")
    assert (prefs.language, str(prefs.quiet_hours), prefs.zone) == (
        "es",
        "21:00-07:30",
        "America/Chicago",
    )

    # Notifications: the service worker registers; this machine has no push service, so
    # the browser cannot subscribe and the page says what to do, beside the switch.
    page.context.grant_permissions(["notifications"])
    page.get_by_label("Notifications on this phone or computer").check()
    submit(page, "language")
    page.locator(".error-summary[role=alert]").wait_for()
    look(page, "preferences-push-refused")
    assert "Allow notifications when your browser asks" in page.locator("#push-error").inner_text()
    registered = page.evaluate(
        "navigator.serviceWorker.getRegistration('/').then(r => r ? r.scope : '')"
    )
    assert registered == f"{portal.url}/"
    assert refused == []


def test_without_javascript_the_page_saves_and_explains_notifications(
    browser, portal, look: Look
) -> None:
    context = look.without_scripts(new_context(browser, portal, java_script_enabled=False))
    try:
        page = context.new_page()
        patient = new_patient(portal)
        sign_in(page, look, patient.email, patient.password)
        signed_in(page)
        page.goto("/preferences")
        look(page, "preferences-no-script")
        assert page.locator("#push-needs-js").is_visible()
        assert not page.locator("#push").is_visible()
        page.get_by_label("E-mail").uncheck()
        page.get_by_label("From").select_option("22:00")
        page.get_by_label("Until").select_option("08:00")
        submit(page, "language")
        at(page, "/preferences")
        page.locator(".banner[role=status]").wait_for()
        look(page, "preferences-no-script-saved")
        prefs = portal.runtime.services.preferences.preferences(
            patient_of(portal.runtime, patient.email)
        )
        assert not prefs.allows("email")
        assert str(prefs.quiet_hours) == "22:00-08:00"
        assert prefs.consent("push") is None
    finally:
        context.close()
