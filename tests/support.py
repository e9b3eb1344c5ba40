"""Helpers the tests share: a settable clock, fast (but real) argon2id, the catalog."""

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from adapters.passwords import Argon2PasswordHasher
from application.catalog_file import CatalogSpecs, parse_catalog
from application.ports import Clock
from imaging_bridge.catalog_loader import decode, demo_catalog_text

# A Monday, before the demo catalog's December closures.
T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


class SettableClock(Clock):
    def __init__(self, now: datetime = T0) -> None:
        self._now = now

    def now(self) -> datetime:
        return self._now

    def set(self, now: datetime) -> None:
        self._now = now

    def advance(self, delta: timedelta) -> None:
        self._now += delta


def fast_hasher() -> Argon2PasswordHasher:
    """Real argon2id with low cost, so tests register users quickly."""
    return Argon2PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def demo_specs() -> CatalogSpecs:
    return parse_catalog(decode(demo_catalog_text()))


def demo_entry(kind: str, code: str) -> dict:
    """One entry of the demo catalog as its aggregate holds it: ``kind`` is
    ``locations``, ``resources`` or ``appointment_types``."""
    return next(spec for spec in getattr(demo_specs(), kind) if spec["code"] == code)


def register(client, email: str, password: str = "correct horse battery staple") -> dict[str, str]:
    """Register a patient through the API, sign in, and return the auth header."""
    return register_patient(
        client,
        {
            "email": email,
            "password": password,
            "given_name": "Test",
            "family_name": "Patient",
            "birth_date": "1980-02-29",
        },
    )


def register_patient(client, patient: dict[str, str]) -> dict[str, str]:
    """Register ``patient`` (the registration body) through the API, sign in with its
    email and password, and return the auth header."""
    response = client.post("/v1/patients/register", json=patient)
    assert response.status_code == 201, response.text
    credentials = {"username": patient["email"], "password": patient["password"]}
    token = client.post("/v1/auth/token", data=credentials)
    assert token.status_code == 200, token.text
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


def catalog_ids(client) -> tuple[dict[str, str], dict[str, str]]:
    """Appointment type ids and location ids by code."""
    types = {t["code"]: t["id"] for t in client.get("/v1/catalog/appointment-types").json()}
    locations = {loc["code"]: loc["id"] for loc in client.get("/v1/catalog/locations").json()}
    return types, locations


def post_booking(
    client,
    headers: dict[str, str],
    start: str,
    exam: str = "ct-head",
    location: str = "riverside",
    ids: tuple[dict[str, str], dict[str, str]] | None = None,
):
    """POST /v1/appointments for an exam at a location (by code): the response, unchecked.
    ``ids`` saves reading the catalog again (see ``catalog_ids``)."""
    types, locations = ids or catalog_ids(client)
    return client.post(
        "/v1/appointments",
        headers=headers,
        json={
            "appointment_type_id": types[exam],
            "location_id": locations[location],
            "start": start,
        },
    )


def book(client, headers, types, locations, location, start) -> dict:
    """An X-ray booked at ``location`` (code): the appointment (201 asserted)."""
    response = post_booking(client, headers, start, "xr-chest", location, (types, locations))
    assert response.status_code == 201, response.text
    return response.json()


def totp_now(secret: str, clock: Clock) -> str:
    """The code an authenticator app would show at the clock's time."""
    import pyotp

    return str(pyotp.TOTP(secret).at(clock.now()))


def staff_headers(
    client,
    runtime,
    clock: Clock,
    role: str,
    email: str | None = None,
    centres: list | None = None,
    password: str = "staff member long password",
) -> dict[str, str]:
    """A staff account made by the registry, signed in through the API with two factors
    (password, enrolment, first code): the Authorization header of its session."""
    from domain.context import system_actor

    email = email or f"{role}@staff.example.org"
    runtime.services.registry.open_staff_account(
        email=email, password=password, role=role, centres=centres or [], actor=system_actor()
    )
    first = client.post("/v1/auth/token", data={"username": email, "password": password})
    assert first.status_code == 200, first.text
    restricted = {"Authorization": f"Bearer {first.json()['access_token']}"}
    enrolment = client.post("/v1/auth/2fa/enrol", headers=restricted)
    assert enrolment.status_code == 200, enrolment.text
    confirmed = client.post(
        "/v1/auth/2fa/confirm",
        headers=restricted,
        json={"code": totp_now(enrolment.json()["secret"], clock)},
    )
    assert confirmed.status_code == 200, confirmed.text
    return {"Authorization": f"Bearer {confirmed.json()['tokens']['access_token']}"}


