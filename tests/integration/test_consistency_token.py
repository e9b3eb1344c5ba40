"""X-Consistency-Token: a token no write answered with is refused at once (400) without
waiting on the read models; a token of a real write still gives read-your-writes; a
process that does not run the projections is woken by their NOTIFY."""

import threading

import psycopg
import pytest

from api.consistency import HEADER
from application.base import Position
from application.ports import ReadModelSync
from projections.progress import Progress, TrackingListener
from projections.runners import Projections
from tests.support import post_booking, register

pytestmark = pytest.mark.integration


class CountingSync(ReadModelSync):
    """The runtime's own Projections, counting the waits asked of it."""

    def __init__(self, real: ReadModelSync) -> None:
        self.real = real
        self.waits: list[Position] = []

    def wait(self, position: Position, timeout: float = 5.0) -> bool:
        self.waits.append(position)
        return self.real.wait(position, timeout)

    def head(self, application: str) -> int | None:
        return self.real.head(application)


@pytest.fixture
def counted(runtime):
    real = runtime.services.sync
    runtime.services.sync = counting = CountingSync(real)
    yield counting
    runtime.services.sync = real


def book(client, headers):
    booked = post_booking(client, headers, "2026-12-01T09:00:00-05:00", "xr-chest")
    assert booked.status_code == 201, booked.text
    return booked


@pytest.mark.parametrize(
    "token",
    [
        "SchedulingLog:999999999",  # far ahead of the log's head
        "NoSuchLog:1",  # a log no read model follows
        "SchedulingLog:0",
        "SchedulingLog:-4",
        "SchedulingLog:many",
        "no colon at all",
        ":12",
    ],
)
def test_a_token_no_write_answered_with_is_refused_without_waiting(client, runtime, counted, token):
    # given a signed-in patient (the read models hold every write so far)
    headers = register(client, "impatient@example.org")
    counted.waits.clear()
    # when they read with a made-up token
    response = client.get("/v1/appointments", headers={**headers, HEADER: token})
    # then 400 with a stable code, and no wait on the read models was entered
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid_consistency_token"
    assert counted.waits == []


def test_the_token_of_a_write_gives_read_your_writes(client, runtime, counted):
    # given a booking and the token it answered with
    headers = register(client, "eager@example.org")
    booked = book(client, headers)
    token = booked.headers[HEADER]
    assert Position.parse(token).application == runtime.services.scheduling.name
    # when the patient reads with it
    mine = client.get("/v1/appointments", headers={**headers, HEADER: token})
    # then the read waited for that position and shows the booking
    assert mine.status_code == 200
    assert Position.parse(token) in counted.waits
    assert booked.json()["id"] in [a["id"] for a in mine.json()]


def test_a_process_without_the_projections_is_woken_by_their_notify(client, runtime):
    # given a process that serves reads while another runs the projections
    headers = register(client, "elsewhere@example.org")
    reader = Projections(runtime.env)
    try:
        head = runtime.services.scheduling.recorder.max_notification_id() or 0
        next_position = Position(runtime.services.scheduling.name, head + 1)
        woke: dict[str, bool] = {}
        waiting = threading.Thread(
            target=lambda: woke.update(done=reader.wait(next_position, timeout=30))
        )
        waiting.start()
        # when the next write lands (and the projections here apply it)
        book(client, headers)
        waiting.join(40)
        # then the reader's wait returned True
        assert woke == {"done": True}
        assert reader._listener is not None  # it listens for the projecting process
    finally:
        reader.stop()


def test_the_views_notify_reaches_a_listener_in_another_process(client, runtime):
    # given a listener of its own (as an API worker of serve --workers N has)
    headers = register(client, "listened@example.org")
    progress = Progress()
    listener = TrackingListener(lambda: psycopg.connect(runtime.url, autocommit=True), progress)
    listener.start()
    try:
        assert listener.listening.wait(30)
        before = progress.generation(runtime.services.scheduling.name)
        # when a write is projected
        book(client, headers)
        # then the NOTIFY sent in the view's transaction advanced this Progress (nothing
        # else knows about it), waking its waiters
        assert progress.wait_for(
            runtime.services.scheduling.name,
            lambda: progress.generation(runtime.services.scheduling.name) > before,
            timeout=30,
        )
    finally:
        listener.stop()
