"""Pytest fixtures for the local providers (registered in ``tests/conftest.py``)."""

import ssl
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import trustme

from tests.providers.fake_twilio import FakeTwilio
from tests.providers.push_service import PushService
from tests.providers.smtp_server import SmtpServer


@dataclass(frozen=True)
class LoopbackTls:
    """A server context with a certificate for 127.0.0.1 from a throwaway CA, and a client
    context that trusts only that CA."""

    server: ssl.SSLContext
    client: ssl.SSLContext


@pytest.fixture
def loopback_tls() -> LoopbackTls:
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return LoopbackTls(server, client)


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A plain SMTP server on loopback; refuse recipients through ``smtp_server.refuse``."""
    with SmtpServer() as server:
        yield server


@pytest.fixture
def fake_twilio() -> Iterator[FakeTwilio]:
    with FakeTwilio() as twilio:
        yield twilio


@pytest.fixture
def push_service() -> Iterator[PushService]:
    with PushService() as service:
        yield service
