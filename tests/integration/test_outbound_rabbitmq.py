"""The same outbound path with RabbitMQ as dramatiq's broker (``BROKER_URL``).

Needs a RabbitMQ server: the machine's on 127.0.0.1:5672 (guest/guest) or the one named
by ``TEST_BROKER_URL``. Skipped, saying so, where none runs; under ``CI=true`` (CI has
RabbitMQ) it fails instead.
"""

import os
import socket
import uuid
from urllib.parse import urlparse

import pytest

from tests.integration.mllp_peer import wait_until
from tests.integration.test_outbound_hl7 import (
    DAY,
    book,
    by_type,
    field_of,
    new_patient,
    outbound_factory,  # noqa: F401 - a fixture
    outbound_settings,
    peer,  # noqa: F401 - a fixture
)

pytestmark = pytest.mark.integration

BROKER_URL = os.environ.get("TEST_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
ADDRESS = urlparse(BROKER_URL)
HOST, PORT = ADDRESS.hostname or "127.0.0.1", ADDRESS.port or 5672


def rabbitmq_runs() -> bool:
    try:
        socket.create_connection((HOST, PORT), 2).close()
    except OSError:
        return False
    return True


@pytest.fixture
def rabbitmq() -> None:
    """Skip where no RabbitMQ runs, except under CI=true, where it must run: fail."""
    if rabbitmq_runs():
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and no RabbitMQ reachable at {HOST}:{PORT} (TEST_BROKER_URL)")
    pytest.skip(f"needs RabbitMQ: none reachable at {HOST}:{PORT} (under CI=true this fails)")


@pytest.fixture
def own_queue():
    """A queue of our own, so that runs never share messages through the server; deleted
    afterwards with its delay and dead-letter queues (this fixture is set up before the
    outbound one, so it is torn down after the workers stop)."""
    import pika

    import adapters.task_queue as worker

    queue = f"deliveries_{uuid.uuid4().hex[:8]}"
    original = worker.QUEUE
    worker.QUEUE = queue
    yield queue
    worker.QUEUE = original
    connection = pika.BlockingConnection(pika.URLParameters(BROKER_URL))
    try:
        channel = connection.channel()
        for name in (queue, f"{queue}.DQ", f"{queue}.XQ"):
            channel.queue_delete(name)
    finally:
        connection.close()


def test_a_booking_reaches_the_ris_through_rabbitmq(
    rabbitmq,
    runtime,
    peer,  # noqa: F811 - the fixture imported above
    own_queue,
    outbound_factory,  # noqa: F811 - the fixture imported above
):
    ob = outbound_factory(outbound_settings(runtime, peer, broker_url=BROKER_URL))
    assert type(ob.broker).__name__ == "RabbitmqBroker"
    book(runtime, new_patient(runtime, 7), DAY)
    wait_until(
        lambda: by_type(ob, "SIU^S12") and by_type(ob, "SIU^S12")[0].status == "acknowledged"
    )
    siu = [m for m in peer.messages() if field_of(m, "MSH", 9).startswith("SIU^S12")]
    assert len(siu) == 1
    assert field_of(siu[0], "MSH", 10) == by_type(ob, "SIU^S12")[0].control_id
    assert by_type(ob, "SIU^S12")[0].ordering_key
