"""The portal's "How we contact you" page: the choices shown, saved with the form alone
(no JavaScript), a browser's push subscription sent with the form, clear errors, the
page's CSP (its own script and service worker only), the service worker itself, Spanish,
and the access log."""

import base64
import re

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from api.security import web_csp
from tests.support import audit_rows, form_token, patient_of, portal_register, register_form

pytestmark = pytest.mark.integration

PAGE = "/preferences"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def browser_keys() -> dict[str, str]:
    point = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    )
    return {"push_p256dh": b64url(point), "push_auth": b64url(b"sixteen byte key")}


def choices(page_html: str, **fields: str) -> dict[str, str]:
    """The form as a browser without JavaScript sends it, e-mail on, with ``fields``."""
    return {
        "csrf_token": form_token(page_html),
        "email": "on",
        "language": "en",
        "quiet_from": "",
        "quiet_to": "",
        "timezone": "",
        **fields,
    }


def save(portal, **fields: str):
    page = portal.get(PAGE)
    return portal.post(PAGE, data=choices(page.text, **fields), follow_redirects=False)


def test_the_page_shows_the_choices_and_works_without_javascript(portal, runtime):
    portal_register(portal, "ana@example.org")
    page = portal.get(PAGE)
    assert page.status_code == 200
    html = page.text
    assert len(re.findall(r"<h1[ >]", html)) == 1
    assert re.search(r'id="email" name="email" type="checkbox" value="on" checked', html)
    assert not re.search(r'id="sms" name="sms" type="checkbox" value="on" checked', html)
    # The push switch is off and out of the form until push.js turns it on; the page says
    # why it needs JavaScript.
    assert re.search(r'id="push" name="push" type="checkbox" value="on"[^>]*disabled', html)
    assert 'id="push-needs-js"' in html
    assert "need JavaScript" in html
    assert 'data-public-key="' + runtime.services.preferences.push_public_key + '"' in html
    # Only our own script file, never an inline one; the CSP allows just that.
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.DOTALL)
    assert [(attrs.strip(), body) for attrs, body in scripts] == [(f'src="{script_url(html)}"', "")]
    assert page.headers["content-security-policy"] == web_csp(scripts=True)
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "script-src" not in portal.get("/profile").headers["content-security-policy"]
    assert 'href="/preferences"' in portal.get("/profile").text


def script_url(html: str) -> str:
    """The address of push.js on a page (versioned by its digest)."""
    found = re.search(r'src="(/static/push\.js\?v=[0-9a-f]+)"', html)
    assert found, "the page does not load push.js"
    return found.group(1)


def test_saving_the_form_changes_the_preferences(portal, runtime):
    portal_register(portal, "bob@example.org", phone="(215) 555-0111")
    saved = save(
        portal,
        email="",
        sms="on",
        language="es",
        quiet_from="21:30",
        quiet_to="07:00",
        timezone="America/Chicago",
    )
    assert saved.status_code == 303, saved.text
    assert saved.headers["location"] == "/preferences?done=saved"
    prefs = runtime.services.preferences.preferences(patient_of(runtime, "bob@example.org"))
    assert prefs.allows("sms")
    assert not prefs.allows("email")
    assert prefs.consent("sms").source == "portal"
    assert (prefs.language, str(prefs.quiet_hours), prefs.zone) == (
        "es",
        "21:30-07:00",
        "America/Chicago",
    )
    shown = portal.get("/preferences?done=saved").text
    assert "Your choices have been saved." in shown
    assert '<option value="21:30" selected>' in shown
    assert '<option value="America/Chicago" selected>' in shown
    # Without push_control (no JavaScript), push consent is left as it was.
    assert prefs.consent("push") is None


def test_after_a_change_of_number_the_page_shows_text_messages_off(portal, runtime):
    portal_register(portal, "dee@example.org", phone="(215) 555-0111")
    assert save(portal, sms="on").status_code == 303
    profile = portal.get("/profile")
    changed = portal.post(
        "/profile",
        data={
            "csrf_token": form_token(profile.text),
            **{k: v for k, v in register_form("").items() if k not in ("email", "password")},
            "phone": "(267) 555-0199",
        },
        follow_redirects=False,
    )
    assert changed.status_code == 303, changed.text
    html = portal.get(PAGE).text
    assert re.search(r'id="sms" name="sms" type="checkbox" value="on"', html)
    assert not re.search(r'id="sms" name="sms" type="checkbox" value="on" checked', html)
    prefs = runtime.services.preferences.preferences(patient_of(runtime, "dee@example.org"))
    assert prefs.consent("sms").source == "number_changed"


