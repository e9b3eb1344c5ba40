"""Waiting for a read model sleeps on a Condition and wakes when tracking is recorded
(projections.progress): no polling, no lost wake-up."""

import threading

from projections.progress import Progress


def waiter(progress: Progress, done, timeout: float = 30.0):
    """Start a thread waiting on ``progress``; its result lands in the returned dict."""
    result: dict[str, bool] = {}
    started = threading.Event()

    def run() -> None:
        started.set()
        result["done"] = progress.wait_for("SchedulingLog", done, timeout)

    thread = threading.Thread(target=run)
    thread.start()
    assert started.wait(5)
    return thread, result


def test_a_waiter_wakes_when_its_application_advances():
    # given a waiter whose read model is not there yet
    progress = Progress()
    reached = threading.Event()
    checks = []
    checked_once = threading.Event()

    def done() -> bool:
        checks.append(reached.is_set())
        checked_once.set()
        return reached.is_set()

    thread, result = waiter(progress, done)
    assert checked_once.wait(5)
    # when the read model records the position and says so
    reached.set()
    progress.advanced("SchedulingLog")
    thread.join(10)
    # then the waiter returned True, having checked once before and once after the wake-up
    # (a 30 s wait that was not woken would still be running)
    assert not thread.is_alive()
    assert result == {"done": True}
    assert checks == [False, True]


def test_another_applications_progress_does_not_wake_a_waiter():
    progress = Progress()
    checks = []

    def done() -> bool:
        checks.append(True)
        return False

    thread, result = waiter(progress, done, timeout=0.3)
    progress.advanced("Catalog")
    thread.join(10)
    # one check on entry and one last at the deadline: the Catalog's advance woke nobody
    assert result == {"done": False}
    assert len(checks) == 2


def test_progress_between_the_check_and_the_sleep_is_not_lost():
    # given a waiter whose check sees "not yet", while the position lands right after it
    progress = Progress()
    calls = []

    def done() -> bool:
        calls.append(1)
        if len(calls) == 1:
            progress.advanced("SchedulingLog")  # lands before the waiter sleeps
            return False
        return True

    # when it waits (for up to a minute)
    thread, result = waiter(progress, done, timeout=60.0)
    thread.join(10)
    # then it did not sleep through the advance
    assert not thread.is_alive()
    assert result == {"done": True}
    assert len(calls) == 2


def test_without_progress_the_wait_runs_out():
    progress = Progress()
    assert progress.wait_for("SchedulingLog", lambda: False, 0.05) is False
