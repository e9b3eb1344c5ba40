"""Every role against every endpoint, generated from the route table: each route must
declare one permission, and each role is let through or refused exactly as the matrix
in application.permissions says. A new route without a rule fails here.

An allowed call is a real one: a valid body and the ids of real objects (a booked
appointment, a patient, a dead-lettered delivery, a quarantined inbound message, a
resource's closure, ...), built for each route below, so it reaches the handler and must
get the handler's own success status; a refused call (the same valid request) gets 401
without a session and 403 for a role without the permission. A route added without a
valid call in ``ROUTES`` fails the test that compares the two tables."""

import base64
import itertools
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID

import pyotp
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.routing import APIRoute, iter_route_contexts

from adapters.clock import SystemClock
from adapters.hl7.destinations import parse_destinations
from adapters.hl7.sender import Sender
from application.errors import SecondFactorRequiredError
from application.permissions import Permission, allows
from domain.account import Account
from domain.appointment_type import AppointmentType
from domain.context import Actor, system_actor
from domain.location import Location
from domain.ris.message_delivery import REJECTED_PERMANENT, RetryPolicy
from imaging_bridge.catalog_loader import decode, demo_catalog_text
from imaging_bridge.outbound import Outbound
from tests.integration.mllp_peer import Peer, wait_until
from tests.support import (
    configure_viewer,
    lift_booking_caps,
    place_order,
    report_result,
    reset_link_token_in,
    sent_mail,
    settle,
)

pytestmark = pytest.mark.integration

ROLES = ("patient", "scheduler", "billing", "compliance", "admin", "integration")
ANONYMOUS = "anonymous"
PASSWORD = "a long enough password"
NEW_PASSWORD = "another long enough password"
PATIENT_ACTOR = Actor(id="matrix", role="patient", source="test")


def route_permissions(app) -> dict[tuple[str, str], set[Permission]]:
    found = {}
    for context in iter_route_contexts(app.routes):
        route = context.route
        if not isinstance(route, APIRoute):
            continue
        permissions = set()
        stack = list(route.dependant.dependencies)
        while stack:
            dependant = stack.pop()
            permission = getattr(dependant.call, "permission", None)
            if permission is not None:
                permissions.add(permission)
            stack.extend(dependant.dependencies)
        for method in route.methods:
            found[(method, route.path)] = permissions
    return found


def test_every_route_declares_exactly_one_permission(client):
    routes = route_permissions(client.app)
    assert len(routes) > 30
    missing = {k: v for k, v in routes.items() if len(v) != 1}
    assert missing == {}, f"routes without exactly one permission rule: {missing}"


# --- the world the calls act on -------------------------------------------------------


@dataclass
class Call:
    """One request: its concrete path, body and query, and whose session sends it
    (``account``; by default the caller's role account)."""

    path: str
    json: Any = None
    data: dict[str, str] | None = None
    params: dict[str, str] | None = None
    account: UUID | None = None


@dataclass
class World:
    """Real objects for the calls: accounts per role, a patient with appointments in
    each state a route needs, catalog entries, dead letters, quarantined messages."""

    runtime: Any
    client: Any
    clock: Any
    accounts: dict[str, UUID] = field(default_factory=dict)
    objects: dict[str, Any] = field(default_factory=dict)
    _counter: Iterator[int] = field(default_factory=itertools.count)
    _resets_read: set[str] = field(default_factory=set)

    @property
    def services(self) -> Any:
        return self.runtime.services

    def n(self) -> int:
        return next(self._counter)

    def tick(self, seconds: float) -> None:
        self.clock.advance(timedelta(seconds=seconds))

    def new_account(self, role: str, password: str = PASSWORD) -> UUID:
        """A fresh account of ``role`` (a patient registers; staff get an account)."""
        address = f"matrix.{role}.{self.n()}@example.org"
        if role == "patient":
            self.services.registry.register_patient(
                email=address,
                password=password,
                given_name="Mat",
                family_name="Rix",
                birth_date=date(1990, 1, 1),
                phone=None,
                actor=system_actor(),
            )
            return Account.create_id(address)
        return self.services.registry.open_staff_account(
            email=address, password=password, role=role, centres=[], actor=system_actor()
        )

    def token(self, account_id: UUID) -> str:
        """A fresh session of the account (staff sessions count as two-factor ones)."""
        account = self.services.registry.account(account_id)
        amr = ("pwd",) if account.role == "patient" else ("pwd", "otp")
        return self.services.auth._start_session(account, amr).access_token

    def headers(self, caller: str, call: Call) -> dict[str, str]:
        if caller == ANONYMOUS:
            return {}
        account = call.account or self.accounts[caller]
        return {"Authorization": f"Bearer {self.token(account)}"}

    def email_of(self, account_id: UUID) -> str:
        return self.services.registry.account(account_id).email

    def enrolled(self, account_id: UUID) -> str:
        """Start TOTP enrolment for the account; its secret."""
        return self.services.auth.enrol_account(account_id, system_actor()).secret

    def code(self, secret: str) -> str:
        return str(pyotp.TOTP(secret).at(self.clock.now()))

    def reset_token(self, account_id: UUID) -> str:
        """Ask for a reset link as the account's owner would, and read it from the e-mail
        the channel's worker sends."""
        address = self.email_of(account_id)
        self.services.auth.request_password_reset(address, system_actor())
        for message in sent_mail(self.runtime):
            if message["To"] != address or message["Message-ID"] in self._resets_read:
                continue
            self._resets_read.add(message["Message-ID"])
            body = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
            return reset_link_token_in(body)
        raise AssertionError(f"no reset link for {address} was sent")


