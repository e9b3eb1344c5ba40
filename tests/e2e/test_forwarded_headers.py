"""Forwarded headers are believed only from ``TRUSTED_PROXIES`` (issue 9, finding 5).

Run against ``imaging-bridge serve`` as a child process, so that what is tested is what
``serve`` hands uvicorn: uvicorn's own default believes any client on 127.0.0.1.
"""

import os
from pathlib import Path

import httpx
import psycopg
import pytest

from adapters.proxies import uvicorn_proxy_options
from adapters.settings import Settings
from tests.e2e.test_cli import Served

pytestmark = pytest.mark.e2e

SIGN_IN_BUDGET = 30  # api/routers/auth.py: sign-in attempts per address a minute
FORWARDED = "198.51.100.7"
PASSWORD = "correct horse battery staple"


def env_for(database_url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TRUSTED_PROXIES",)}
    return {**env, "DATABASE_URL": database_url, "DATA_DIR": str(tmp_path), **extra}


def exercise(url: str, attempts: int) -> tuple[httpx.Response, list[int]]:
    """A patient reads their profile through a "proxy" claiming HTTPS and another client
    address, then sign-ins come from a different forwarded address each time."""
    with httpx.Client(base_url=url, timeout=30) as client:
        registered = client.post(
            "/v1/patients/register",
            json={
                "email": "forwarded@example.org",
                "password": PASSWORD,
                "given_name": "Test",
                "family_name": "Forwarded",
                "birth_date": "1980-02-29",
            },
        )
        assert registered.status_code == 201, registered.text
        token = client.post(
            "/v1/auth/token", data={"username": "forwarded@example.org", "password": PASSWORD}
        )
        assert token.status_code == 200, token.text
        profile = client.get(
            "/v1/patients/me",
            headers={
                "Authorization": f"Bearer {token.json()['access_token']}",
                "X-Forwarded-For": FORWARDED,
                "X-Forwarded-Proto": "https",
            },
        )
        assert profile.status_code == 200, profile.text
        statuses: list[int] = []
        for i in range(1, attempts + 1):
            statuses.append(
                client.post(
                    "/v1/auth/token",
                    data={"username": f"nobody{i}@example.org", "password": "wrong password"},
                    headers={"X-Forwarded-For": f"203.0.113.{i}"},
                ).status_code
            )
            if statuses[-1] == 429:
                break
    return profile, statuses


def logged_addresses(database_url: str) -> set[str]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT client_address FROM phi_access_log WHERE resource = 'patient'"
        ).fetchall()
    return {row[0] for row in rows}


def test_without_trusted_proxies_forwarded_headers_are_ignored(
    database_url: str, tmp_path: Path
) -> None:
    # Given serve with TRUSTED_PROXIES unset, when a local client forwards made-up headers,
    # (budgets are fixed one-minute windows: the attempts may straddle a minute's end, or
    # two on a loaded machine, so up to three budgets' worth, stopping at the first 429)
    with Served(env_for(database_url, tmp_path)) as served:
        profile, statuses = exercise(served.url, attempts=3 * SIGN_IN_BUDGET + 1)

    # then the sign-in budget still runs out (a rotating X-Forwarded-For does not reset it),
    assert statuses[-1] == 429, statuses
    # "X-Forwarded-Proto: https" does not turn HSTS on over plain HTTP,
    assert "strict-transport-security" not in profile.headers
    # and the PHI access log has the connection's address.
    assert logged_addresses(database_url) == {"127.0.0.1"}


def test_a_trusted_proxy_forwards_the_client_address_and_scheme(
    database_url: str, tmp_path: Path
) -> None:
    # Given serve behind a proxy on 127.0.0.1 named in TRUSTED_PROXIES,
    env = env_for(database_url, tmp_path, TRUSTED_PROXIES="127.0.0.1, 10.0.0.0/8")
    with Served(env) as served:
        profile, statuses = exercise(served.url, attempts=SIGN_IN_BUDGET + 1)

    # then each forwarded address has its own budget, the scheme is the proxy's,
    assert 429 not in statuses
    assert "strict-transport-security" in profile.headers
    # and the access log has the address the proxy forwarded.
    assert logged_addresses(database_url) == {FORWARDED}


def test_trusted_proxies_must_be_addresses_or_networks() -> None:
    with pytest.raises(ValueError, match="trusted_proxies"):
        Settings(trusted_proxies="*")  # type: ignore[arg-type]
    trusted = Settings(trusted_proxies="127.0.0.1, 10.0.0.0/8")  # type: ignore[arg-type]
    assert uvicorn_proxy_options(trusted) == {
        "proxy_headers": True,
        "forwarded_allow_ips": ["127.0.0.1/32", "10.0.0.0/8"],
    }
    assert uvicorn_proxy_options(Settings())["proxy_headers"] is False