def audit_rows(url: str, resource_id: str) -> list[tuple[str, str, str, str, str]]:
    """(action, resource, role, reason, patient id) of the access-log rows about one
    resource, oldest first (flush a batching log before calling)."""
    import psycopg

    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT action, resource, role, reason, coalesce(patient_id::text, '')"
            " FROM phi_access_log WHERE resource_id = %s ORDER BY id",
            (resource_id,),
        ).fetchall()
    return [tuple(row) for row in rows]


HL7_CORPUS = Path(__file__).resolve().parent / "hl7_corpus"
"""The corpus of public HL7 messages, kept in the repository (a byte-for-byte copy of the
team's shared corpus; where each message comes from is in its ``SOURCES.md``)."""


def hl7_corpus() -> Path:
    """The folder of the HL7 corpus (always present: it is part of the repository)."""
    return HL7_CORPUS


def lift_booking_caps(runtime) -> None:
    """For set-ups where a few patients hold many bookings (the caps have tests of their
    own): no per-patient cap and no hourly booking budget."""
    from application.scheduling import BookingLimits

    runtime.services.scheduling.limits = BookingLimits(
        per_exam_type=0, overall=0, requests_per_hour=0
    )


# Orders and results from the RIS (issue 10) ------------------------------------------

VIEWER = "https://viewer.example.test/open?study={accession}&token={token}"
"""A result viewer's URL template, as RESULT_VIEWER_URL would give it."""


def configure_viewer(runtime, template: str = VIEWER, seconds: int = 300) -> None:
    """Give the runtime a result viewer (RESULT_VIEWER_URL), as ``lift_booking_caps``
    changes the booking limits."""
    from application.ris.patient_records import ViewerSettings

    runtime.services.records.viewer = ViewerSettings(
        url_template=template, lifetime=timedelta(seconds=seconds)
    )


def place_order(runtime, patient_id, n: int, procedure: str = "70551", text: str = "MRI brain"):
    """An order the RIS placed for the patient (placer ``PLC:P<n>``, filler ``RIS:F<n>``,
    accession ``ACC<n>``), through the same application call an ORM^O01 makes: its id."""
    from application.ris.orders import Orders
    from domain.context import system_actor
    from domain.ris.order import OrderIntent

    orders = Orders(runtime.services.scheduling)
    outcome = orders.receive_order(
        intent=OrderIntent.NEW,
        patient_id=patient_id,
        placer=f"PLC:P{n}",
        filler=f"RIS:F{n}",
        accession_number=f"ACC{n}",
        procedure_code=procedure,
        procedure_text=text,
        reason="",
        message_id=f"orm-{n}",
        actor=system_actor(source="hl7-inbound"),
    )
    assert outcome == "applied"
    order = orders.find_order(f"PLC:P{n}", f"RIS:F{n}")
    assert order is not None
    return order.id


def report_result(runtime, n: int, status: str = "final", observed: datetime = T0) -> None:
    """The RIS's result (a reference: accession ``ACC<n>``) for order ``n``, as an
    ORU^R01 records it."""
    from application.ris.orders import Orders
    from domain.context import system_actor
    from domain.ris.order import ResultReference

    outcome = Orders(runtime.services.scheduling).reference_result(
        ResultReference(f"ACC{n}", "", "", status, observed, ""),
        placer=f"PLC:P{n}",
        filler=f"RIS:F{n}",
        patient_identifier="",
        message_id=f"oru-{n}-{status}",
        actor=system_actor(source="hl7-inbound"),
    )
    assert outcome == "applied"


RIS_BIRTH = date(1985, 3, 4)
"""The birth date of ``ris_patient``'s patient."""


def ris_patient(runtime, mrn: str = "MRN-ANA-1", family: str = "López") -> str:
    """A patient the RIS sent us (ADT^A04: Ana, born ``RIS_BIRTH``, with its MRN) and no
    portal account yet; the registry's read model (the name lookup) caught up with it."""
    from domain.context import system_actor

    patient_id = runtime.services.registry.record_patient_from_ris(
        identifiers=[("CENTRE", mrn)],
        given_name="Ana",
        family_name=family,
        birth_date=RIS_BIRTH,
        phone=None,
        update_demographics=True,
        actor=system_actor(source="hl7-inbound"),
        administrative_sex="F",
    )
    settle(runtime)
    return str(patient_id)


