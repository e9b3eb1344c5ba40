"""What every Imaging Bridge application shares: transcodings, save positions, and
a start that tolerates others starting at the same moment."""

import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import (
    IntegrityError,
    InternalError,
    JSONTranscoder,
    ProgrammingError,
    Recording,
    StoredEvent,
    Transcoding,
)
from psycopg.sql import SQL, Identifier

from application.moved_topics import register_moved_topics

T = TypeVar("T")
A = TypeVar("A")
BUSY = "too many concurrent changes; please try again"


def retrying(
    attempt: Callable[[], T], *, tries: int = 8, pause: float = 0.0, busy: str = BUSY
) -> T:
    """Decide and write again when a concurrent writer got there first (the event store
    refuses the second version of an aggregate), pausing a random moment that grows with
    each try when ``pause`` is set, so racers spread out instead of colliding again in
    step; ConcurrencyError (``try_again``) when it never gets through."""
    from application.errors import ConcurrencyError

    for number in range(tries):
        try:
            return attempt()
        except IntegrityError:
            if pause:
                time.sleep(random.uniform(0, pause * (number + 1)))  # noqa: S311 - not crypto
    raise ConcurrencyError(busy)


# What PostgreSQL (and the library) say when two sessions create the same table, type
# or function at once.
CONCURRENT_DDL = (
    "concurrently updated",
    "already exists",
    "pg_type_typname_nsp_index",
    "tracking for __migration__",  # the library records its schema version once
)


def tolerating_concurrent_ddl(
    app: Application[Any], construct: Callable[[], None], attempts: int = 8
) -> None:
    """Run ``construct`` (``app``'s ``__init__``, which creates the library's tables and
    functions if missing) again when another thread or process was creating them at that
    very moment (PostgreSQL refuses one of two concurrent CREATE statements). Every
    statement the library issues there is safe to repeat; a failed try's connections
    are closed."""
    for attempt in range(attempts):
        try:
            construct()
            return
        except (InternalError, IntegrityError, ProgrammingError) as error:
            factory = getattr(app, "factory", None)
            if factory is not None:
                factory.close()
            if attempt == attempts - 1 or not any(s in str(error) for s in CONCURRENT_DDL):
                raise
            time.sleep(random.uniform(0.01, 0.05) * (attempt + 1))  # noqa: S311 - not crypto


class DateAsISO(Transcoding):
    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


@dataclass(frozen=True)
class Position:
    """Where a write landed in an application's log; readers can wait for it."""

    application: str
    notification_id: int

    def __str__(self) -> str:
        return f"{self.application}:{self.notification_id}"

    @classmethod
    def parse(cls, text: str) -> "Position":
        application, _, number = text.rpartition(":")
        return cls(application, int(number))


class BaseApplication(Application[Any]):
    """An eventsourcing Application that knows dates and reports save positions."""

    def __init__(self, env: Any = None) -> None:
        tolerating_concurrent_ddl(self, lambda: super(BaseApplication, self).__init__(env))

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(DateAsISO())

    def find(self, aggregate_id: UUID, kind: type[A]) -> A | None:
        """The aggregate with that id if it exists and is a ``kind``; None otherwise."""
        try:
            aggregate: Any = self.repository.get(aggregate_id, projector_func=fold)
        except AggregateNotFoundError:
            return None
        return aggregate if isinstance(aggregate, kind) else None

    def find_many(self, aggregate_ids: Iterable[UUID], kind: type[A]) -> dict[UUID, A]:
        """The aggregates with these ids that exist and are ``kind``s, read in one query
        (``find`` reads one per query). Events are folded as the repository folds them;
        no snapshots are read (the applications here take none)."""
        wanted = list(set(aggregate_ids))
        if not wanted:
            return {}
        recorder: Any = self.recorder
        query = SQL(
            "SELECT originator_id, originator_version, topic, state FROM {}.{}"
            " WHERE originator_id = ANY(%s) ORDER BY originator_id, originator_version"
        ).format(Identifier(recorder.datastore.schema), Identifier(recorder.events_table_name))
        with recorder.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(query, (wanted,))
            rows = curs.fetchall()
        folded: dict[UUID, Any] = {}
        for row in rows:
            stored = StoredEvent(
                originator_id=row["originator_id"],
                originator_version=row["originator_version"],
                topic=row["topic"],
                state=bytes(row["state"]),
            )
            event: Any = self.mapper.to_domain_event(stored)
            folded[event.originator_id] = event.mutate(folded.get(event.originator_id))
        return {key: value for key, value in folded.items() if isinstance(value, kind)}

    def position_of(self, recordings: list[Recording[Any]]) -> Position | None:
        """The position of the last event a save recorded (None if it recorded none)."""
        if not recordings:
            return None
        return Position(self.name, recordings[-1].notification.id)


def fold(aggregate: Any, events: Iterable[Any]) -> Any:
    """Each event applied to the aggregate in turn, as the library's projector does, less
    its runtime Protocol check per event (which cost more than the events' mutations on
    the booking path)."""
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


register_moved_topics()
