"""The operator's inbound desk names every status it takes, ``all`` included (the CLI
passes ``--status`` through as typed)."""

from typing import Any
from uuid import UUID

import pytest

from application.ris.inbound_desk import Hl7Inbound
from domain.errors import InvalidValueError


class ListingStore:
    """Records what the desk asks the store for."""

    def __init__(self) -> None:
        self.asked: list[tuple[str | None, int]] = []

    def list(self, status: str | None, limit: int) -> list[Any]:
        self.asked.append((status, limit))
        return []

    def get(self, message_id: UUID) -> None:
        return None


def desk(store: ListingStore) -> Hl7Inbound:
    return Hl7Inbound(store, clock=None, audit=None)  # type: ignore[arg-type]


def test_all_lists_every_status():
    # given the desk; when an operator asks for all messages
    store = ListingStore()
    desk(store).list("all", 20)
    # then the store is asked for no particular status
    assert store.asked == [(None, 20)]


def test_an_unknown_status_is_refused_naming_every_choice():
    # given the desk; when an operator asks for a status that does not exist
    store = ListingStore()
    with pytest.raises(InvalidValueError) as refused:
        desk(store).list("bogus")
    # then the refusal names all four choices, and the store was not asked
    assert refused.value.detail == "status must be one of received, processed, quarantined or all"
    assert store.asked == []


def test_a_replay_reason_past_1000_characters_is_refused_not_cut():
    # given the desk; when an operator replays with a 1001-character reason (the CLI
    # takes any length; the API refuses past 1000)
    store = ListingStore()
    with pytest.raises(InvalidValueError) as refused:
        desk(store).replay(UUID(int=1), "x" * 1001, actor=None)  # type: ignore[arg-type]
    # then it is refused, where it was cut to 1000 and recorded so
    assert refused.value.detail == "a replay reason is at most 1000 characters"