def settle(runtime) -> None:
    """Wait until every read model has caught up with the scheduling and registry logs."""
    from application.base import Position

    for name in ("scheduling", "registry"):
        head = getattr(runtime.services, name).recorder.max_notification_id() or 0
        if head:
            assert runtime.services.sync.wait(Position(name, head))


RESET_LINK_TOKEN = r"[?#]token=([^\s&]+)"
"""The token in a password-reset link (``{PUBLIC_BASE_URL}/reset-password?token=...``, or
a ``RESET_LINK`` that puts it after ``#``), as a regular expression with one group."""


def reset_link_token_in(text: str) -> str:
    """The token of the (first) reset link in a message's text."""
    import re

    found = re.search(RESET_LINK_TOKEN, text)
    assert found, "no reset link in the message"
    return found.group(1)


def sent_mail(runtime) -> list[Any]:
    """Send every e-mail delivery due (password resets, notices) through the channel
    worker into the development Maildir (``DATA_DIR/mail``), as a running worker would;
    the messages sent, in the order they were queued."""
    import mailbox
    from email import message_from_bytes
    from email import policy as email_policy

    from adapters.channels.maildir import MaildirSender
    from adapters.channels.setup import notice_settings
    from adapters.channels.worker import ChannelWorker
    from domain.ris.message_delivery import MessageDelivery, RetryPolicy

    app = runtime.services.deliveries.deliveries
    folder = runtime.settings.data_dir / "mail"
    worker = ChannelWorker(
        app,
        {"email": MaildirSender(folder, runtime.settings.mail_from)},
        runtime.services.registry.patient_by_id,
        runtime.services.clock,
        RetryPolicy(),
        notice_settings(runtime.settings),
    )
    queued = [
        event.originator_id
        for notification in app.recorder.select_notifications(start=1, limit=100_000)
        if isinstance(event := app.mapper.to_domain_event(notification), MessageDelivery.Queued)
        and event.channel == "email"
    ]
    for delivery_id in queued:
        delivery = app.delivery(delivery_id)
        if delivery.is_due(runtime.services.clock.now()):
            worker.send(delivery_id, delivery.version)
    box = mailbox.Maildir(folder, create=True)
    by_delivery = {}
    for key in box.keys():  # noqa: SIM118 - a Maildir is not a dict
        message = message_from_bytes(box.get_bytes(key), policy=email_policy.default)
        by_delivery[message["Message-ID"].strip("<>").split("@")[0]] = message
    return [by_delivery[str(d)] for d in queued if str(d) in by_delivery]


# The web portal (api.web) through its forms -------------------------------------------

PORTAL_PASSWORD = "correct horse battery staple"


def form_token(html: str) -> str:
    """The ``csrf_token`` of the (first) form on a page."""
    import re

    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page has no form token"
    return found.group(1)


def radio_values(html: str, name: str) -> list[str]:
    """The values of a page's radio buttons called ``name``, in page order."""
    import html as markup
    import re

    pattern = rf'<input class="radios__input" id="[^"]+" name="{name}" type="radio" value="([^"]*)"'
    return [markup.unescape(value) for value in re.findall(pattern, html)]


def register_form(email: str, password: str = PORTAL_PASSWORD, **fields: str) -> dict[str, str]:
    """The fields of the portal's create-account form (``fields`` override them)."""
    return {
        "given_name": "Ana",
        "family_name": "Example",
        "birth_day": "29",
        "birth_month": "2",
        "birth_year": "1980",
        "email": email,
        "password": password,
        **fields,
    }


def portal_register(client, email: str, password: str = PORTAL_PASSWORD, **fields: str):
    """Create a patient account through the portal's form; the client is then signed in.
    The answer (303 asserted)."""
    page = client.get("/register")
    assert page.status_code == 200, page.text
    created = client.post(
        "/register",
        data={"csrf_token": form_token(page.text), **register_form(email, password, **fields)},
        follow_redirects=False,
    )
    assert created.status_code == 303, created.text
    assert created.headers["location"] == "/appointments?done=welcome"
    return created


def patient_of(runtime, email: str):
    """The patient record the account with ``email`` signs in as (its id)."""
    account = runtime.services.registry.account_by_email(email)
    assert account is not None
    assert account.patient_id is not None
    return account.patient_id


def portal_sign_in(client, email: str, password: str = PORTAL_PASSWORD):
    """Post the sign-in form (after showing it): the answer, not followed."""
    page = client.get("/sign-in")
    return client.post(
        "/sign-in",
        data={"csrf_token": form_token(page.text), "email": email, "password": password},
        follow_redirects=False,
    )
