"""Signing in again as someone the tests already made: a staff member with both factors,
and the links a password reset sends by e-mail."""

import re
from datetime import timedelta

from domain.location import Location
from tests.support import RESET_LINK_TOKEN, sent_mail, staff_headers, totp_now

STAFF_PASSWORD = "staff member long password"  # what tests.support.staff_headers sets


def sign_in_with_code(client, runtime, clock, email_address: str, password: str = STAFF_PASSWORD):
    """The raw answer of a full sign-in (password, then a fresh authenticator code) of an
    account that has two-factor sign-in on."""
    clock.advance(timedelta(seconds=30))  # a time step whose code was not used yet
    first = client.post("/v1/auth/token", data={"username": email_address, "password": password})
    if first.status_code != 401 or first.json()["code"] != "second_factor_required":
        return first
    secret = runtime.services.registry.account_by_email(email_address).totp_secret
    return client.post(
        "/v1/auth/token/second-factor",
        json={"challenge": first.json()["challenge"], "code": totp_now(secret, clock)},
    )


def desk(client, runtime, clock, centre: str) -> dict[str, str]:
    """The auth header of a scheduler of one centre (by code), signed in with both factors."""
    return staff_headers(
        client,
        runtime,
        clock,
        "scheduler",
        email=desk_email(centre),
        centres=[Location.create_id(centre)],
    )


def desk_email(centre: str) -> str:
    return f"{centre}.desk@staff.example.org"


def bearer(tokens: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def reset_tokens(runtime) -> dict[str, str]:
    """The token of every reset link sent by e-mail, by Message-ID, in the order asked."""
    tokens = {}
    for message in sent_mail(runtime):
        found = re.search(RESET_LINK_TOKEN, message.get_body(("plain",)).get_content())
        assert found, message["Message-ID"]
        tokens[message["Message-ID"]] = found.group(1)
    return tokens