def slot_from(slots: list[datetime], at_or_after: datetime) -> datetime:
    return next(s for s in slots if s >= at_or_after)


def iso(moment: datetime) -> str:
    return moment.isoformat()


def build_world(runtime, client, clock) -> World:
    """The objects every route's valid call names (made through the applications, as the
    API would make them), with the clock left just after the no-show appointment's start."""
    lift_booking_caps(runtime)
    w = World(runtime, client, clock)
    for role in ROLES:
        w.accounts[role] = w.new_account(role)
    services = w.services
    patient = services.registry.account(w.accounts["patient"]).patient_id
    ct_head = AppointmentType.create_id("ct-head")
    riverside = Location.create_id("riverside")
    now = clock.now()
    found = client.get(
        "/v1/slots",
        params={
            "appointment_type_id": str(ct_head),
            "location_id": str(riverside),
            "start": iso(now),
            "end": iso(now + timedelta(days=5)),
        },
    )
    assert found.status_code == 200, found.text
    slots = [datetime.fromisoformat(s["start"]) for s in found.json()]

    def book(at: datetime) -> UUID:
        written = services.scheduling.book(
            patient_id=patient,
            appointment_type_id=ct_head,
            location_id=riverside,
            start=slot_from(slots, at),
            actor=PATIENT_ACTOR,
        )
        return written.appointment.id

    day = timedelta(days=1)
    hour = timedelta(hours=1)
    no_show = book(now + hour)
    to_complete = book(now + 3 * hour)
    to_check_in = book(now + 4 * hour)
    written = services.scheduling.check_in(to_complete, actor=system_actor())
    w.objects.update(
        patient=patient,
        ct_head=ct_head,
        riverside=riverside,
        no_show=no_show,
        to_complete=to_complete,
        to_check_in=to_check_in,
        booked=book(now + day + 3 * hour),
        to_cancel=book(now + 2 * day + 3 * hour),
        to_reschedule=book(now + 2 * day + 4 * hour),
        reschedule_to=slot_from(slots, now + 3 * day + 3 * hour),
        book_at=slot_from(slots, now + 3 * day + 5 * hour),
    )
    last = services.scheduling.modify(
        w.objects["booked"], notes="given", actor=PATIENT_ACTOR, owner=patient
    )
    assert services.sync.wait(written.position)
    assert services.sync.wait(last.position)

    # Staff accounts for the admin's routes: one to read, one per change.
    for name in ("staff_target", "role_target", "disable_target", "enable_target"):
        w.objects[name] = w.new_account("scheduler")
    services.auth.disable_account(w.objects["enable_target"], "on leave", system_actor())

    # A resource with a closure and a block per catalog role to remove, and days free
    # for each role to close: riverside-mri-2 has no bookings.
    admin = {"Authorization": f"Bearer {w.token(w.accounts['admin'])}"}
    base = "/v1/staff/catalog/resources/riverside-mri-2"
    for k, role in enumerate(("scheduler", "admin")):
        closed = date(2027, 2, 1 + k)
        block_start = datetime(2027, 2, 10 + k, 9, 0)
        assert client.post(f"{base}/closures", json={"date": str(closed)}, headers=admin).is_success
        block = {"start": block_start.isoformat(), "end": (block_start + hour).isoformat()}
        assert client.post(f"{base}/blocks", json=block, headers=admin).is_success
        w.objects[f"closed_day_{role}"] = str(closed)
        w.objects[f"block_start_{role}"] = block_start.strftime("%Y-%m-%dT%H:%M")
        w.objects[f"close_day_{role}"] = str(date(2027, 3, 1 + k))
        w.objects[f"block_{role}"] = {
            "start": f"2027-03-{10 + k}T09:00",
            "end": f"2027-03-{10 + k}T10:00",
            "reason": "service",
        }
    # The demo catalog file's own entries, as JSON (the PUT bodies are those entries).
    catalog = json.loads(json.dumps(decode(demo_catalog_text()), default=str))
    w.objects["location_entry"] = catalog["locations"][0]
    w.objects["resource_entry"] = next(
        r for r in catalog["resources"] if r["code"] == "riverside-xr-1"
    )
    w.objects["type_entry"] = next(
        t for t in catalog["appointment_types"] if t["code"] == "ct-head"
    )
    w.objects["hours"] = next(r for r in catalog["resources"] if r["code"] == "riverside-mri-2")[
        "hours"
    ]

    # Signing in: a patient for the password form and refresh tokens; a member of staff
    # with a second factor for the challenge.
    w.objects["sign_in"] = w.new_account("patient")
    totp_account = w.new_account("scheduler")
    secret = w.enrolled(totp_account)
    services.auth.confirm_account(totp_account, w.code(secret), system_actor())
    w.objects["totp_account"] = totp_account
    w.objects["totp_secret"] = secret

    # An order from the RIS with its result, and a viewer to open it in.
    configure_viewer(runtime)
    place_order(runtime, patient, 1)
    report_result(runtime, 1)
    settle(runtime)
    [result] = services.records.results(patient)
    w.objects["result"] = result.id
    w.objects["ris_patient"] = services.registry.record_patient_from_ris(
        identifiers=[("CENTRE", "MATRIX-RIS")],
        given_name="Ris",
        family_name="Known",
        birth_date=date(1970, 7, 7),
        phone=None,
        update_demographics=True,
        actor=system_actor(source="hl7-inbound"),
    )

    # A secure thread the patient started.
    w.objects["thread"] = services.messaging.start(
        patient, "About my scan", "Is it normal?", PATIENT_ACTOR
    ).thread_id

    clock.set(slot_from(slots, now + hour) + timedelta(minutes=5))  # the no-show may be marked
    return w


