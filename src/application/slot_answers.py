"""Finished slot-search answers, kept while nothing they depend on has changed.

A 14-day search of a busy scanner works out hundreds of slots and serialises them; the
same question is asked again and again (every patient looking at the same exam and
place). An answer is kept with the read models' positions it was worked out at (the
availability and catalog read models, ``SearchVersions``) and is given again only while
both are unchanged: a booking that reached the availability read model (which is what a
consistency token waits for) changes its position, so a booked slot is never offered from
here after the booking's token is honoured. An answer is also given again only while its
first slot is still ahead and for ``ttl`` at most, since the booking horizon moves with
the clock (a slot at the far end of the horizon may appear up to ``ttl`` late; a booking
re-checks everything anyway); an answer whose range the horizon already covers is not
held to ``ttl``, since time can then only take slots away (its first one, handled above).

``kept`` gives a kept answer without asking the database for the positions
(``SearchVersions.known``: the last reading, while this process has seen no tracking move
since), so that the API can give it without a worker thread; ``answer`` asks them, and is
what a search with a consistency token gets.
"""

import gzip
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from application.ports import Clock, SearchVersions
from application.slot_search import Slot, SlotSearch

TTL = timedelta(seconds=30)
MAX_ANSWERS = 4096


@dataclass(frozen=True)
class SlotAnswer:
    """A search's answer as sent (``body``, and ``gzipped`` for clients that accept it:
    a 14-day answer is mostly the same keys and ids over and over) and its entity tag."""

    body: bytes
    etag: str
    count: int
    gzipped: bytes

    @property
    def gzip_etag(self) -> str:
        """The entity tag of ``gzipped`` (another representation, so another tag)."""
        return self.etag[:-1] + '-gzip"'


@dataclass(frozen=True)
class _Kept:
    versions: tuple[int, ...]
    made_at: datetime
    first_start: datetime | None
    answer: SlotAnswer
    within_horizon: bool  # the booking horizon reached the search's end when it was made


class SlotAnswers:
    def __init__(
        self,
        search: SlotSearch,
        versions: SearchVersions,
        clock: Clock,
        *,
        ttl: timedelta = TTL,
        max_answers: int = MAX_ANSWERS,
    ) -> None:
        self._search = search
        self._versions = versions
        self._clock = clock
        self._ttl = ttl
        self._max = max_answers
        self._kept: OrderedDict[tuple[object, ...], _Kept] = OrderedDict()
        self._lock = threading.Lock()

    def kept(
        self,
        *,
        appointment_type_id: UUID,
        location_id: UUID | None,
        start: datetime,
        end: datetime,
    ) -> SlotAnswer | None:
        """The kept answer to a search, if the read models' positions are known without
        asking (``SearchVersions.known``) and it still holds; None means ``answer``.
        Never waits: the API gives it from the event loop."""
        versions = self._versions.known()
        if versions is None:
            return None
        return self._still_holds((appointment_type_id, location_id, start, end), versions)

    def answer(
        self,
        *,
        appointment_type_id: UUID,
        location_id: UUID | None,
        start: datetime,
        end: datetime,
        render: Callable[[list[Slot]], bytes],
    ) -> SlotAnswer:
        """The answer to a search, rendered by ``render``: kept or worked out afresh,
        against the read models' positions asked now."""
        key = (appointment_type_id, location_id, start, end)
        versions = self._versions.current()
        now = self._clock.now()
        kept = self._still_holds(key, versions)
        if kept is not None:
            return kept
        slots = self._search.find(
            appointment_type_id=appointment_type_id, location_id=location_id, start=start, end=end
        )
        body = render(slots)
        etag = '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'
        answer = SlotAnswer(body, etag, len(slots), gzip.compress(body, compresslevel=6, mtime=0))
        first = slots[0].start if slots else None
        within = now + self._search.horizon(appointment_type_id) >= end
        with self._lock:
            self._kept[key] = _Kept(versions, now, first, answer, within)
            self._kept.move_to_end(key)
            while len(self._kept) > self._max:
                self._kept.popitem(last=False)
        return answer

    def _still_holds(self, key: tuple[object, ...], versions: tuple[int, ...]) -> SlotAnswer | None:
        now = self._clock.now()
        with self._lock:
            kept = self._kept.get(key)
        if (
            kept is not None
            and kept.versions == versions
            and (kept.within_horizon or now - kept.made_at < self._ttl)
            and (kept.first_start is None or kept.first_start > now)
        ):
            return kept.answer
        return None
