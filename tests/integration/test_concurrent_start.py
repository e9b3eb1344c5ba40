"""Processes and threads that start at once (``serve`` and ``imaging-bridge worker``
processes, projection runners) each create the event tables and the library's
functions if missing; PostgreSQL refuses one of two concurrent CREATE OR REPLACE
FUNCTION. Starting together must still work."""

import threading

import pytest

from adapters.database import eventsourcing_env
from application.registry import RegistryLog
from application.ris.deliveries import Deliveries
from application.ris.delivery_policy import DeliveryPolicy

pytestmark = pytest.mark.integration


def test_applications_constructed_at_once_on_a_new_database(database_url):
    env = eventsourcing_env(database_url)
    errors: list[BaseException] = []
    built: list[object] = []
    start = threading.Barrier(12)

    def construct(kind: type) -> None:
        start.wait()
        try:
            built.append(kind(env))
        except BaseException as error:  # noqa: BLE001 - collected and reported below
            errors.append(error)

    kinds = [Deliveries, DeliveryPolicy, RegistryLog] * 4
    threads = [threading.Thread(target=construct, args=(kind,)) for kind in kinds]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for app in built:
        app.close()  # type: ignore[attr-defined]
    assert errors == []
    assert len(built) == len(kinds)