def quarantined_messages(w: World, count: int) -> list[str]:
    """Inbound messages of a type we do not take: stored, refused with AR, quarantined."""
    from adapters.hl7.listener import BackgroundListener, ListenerConfig
    from tests.integration.test_hl7_listener import adt, exchange

    config = ListenerConfig(host="127.0.0.1", port=0)
    with BackgroundListener(w.runtime.url, config, cipher=w.runtime.cipher) as running:
        for k in range(count):
            message = adt(f"MATRIX{k}").replace(b"ADT^A08^ADT_A01", b"MDM^T02")
            assert b"MSA|AR|" in exchange(running.port, message)
    quarantined = w.services.hl7_inbound.list("quarantined", 50)
    assert len(quarantined) == count
    return [str(m.id) for m in quarantined]


def dead_letters(w: World, outbound: Outbound, count: int) -> list[str]:
    """Registrations the delivery policy turned into ADT^A04 deliveries, each sent once
    to a RIS that refuses it for good (AR): dead letters."""
    for _ in range(count):
        w.new_account("patient")
    sender = Sender(
        outbound.deliveries,
        parse_destinations(outbound.settings.hl7_destinations),
        SystemClock(),
        RetryPolicy(),
    )
    desk = outbound.desk()

    def registrations() -> list[Any]:
        found = desk.search(status="queued", limit=500)
        return [d for d in found if d.message_type == "ADT^A04"]

    wait_until(lambda: len(registrations()) >= count)
    chosen = registrations()[:count]
    for delivery in chosen:
        assert sender.send(delivery.id, delivery.version) == REJECTED_PERMANENT
    wait_until(lambda: len(desk.search(status="dead_lettered", limit=500)) == count)
    return [str(d.id) for d in chosen]


@pytest.fixture
def world(runtime, client, clock) -> Iterator[World]:
    """The world, with the outbound side's delivery policy and read model running, and
    a RIS that refuses everything (AR): some registrations end as dead letters to look at
    and redrive. (Sends happen here, not on a queue: the calls are about the API.)"""
    with Peer(default="AR") as ris:
        settings = runtime.settings.model_copy(
            update={"hl7_destinations": f"ris=127.0.0.1:{ris.port};timeout=10"}
        )
        outbound = runtime.start_outbound(settings, pump=False, workers=0, clock=SystemClock())
        try:
            w = build_world(runtime, client, clock)
            shown, *redriven = dead_letters(w, outbound, 3)
            w.objects["delivery"] = shown
            w.objects["dead_letter_admin"], w.objects["dead_letter_integration"] = redriven
            shown, *replayed = quarantined_messages(w, 3)
            w.objects["inbound"] = shown
            w.objects["inbound_admin"], w.objects["inbound_integration"] = replayed
            yield w
        finally:
            outbound.stop()


# --- one valid call per route ---------------------------------------------------------

Build = Callable[[World, str], Call]


@dataclass(frozen=True)
class Route:
    """What an allowed caller gets from the real handler, and how to make the call;
    ``otherwise``: the roles whose valid call the handler refuses, with status and code."""

    status: int
    build: Build
    otherwise: dict[str, tuple[int, str]] = field(default_factory=dict)


def fixed(path: str, **kwargs: Any) -> Build:
    return lambda w, caller: Call(path.format(**w.objects), **kwargs)


def own(path: str, role_object: str, **kwargs: Any) -> Build:
    """A call on ``{role_object}_{caller}`` (one object per allowed role, since the call
    changes it); refused callers name any of them."""

    def build(w: World, caller: str) -> Call:
        mine = f"{role_object}_{caller}"
        key = mine if mine in w.objects else f"{role_object}_admin"
        return Call(path.format(target=w.objects[key], **w.objects), **kwargs)

    return build


def with_body(path: str, body: Callable[[World, str], Any], **kwargs: Any) -> Build:
    return lambda w, caller: Call(path.format(**w.objects), json=body(w, caller), **kwargs)