def test_text_messages_need_a_phone_and_bad_choices_say_what_to_do(portal, runtime):
    portal_register(portal, "cal@example.org")
    for fields, words in (
        ({"sms": "on"}, "Add your mobile phone number in Your details first"),
        ({"quiet_from": "22:00"}, "Choose when quiet hours start and when they end"),
        ({"quiet_from": "22:00", "quiet_to": "22:00"}, "must end at a different time"),
        ({"quiet_from": "25:00", "quiet_to": "07:00"}, "Quiet hours"),
        ({"timezone": "Mars/Olympus_Mons"}, "Choose a time zone from the list"),
        ({"language": "fr"}, "Choose a language"),
    ):
        refused = save(portal, **fields)
        assert refused.status_code == 422, fields
        assert "There is a problem" in refused.text
        assert words in refused.text, fields
    prefs = runtime.services.preferences.preferences(patient_of(runtime, "cal@example.org"))
    assert prefs.consent("sms") is None
    assert prefs.quiet_hours is None
    assert prefs.language == "en"


def test_the_browser_subscription_comes_with_the_form(portal, runtime):
    portal_register(portal, "dee@example.org")
    endpoint = "https://push.example.org/send/dee"
    without = save(portal, push_control="1", push="on")
    assert without.status_code == 422
    assert "Allow notifications when your browser asks" in without.text
    saved = save(portal, push_control="1", push="on", push_endpoint=endpoint, **browser_keys())
    assert saved.status_code == 303, saved.text
    prefs = runtime.services.preferences.preferences(patient_of(runtime, "dee@example.org"))
    assert prefs.allows("push")
    assert [s.endpoint for s in prefs.push_subscriptions] == [endpoint]
    assert "1 device gets them now" in portal.get(PAGE).text
    bad = save(
        portal,
        push_control="1",
        push="on",
        push_endpoint=endpoint + "/2",
        push_p256dh="bm90IGEga2V5",
        push_auth="eA",
    )
    assert bad.status_code == 422
    assert "could not be set up for notifications" in bad.text
    local = save(
        portal,
        push_control="1",
        push="on",
        push_endpoint="http://127.0.0.1:9/push/x",
        **browser_keys(),
    )
    assert local.status_code == 422  # browsers give https endpoints: nothing else is taken
    off = save(portal, push_control="1")
    assert off.status_code == 303
    prefs = runtime.services.preferences.preferences(patient_of(runtime, "dee@example.org"))
    assert not prefs.allows("push")
    assert prefs.consent("push").source == "portal"


def test_the_page_speaks_spanish_and_is_in_the_access_log(portal, runtime):
    portal_register(portal, "eva@example.org")
    portal.get("/profile?lang=es")
    page = portal.get(PAGE)
    assert '<html lang="es">' in page.text
    assert "Cómo nos comunicamos con usted" in page.text
    save(portal, language="es")
    runtime.services.access_log.flush()
    patient_id = str(patient_of(runtime, "eva@example.org"))
    rows = [(a, r) for a, r, *_ in audit_rows(runtime.url, patient_id)]
    assert ("read", "notification_preferences") in rows
    assert ("update", "notification_preferences") in rows


def test_signed_out_the_page_asks_to_sign_in(client):
    answer = client.get(PAGE, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/sign-in?next=%2Fpreferences")


def test_the_service_worker_and_the_script_are_served(portal):
    worker = portal.get("/sw.js")
    assert worker.status_code == 200
    assert worker.headers["content-type"].startswith("text/javascript")
    assert "showNotification" in worker.text
    assert "notificationclick" in worker.text
    portal_register(portal, "fil@example.org")
    script = portal.get(script_url(portal.get(PAGE).text))
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert "pushManager.subscribe" in script.text
