"""CalendarTurns: the first try goes straight through; a writer that collided tries again
in the calendar's turn; one that never gets through is told to try again."""

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from eventsourcing.persistence import IntegrityError

from application.calendar_turns import TRIES_IN_TURN, CalendarGate, CalendarTurns, calendar_key
from application.errors import ConcurrencyError


class RecordingGate(CalendarGate):
    def __init__(self) -> None:
        self.turns: list[int] = []
        self.held = False

    @contextmanager
    def turn(self, key: int) -> Iterator[None]:
        self.turns.append(key)
        self.held = True
        try:
            yield
        finally:
            self.held = False


def collides(times: int, gate: RecordingGate, seen: list[bool]):
    def attempt() -> str:
        seen.append(gate.held)
        if len(seen) <= times:
            raise IntegrityError("another writer saved this calendar's version first")
        return "saved"

    return attempt


def test_an_uncontended_write_takes_no_turn():
    gate, seen = RecordingGate(), []
    assert CalendarTurns(gate, busy="busy").write(7, collides(0, gate, seen)) == "saved"
    assert gate.turns == []
    assert seen == [False]


def test_a_writer_that_collided_tries_again_in_the_calendars_turn():
    gate, seen = RecordingGate(), []
    key = calendar_key("riverside", "2026-12-09")
    assert CalendarTurns(gate, busy="busy").write(key, collides(3, gate, seen)) == "saved"
    assert gate.turns == [key]
    assert seen == [False, True, True, True]


def test_a_writer_that_never_gets_through_is_told_to_try_again():
    gate, seen = RecordingGate(), []
    with pytest.raises(ConcurrencyError):
        CalendarTurns(gate, busy="busy").write(1, collides(10_000, gate, seen))
    assert len(seen) == 1 + TRIES_IN_TURN


def test_calendar_keys_are_stable_and_distinct():
    assert calendar_key("a", 1) == calendar_key("a", 1)
    assert calendar_key("a", 1) != calendar_key("a", 2)
    assert -(2**63) <= calendar_key("x") < 2**63