def fresh_account_call(path: str, body: Callable[[World, UUID], Any]) -> Build:
    """A call that changes the caller's own account: made by a fresh account of the
    caller's role, set up by ``body``."""

    def build(w: World, caller: str) -> Call:
        account = w.new_account(caller if caller != ANONYMOUS else "patient")
        return Call(path, json=body(w, account), account=account)

    return build


def confirm_body(w: World, account: UUID) -> dict[str, str]:
    return {"code": w.code(w.enrolled(account))}


def disable_body(w: World, account: UUID) -> dict[str, str]:
    secret = w.enrolled(account)
    w.services.auth.confirm_account(account, w.code(secret), system_actor())
    w.tick(31)  # a code is accepted once: the next time step's
    return {"password": PASSWORD, "code": w.code(secret)}


def second_factor(w: World, caller: str) -> Call:
    w.tick(31)
    try:
        w.services.auth.sign_in(w.email_of(w.objects["totp_account"]), PASSWORD, system_actor())
    except SecondFactorRequiredError as required:
        challenge = required.challenge
    else:
        raise AssertionError("the account has a second factor")
    return Call(
        "/v1/auth/token/second-factor",
        json={"challenge": challenge, "code": w.code(w.objects["totp_secret"])},
    )


def refresh(w: World, caller: str) -> Call:
    account = w.services.registry.account(w.objects["sign_in"])
    pair = w.services.auth._start_session(account, ("pwd",))
    return Call("/v1/auth/refresh", json={"refresh_token": pair.refresh_token})


def reset_request(w: World, caller: str) -> Call:
    w.tick(301)  # past the per-address budget's window
    return Call("/v1/auth/password-reset", json={"email": w.email_of(w.objects["sign_in"])})


def reset_confirm(w: World, caller: str) -> Call:
    w.tick(301)
    account = w.new_account("patient")
    return Call(
        "/v1/auth/password-reset/confirm",
        json={"token": w.reset_token(account), "new_password": NEW_PASSWORD},
    )


def register(w: World, caller: str) -> Call:
    return Call(
        "/v1/patients/register",
        json={
            "email": f"matrix.new.{caller}.{w.n()}@example.org",
            "password": PASSWORD,
            "given_name": "New",
            "family_name": "Patient",
            "birth_date": "1985-05-05",
        },
    )


def ris_patient(w: World) -> UUID:
    """A patient the RIS sent us (ADT), booked nowhere yet: reachable by every desk."""
    return w.services.registry.record_patient_from_ris(
        identifiers=[("CENTRE", f"MATRIX-{w.n()}")],
        given_name="Ris",
        family_name="Known",
        birth_date=date(1970, 7, 7),
        phone=None,
        update_demographics=True,
        actor=system_actor(source="hl7-inbound"),
    )


def activation(w: World, caller: str) -> Call:
    """A fresh patient account of the caller's role linking to a fresh RIS record with
    that record's code (codes work once)."""
    issued = w.services.activation.issue(ris_patient(w), system_actor())
    account = w.new_account(caller if caller != ANONYMOUS else "patient")
    return Call(
        "/v1/me/activation",
        json={"code": issued.code, "birth_date": "1970-07-07"},
        account=account,
    )


def week(w: World) -> dict[str, str]:
    start = w.clock.now()
    return {"start": iso(start), "end": iso(start + timedelta(days=7))}


APPOINTMENT = "/v1/appointments/{booked}"
STAFF_APPOINTMENT = "/v1/staff/appointments/{booked}"
RESOURCE = "/v1/staff/catalog/resources/riverside-mri-2"
DELIVERY = "/v1/admin/deliveries/{delivery}"
INBOUND = "/v1/admin/hl7/inbound/{inbound}"

PUSH_ENDPOINT = "https://push.example.org/send/matrix"
PREFERENCES = {
    "channels": {"email": {"enabled": True}, "sms": {"enabled": False}, "push": {"enabled": False}},
    "language": "es",
    "quiet_hours": "21:00-08:00",
    "timezone": "America/New_York",
}


def push_subscription() -> dict[str, Any]:
    """A browser's ``PushSubscription.toJSON()``, with a real P-256 key."""
    point = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    )
    keys = {"p256dh": point, "auth": b"matrix-auth-16by"}
    encoded = {k: base64.urlsafe_b64encode(v).rstrip(b"=").decode() for k, v in keys.items()}
    return {"endpoint": PUSH_ENDPOINT, "expirationTime": None, "keys": encoded}


