"""The calendars (``ResourceDay``) a process has read, kept folded and brought up to date
with one query for the events recorded since, instead of reading and decrypting every
event of the day again for each booking.

A busy day holds dozens of reservations; every booking, move and cancellation on it read
them all (decrypt, decode, fold: 15 % of an API worker's time under booking load). Kept
here, a read costs the query for what is newer than the kept version (most often
nothing) and a copy. The copy is what a command changes; the kept calendar is never
changed after it is kept, so readers on other threads never see half an update. A
calendar brought up to date is kept only if it is newer than the one kept meanwhile.

Nothing here decides anything: a decision made on a calendar that another process
changed after this read is refused by the event store (the version is taken), as it was
when every read went to the store.
"""

import threading
from collections import OrderedDict
from copy import deepcopy
from typing import Any
from uuid import UUID

from application.base import BaseApplication, fold
from domain.resource_day import ResourceDay

KEPT = 4096  # calendars kept per process, least recently read dropped first


class CalendarReads:
    """``get(calendar_id)``: the calendar as ``log`` holds it now, or None."""

    def __init__(self, log: BaseApplication, kept: int = KEPT) -> None:
        self._log = log
        self._kept_max = kept
        self._kept: OrderedDict[UUID, ResourceDay] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, calendar_id: UUID) -> ResourceDay | None:
        with self._lock:
            kept = self._kept.get(calendar_id)
            if kept is not None:
                self._kept.move_to_end(calendar_id)
        if kept is None:
            current = self._log.find(calendar_id, ResourceDay)
        else:
            newer: list[Any] = list(self._log.events.get(calendar_id, gt=kept.version))
            current = fold(deepcopy(kept), newer) if newer else kept
        if current is None:
            return None
        if current is not kept:
            self._keep(calendar_id, current)
        return deepcopy(current)  # ResourceDay.__deepcopy__: cheap, shares no mutable state

    def _keep(self, calendar_id: UUID, calendar: ResourceDay) -> None:
        with self._lock:
            held = self._kept.get(calendar_id)
            if held is None or held.version < calendar.version:
                self._kept[calendar_id] = calendar
                self._kept.move_to_end(calendar_id)
            while len(self._kept) > self._kept_max:
                self._kept.popitem(last=False)
