"""Kept slot-search answers against interleavings of bookings, cancellations, catalog edits
and searches: the positions of the read models are asked of the database only when this
process has seen tracking move (``PostgresSearchVersions.known``), and a search that asks
afresh (a client sending its consistency token) never offers a booked slot; nor does a
search without one, once this process has seen the booking's tracking."""

import json
from contextlib import contextmanager
from datetime import timedelta
from uuid import UUID, uuid4

from hypothesis import given
from hypothesis import strategies as st

from application.catalog import Catalog
from application.scheduling import SchedulingLog
from application.slot_answers import SlotAnswers
from application.slot_search import Slot
from projections.availability import PostgresSearchVersions
from projections.progress import Progress
from tests.support import T0, SettableClock

STARTS = [T0 + timedelta(days=1, hours=h) for h in range(6)]
TYPE, LOCATION, RESOURCE = uuid4(), uuid4(), uuid4()
QUESTION = {
    "appointment_type_id": TYPE,
    "location_id": LOCATION,
    "start": T0 + timedelta(days=1),
    "end": T0 + timedelta(days=2),
}


class Database:
    """The read models as the fakes see them: reserved starts and the two positions."""

    def __init__(self) -> None:
        self.busy: set[int] = set()
        self.positions = [0, 0]  # availability, catalog
        self.asked = 0

    @contextmanager
    def connection(self):
        yield self

    def execute(self, query, params):
        self.asked += 1
        return self

    def fetchone(self):
        return tuple(self.positions)


class Search:
    def __init__(self, database: Database, horizon: timedelta = timedelta(days=365)) -> None:
        self._database = database
        self._horizon = horizon

    def horizon(self, appointment_type_id):
        return self._horizon

    def find(self, **question):
        return [
            Slot(start, start + timedelta(minutes=30), LOCATION, RESOURCE, "UTC", "site")
            for n, start in enumerate(STARTS)
            if n not in self._database.busy
        ]


def render(slots: list[Slot]) -> bytes:
    return json.dumps([slot.start.isoformat() for slot in slots]).encode()


def offered(body: bytes) -> set[int]:
    return {STARTS.index(T0.fromisoformat(start)) for start in json.loads(body)}


def setup(max_age: float = 3600.0, horizon: timedelta = timedelta(days=365), clock=None):
    database, progress = Database(), Progress()
    versions = PostgresSearchVersions(database, progress, max_age=max_age)  # type: ignore[arg-type]
    search = Search(database, horizon)
    answers = SlotAnswers(search, versions, clock or SettableClock())  # type: ignore[arg-type]
    return database, progress, versions, answers


slot = st.integers(0, len(STARTS) - 1)
steps = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(["book", "cancel", "book_elsewhere", "cancel_elsewhere"]), slot),
        st.tuples(st.just("catalog"), st.none()),
        st.tuples(st.sampled_from(["search", "search_with_token"]), st.none()),
    ),
    max_size=40,
)


@given(steps)
def test_no_search_offers_a_slot_booked_as_far_as_it_may_know(steps):
    database, progress, _, answers = setup()
    unheard = False  # tracking written by another process that this one has not heard of
    for step, n in steps:
        if step in ("book", "cancel", "book_elsewhere", "cancel_elsewhere"):
            # The availability projection commits the row change with its tracking...
            (database.busy.add if "book" in step else database.busy.discard)(n)
            database.positions[0] += 1
            if step.endswith("elsewhere"):
                unheard = True
            else:
                progress.advanced(SchedulingLog.name)  # ...and then tells this process.
        elif step == "catalog":
            database.positions[1] += 1
            progress.advanced(Catalog.name)
        elif step == "search_with_token":  # asks the positions afresh
            answer = answers.answer(**QUESTION, render=render)
            assert offered(answer.body) == set(range(len(STARTS))) - database.busy
            unheard = False
        else:
            answer = answers.kept(**QUESTION) or answers.answer(**QUESTION, render=render)
            if not unheard:
                assert offered(answer.body) == set(range(len(STARTS))) - database.busy


def test_a_reading_is_given_again_until_tracking_moves_and_asked_again_after():
    database, progress, versions, answers = setup()
    assert versions.known() is None  # never asked
    first = answers.answer(**QUESTION, render=render)
    assert database.asked == 1
    assert answers.kept(**QUESTION) == first
    assert versions.known() == (0, 0)
    assert database.asked == 1  # kept answers asked nothing
    database.positions[1] += 1
    progress.advanced(Catalog.name)
    assert versions.known() is None
    assert answers.kept(**QUESTION) is None
    answers.answer(**QUESTION, render=render)
    assert (database.asked, versions.known()) == (2, (0, 1))


def test_a_reading_is_not_given_again_past_its_age():
    _, _, versions, answers = setup(max_age=0.0)
    answers.answer(**QUESTION, render=render)
    assert versions.known() is None
    assert answers.kept(**QUESTION) is None


def test_other_questions_are_not_answered_from_a_kept_answer():
    _, _, _, answers = setup()
    answers.answer(**QUESTION, render=render)
    assert answers.kept(**{**QUESTION, "location_id": UUID(int=1)}) is None


def test_an_answer_within_the_horizon_outlives_the_ttl_and_one_beyond_it_does_not():
    # QUESTION ends two days after T0: a one-day horizon cuts it, a three-day one does not.
    for days, kept_after_an_hour in ((3, True), (1, False)):
        clock = SettableClock()
        _, _, _, answers = setup(horizon=timedelta(days=days), clock=clock)
        answer = answers.answer(**QUESTION, render=render)
        clock.advance(timedelta(hours=1))  # past the ttl, before the first slot
        assert (answers.kept(**QUESTION) == answer) is kept_after_an_hour