THREAD = "/v1/me/messages/{thread}"
STAFF_THREAD = "/v1/staff/messages/{thread}"
ROUTES: dict[tuple[str, str], Route] = {
    ("GET", "/healthz"): Route(200, fixed("/healthz")),
    ("GET", "/readyz"): Route(200, fixed("/readyz")),
    # Patients and their appointments
    ("POST", "/v1/patients/register"): Route(201, register),
    ("GET", "/v1/patients/me"): Route(200, fixed("/v1/patients/me")),
    ("PATCH", "/v1/patients/me"): Route(
        200, fixed("/v1/patients/me", json={"phone": "+1 215 555 0111"})
    ),
    ("GET", "/v1/catalog/locations"): Route(200, fixed("/v1/catalog/locations")),
    ("GET", "/v1/catalog/appointment-types"): Route(200, fixed("/v1/catalog/appointment-types")),
    ("GET", "/v1/slots"): Route(
        200,
        lambda w, _: Call(
            "/v1/slots",
            params={
                "appointment_type_id": str(w.objects["ct_head"]),
                "location_id": str(w.objects["riverside"]),
                **week(w),
            },
        ),
    ),
    ("POST", "/v1/appointments"): Route(
        201,
        with_body(
            "/v1/appointments",
            lambda w, _: {
                "appointment_type_id": str(w.objects["ct_head"]),
                "location_id": str(w.objects["riverside"]),
                "start": iso(w.objects["book_at"]),
            },
        ),
    ),
    ("GET", "/v1/appointments"): Route(200, fixed("/v1/appointments")),
    ("GET", "/v1/me/orders"): Route(200, fixed("/v1/me/orders")),
    ("GET", "/v1/me/results"): Route(200, fixed("/v1/me/results")),
    ("GET", "/v1/me/notifications"): Route(200, fixed("/v1/me/notifications")),
    ("POST", "/v1/me/results/{result_id}/link"): Route(200, fixed("/v1/me/results/{result}/link")),
    ("GET", "/.well-known/jwks.json"): Route(200, fixed("/.well-known/jwks.json")),
    ("GET", "/v1/me/notification-preferences"): Route(
        200, fixed("/v1/me/notification-preferences")
    ),
    ("PUT", "/v1/me/notification-preferences"): Route(
        200, fixed("/v1/me/notification-preferences", json=PREFERENCES)
    ),
    ("POST", "/v1/me/push-subscriptions"): Route(
        201, with_body("/v1/me/push-subscriptions", lambda w, _: push_subscription())
    ),
    ("DELETE", "/v1/me/push-subscriptions"): Route(
        204, fixed("/v1/me/push-subscriptions", params={"endpoint": PUSH_ENDPOINT})
    ),
    ("GET", "/v1/push/public-key"): Route(200, fixed("/v1/push/public-key")),
    # Secure messages
    ("GET", "/v1/me/messages"): Route(200, fixed("/v1/me/messages")),
    ("POST", "/v1/me/messages"): Route(
        201, fixed("/v1/me/messages", json={"subject": "A question", "body": "Hello"})
    ),
    ("GET", "/v1/me/messages/{thread_id}"): Route(200, fixed(THREAD)),
    ("POST", "/v1/me/messages/{thread_id}"): Route(201, fixed(THREAD, json={"body": "Thanks"})),
    ("GET", "/v1/staff/messages"): Route(200, fixed("/v1/staff/messages")),
    ("POST", "/v1/staff/messages"): Route(
        201,
        with_body(
            "/v1/staff/messages",
            lambda w, _: {
                "patient_id": str(w.objects["patient"]),
                "subject": "Your preparation",
                "body": "Please fast",
            },
        ),
    ),
    ("GET", "/v1/staff/messages/{thread_id}"): Route(200, fixed(STAFF_THREAD)),
    ("POST", "/v1/staff/messages/{thread_id}"): Route(
        201, fixed(STAFF_THREAD, json={"body": "Yes"})
    ),
    ("POST", "/v1/staff/messages/{thread_id}/assign"): Route(
        200,
        with_body(
            STAFF_THREAD + "/assign", lambda w, _: {"staff_id": str(w.accounts["scheduler"])}
        ),
    ),
    ("POST", "/v1/staff/messages/{thread_id}/close"): Route(200, fixed(STAFF_THREAD + "/close")),
    ("POST", "/v1/staff/messages/{thread_id}/reopen"): Route(200, fixed(STAFF_THREAD + "/reopen")),
    ("GET", "/v1/appointments/{appointment_id}"): Route(200, fixed(APPOINTMENT)),
    ("PATCH", "/v1/appointments/{appointment_id}"): Route(
        200, fixed(APPOINTMENT, json={"notes": "needs a wheelchair"})
    ),
    ("POST", "/v1/appointments/{appointment_id}/cancel"): Route(
        200, fixed("/v1/appointments/{to_cancel}/cancel", json={"reason": "cannot come"})
    ),
    ("POST", "/v1/appointments/{appointment_id}/reschedule"): Route(
        200,
        with_body(
            "/v1/appointments/{to_reschedule}/reschedule",
            lambda w, _: {"start": iso(w.objects["reschedule_to"]), "reason": "later"},
        ),
    ),
    # Signing in and the session
    ("POST", "/v1/auth/token"): Route(
        200,
        lambda w, _: Call(
            "/v1/auth/token",
            data={"username": w.email_of(w.objects["sign_in"]), "password": PASSWORD},
        ),
    ),
    ("POST", "/v1/auth/token/second-factor"): Route(200, second_factor),
    ("POST", "/v1/auth/refresh"): Route(200, refresh),
    ("POST", "/v1/auth/logout"): Route(204, fixed("/v1/auth/logout")),
    ("POST", "/v1/auth/logout-everywhere"): Route(200, fixed("/v1/auth/logout-everywhere")),
    ("POST", "/v1/auth/2fa/enrol"): Route(200, fixed("/v1/auth/2fa/enrol")),
    ("POST", "/v1/auth/2fa/confirm"): Route(
        200, fresh_account_call("/v1/auth/2fa/confirm", confirm_body)
    ),
    ("POST", "/v1/auth/2fa/disable"): Route(
        204,
        fresh_account_call("/v1/auth/2fa/disable", disable_body),
        # Staff must keep their second factor (README, Security).
        otherwise={role: (409, "second_factor_state") for role in ROLES if role != "patient"},
    ),
    ("POST", "/v1/auth/password"): Route(
        204,
        fresh_account_call(
            "/v1/auth/password",
            lambda w, _: {"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        ),
    ),
    ("POST", "/v1/auth/password-reset"): Route(202, reset_request),
    ("POST", "/v1/auth/password-reset/confirm"): Route(204, reset_confirm),
    # Staff: accounts
    ("POST", "/v1/staff/accounts"): Route(
        201,
        lambda w, _: Call(
            "/v1/staff/accounts",
            json={"email": f"matrix.hire.{w.n()}@example.org", "password": PASSWORD}
            | {"role": "billing", "centres": [str(w.objects["riverside"])]},
        ),
    ),
    # Issue 10: linking patients to the RIS's records. Finding a patient needs
    # PATIENTS_READ (scheduler, billing); giving them an activation code is front-desk
    # work, APPOINTMENTS_MANAGE (scheduler); listing staff is STAFF_MANAGE (admin).
    ("GET", "/v1/staff/accounts"): Route(200, fixed("/v1/staff/accounts")),
    ("GET", "/v1/staff/patients"): Route(
        200, fixed("/v1/staff/patients", params={"identifier": "CENTRE|MATRIX-RIS"})
    ),
    ("POST", "/v1/staff/patients/{patient_id}/activation-codes"): Route(
        201, fixed("/v1/staff/patients/{ris_patient}/activation-codes")
    ),
    ("GET", "/v1/staff/patients/{patient_id}/notification-preferences"): Route(
        200, fixed("/v1/staff/patients/{ris_patient}/notification-preferences")
    ),
    ("PATCH", "/v1/staff/patients/{patient_id}/notification-preferences"): Route(
        200,
        fixed("/v1/staff/patients/{ris_patient}/notification-preferences", json={"language": "es"}),
    ),
    ("POST", "/v1/me/activation"): Route(200, activation),
    ("GET", "/v1/staff/accounts/{account_id}"): Route(
        200, fixed("/v1/staff/accounts/{staff_target}")
    ),
    ("POST", "/v1/staff/accounts/{account_id}/role"): Route(
        200, fixed("/v1/staff/accounts/{role_target}/role", json={"role": "billing"})
    ),
    ("POST", "/v1/staff/accounts/{account_id}/disable"): Route(
        200, fixed("/v1/staff/accounts/{disable_target}/disable", json={"reason": "left"})
    ),
    ("POST", "/v1/staff/accounts/{account_id}/enable"): Route(
        200, fixed("/v1/staff/accounts/{enable_target}/enable")
    ),
    # Staff: the front desk
    ("GET", "/v1/staff/appointments"): Route(
        200,
        lambda w, _: Call(
            "/v1/staff/appointments",
            params={"location_id": str(w.objects["riverside"]), **week(w)},
        ),
    ),
    ("GET", "/v1/staff/appointments/{appointment_id}"): Route(200, fixed(STAFF_APPOINTMENT)),
    ("PATCH", "/v1/staff/appointments/{appointment_id}"): Route(
        200, fixed(STAFF_APPOINTMENT, json={"notes": "interpreter booked"})
    ),
    ("POST", "/v1/staff/appointments/{appointment_id}/check-in"): Route(
        200, fixed("/v1/staff/appointments/{to_check_in}/check-in")
    ),
    ("POST", "/v1/staff/appointments/{appointment_id}/complete"): Route(
        200, fixed("/v1/staff/appointments/{to_complete}/complete")
    ),
    ("POST", "/v1/staff/appointments/{appointment_id}/no-show"): Route(
        200, fixed("/v1/staff/appointments/{no_show}/no-show", json={"reason": "did not come"})
    ),
    ("GET", "/v1/staff/patients/{patient_id}"): Route(200, fixed("/v1/staff/patients/{patient}")),
    ("POST", "/v1/staff/break-glass"): Route(
        201,
        with_body(
            "/v1/staff/break-glass",
            lambda w, _: {
                "patient_id": str(w.objects["patient"]),
                "reason": "unconscious patient in the emergency room",
                "minutes": 30,
            },
        ),
    ),
    # Staff: the catalog
    ("GET", "/v1/staff/catalog/locations"): Route(200, fixed("/v1/staff/catalog/locations")),
    ("GET", "/v1/staff/catalog/locations/{code}"): Route(
        200, fixed("/v1/staff/catalog/locations/riverside")
    ),
    ("GET", "/v1/staff/catalog/resources"): Route(
        200, fixed("/v1/staff/catalog/resources", params={"location": "riverside"})
    ),
    ("GET", "/v1/staff/catalog/resources/{code}"): Route(200, fixed(RESOURCE)),
    ("GET", "/v1/staff/catalog/appointment-types"): Route(
        200, fixed("/v1/staff/catalog/appointment-types")
    ),
    ("GET", "/v1/staff/catalog/appointment-types/{code}"): Route(
        200, fixed("/v1/staff/catalog/appointment-types/ct-head")
    ),
    ("PUT", "/v1/staff/catalog/locations/{code}"): Route(
        200,
        with_body(
            "/v1/staff/catalog/locations/riverside", lambda w, _: w.objects["location_entry"]
        ),
    ),
    ("PUT", "/v1/staff/catalog/resources/{code}"): Route(
        200,
        with_body(
            "/v1/staff/catalog/resources/riverside-xr-1", lambda w, _: w.objects["resource_entry"]
        ),
    ),
    ("PUT", "/v1/staff/catalog/appointment-types/{code}"): Route(
        200,
        with_body(
            "/v1/staff/catalog/appointment-types/ct-head", lambda w, _: w.objects["type_entry"]
        ),
    ),
    ("PUT", "/v1/staff/catalog/resources/{code}/hours"): Route(
        200, with_body(RESOURCE + "/hours", lambda w, _: w.objects["hours"])
    ),
    ("POST", "/v1/staff/catalog/resources/{code}/closures"): Route(
        200,
        lambda w, caller: Call(
            RESOURCE + "/closures",
            json={"date": w.objects.get(f"close_day_{caller}", "2027-03-31"), "reason": "x"},
        ),
    ),
    ("DELETE", "/v1/staff/catalog/resources/{code}/closures/{day}"): Route(
        200, own(RESOURCE + "/closures/{target}", "closed_day")
    ),
    ("POST", "/v1/staff/catalog/resources/{code}/blocks"): Route(
        200,
        lambda w, caller: Call(
            RESOURCE + "/blocks", json=w.objects.get(f"block_{caller}", w.objects["block_admin"])
        ),
    ),
    ("DELETE", "/v1/staff/catalog/resources/{code}/blocks/{which}"): Route(
        200, own(RESOURCE + "/blocks/{target}", "block_start")
    ),
    # Compliance
    ("GET", "/v1/audit/access"): Route(
        200, lambda w, _: Call("/v1/audit/access", params={"patient_id": str(w.objects["patient"])})
    ),
    ("GET", "/v1/audit/alerts"): Route(200, fixed("/v1/audit/alerts")),
    ("GET", "/v1/audit/patients/{patient_id}/communications"): Route(
        200,
        lambda w, _: Call(
            f"/v1/audit/patients/{w.objects['patient']}/communications", params={"content": "1"}
        ),
    ),
    # Operators of the integration
    ("GET", "/v1/admin/deliveries"): Route(
        200, fixed("/v1/admin/deliveries", params={"status": "dead_lettered"})
    ),
    ("GET", "/v1/admin/deliveries/{delivery_id}"): Route(200, fixed(DELIVERY)),
    ("POST", "/v1/admin/deliveries/{delivery_id}/redrive"): Route(
        202, own("/v1/admin/deliveries/{target}/redrive", "dead_letter", json={"reason": "fixed"})
    ),
    ("GET", "/v1/admin/hl7/inbound"): Route(200, fixed("/v1/admin/hl7/inbound")),
    ("GET", "/v1/admin/hl7/inbound/{message_id}"): Route(200, fixed(INBOUND)),
    ("POST", "/v1/admin/hl7/inbound/{message_id}/replay"): Route(
        200, own("/v1/admin/hl7/inbound/{target}/replay", "inbound", json={"reason": "mapped"})
    ),
    # The SMS provider's callbacks: public, authenticated by the provider's signature alone,
    # so a call without one is refused whoever makes it (signed ones: test_sms_hooks.py)
    ("POST", "/v1/hooks/twilio/status"): Route(
        403,
        fixed(
            "/v1/hooks/twilio/status",
            params={"delivery": str(uuid.UUID(int=1))},
            data={"MessageSid": "SM" + "0" * 32, "MessageStatus": "delivered"},
        ),
    ),
    ("POST", "/v1/hooks/twilio/inbound"): Route(
        403,
        fixed(
            "/v1/hooks/twilio/inbound",
            data={"MessageSid": "SM" + "1" * 32, "From": "+15555550123", "To": "+15550100"},
        ),
    ),
}


def test_every_route_has_a_valid_call(client):
    assert set(ROUTES) == set(route_permissions(client.app))


def send(w: World, method: str, caller: str, call: Call):
    return w.client.request(
        method,
        call.path,
        headers=w.headers(caller, call),
        json=call.json,
        data=call.data,
        params=call.params,
    )


def test_each_role_is_allowed_or_refused_as_the_matrix_says(world):
    """Given real objects for every route, when each caller sends each route a valid
    request, then an allowed caller gets the handler's success status and a refused one
    401 (no session) or 403 (a role without the permission), with the stable code."""
    problems = []
    for (method, path), permissions in sorted(route_permissions(world.client.app).items()):
        (permission,) = permissions
        route = ROUTES[(method, path)]
        for caller in (ANONYMOUS, *ROLES):
            call = route.build(world, caller)
            response = send(world, method, caller, call)
            if permission is Permission.PUBLIC or (
                caller != ANONYMOUS and allows(caller, permission)
            ):
                expected, code = route.otherwise.get(caller, (route.status, None))
            elif caller == ANONYMOUS:
                expected, code = 401, "not_authenticated"
            else:
                expected, code = 403, "forbidden"
            if response.status_code != expected or (code and response.json()["code"] != code):
                problems.append(
                    f"{caller} {method} {call.path}: {response.status_code} "
                    f"{response.text[:160]}, expected {expected} {code or ''}"
                )
    assert problems == []


def test_an_allowed_role_is_refused_what_is_not_its_own_with_404(world):
    """Object-level refusals: another patient, or staff of another centre, get 404 for a
    patient's appointment and record, and the appointment does not change."""
    w = world
    stranger = w.new_account("patient")
    lakeshore = Location.create_id("lakeshore")
    elsewhere = w.services.registry.open_staff_account(
        email="matrix.lakeshore@example.org",
        password=PASSWORD,
        role="scheduler",
        centres=[lakeshore],
        actor=system_actor(),
    )
    before = w.client.get(
        f"/v1/appointments/{w.objects['booked']}",
        headers={"Authorization": f"Bearer {w.token(w.accounts['patient'])}"},
    ).json()
    calls = [
        (stranger, "GET", APPOINTMENT, None),
        (stranger, "PATCH", APPOINTMENT, {"notes": "not mine"}),
        (stranger, "POST", APPOINTMENT + "/cancel", {"reason": "not mine"}),
        (stranger, "POST", APPOINTMENT + "/reschedule", {"start": iso(w.objects["book_at"])}),
        (elsewhere, "GET", STAFF_APPOINTMENT, None),
        (elsewhere, "PATCH", STAFF_APPOINTMENT, {"notes": "not my centre"}),
        (elsewhere, "POST", STAFF_APPOINTMENT + "/check-in", None),
        (elsewhere, "GET", "/v1/staff/patients/{patient}", None),
        (stranger, "GET", THREAD, None),
        (stranger, "POST", THREAD, {"body": "not mine"}),
        (elsewhere, "GET", STAFF_THREAD, None),
        (elsewhere, "POST", STAFF_THREAD, {"body": "not my centre"}),
        (elsewhere, "POST", STAFF_THREAD + "/close", None),
    ]
    for account, method, path, body in calls:
        response = w.client.request(
            method,
            path.format(**w.objects),
            json=body,
            headers={"Authorization": f"Bearer {w.token(account)}"},
        )
        assert (response.status_code, response.json()["code"]) == (404, "not_found"), (
            method,
            path,
            response.text,
        )
    after = w.client.get(
        f"/v1/appointments/{w.objects['booked']}",
        headers={"Authorization": f"Bearer {w.token(w.accounts['patient'])}"},
    ).json()
    assert after == before


def test_staff_without_a_second_factor_may_only_enrol(client, runtime):
    runtime.services.registry.open_staff_account(
        email="new.scheduler@example.org",
        password="a long enough password",
        role="scheduler",
        centres=[],
        actor=system_actor(),
    )
    signed_in = client.post(
        "/v1/auth/token",
        data={"username": "new.scheduler@example.org", "password": "a long enough password"},
    )
    assert signed_in.status_code == 200
    headers = {"Authorization": f"Bearer {signed_in.json()['access_token']}"}
    refused = client.get(f"/v1/staff/patients/{uuid.uuid4()}", headers=headers)
    assert refused.status_code == 403
    assert refused.json()["code"] == "second_factor_required"
    assert client.post("/v1/auth/2fa/enrol", headers=headers).status_code == 200


def test_a_refused_call_is_in_the_access_log(client, runtime):
    from tests.support import register

    headers = register(client, "denied@example.org")
    assert client.get(f"/v1/staff/patients/{uuid.uuid4()}", headers=headers).status_code == 403
    runtime.services.access_log.flush()
    with runtime.pool.connection() as conn:
        rows = conn.execute(
            "SELECT role, resource, outcome FROM phi_access_log WHERE outcome LIKE 'denied%'"
        ).fetchall()
    assert rows == [("patient", "/v1/staff/patients/{patient_id}", "denied_role")]


def test_compliance_alone_reads_the_alerts(client):
    # the matrix above checks every role against this rule
    routes = route_permissions(client.app)
    assert routes[("GET", "/v1/audit/alerts")] == {Permission.AUDIT_READ}
    assert [role for role in ROLES if allows(role, Permission.AUDIT_READ)] == ["compliance"]
