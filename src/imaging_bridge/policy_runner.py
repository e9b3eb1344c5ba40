"""The policies' runner: the library's, stopped in an order that lets a batch finish.

``EventSourcedProjectionRunner.__exit__`` (eventsourcing 9.5) closes the policy first
(its store's pool and the logs it reads) and only then stops and joins the thread that
may be in the middle of a batch with them. That batch then failed with "pool has already
been opened/closed", ``__exit__`` raised it, and the runners after it were never stopped:
``serve``'s outbound child, stopped right after a burst of bookings, hung until it was
killed 20 s later. ``PolicyRunner`` stops and joins the thread first, then closes the
policy. What the interrupted batch had not written is processed again at the next start,
exactly once (its tracking was not written either)."""

from types import TracebackType
from typing import Any

from eventsourcing.projection import BaseProjectionRunner, EventSourcedProjectionRunner


class PolicyRunner(EventSourcedProjectionRunner[Any, Any]):
    """``EventSourcedProjectionRunner`` that closes its policy after its thread ended."""

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        try:
            # Stop, join the processing thread, close the followed log; raise its error.
            BaseProjectionRunner.__exit__(self, exc_type, exc_val, exc_tb)
        finally:
            self.projection.__exit__(exc_type, exc_val, exc_tb)
