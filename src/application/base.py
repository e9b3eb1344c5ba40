"""What every Imaging Bridge application shares: transcodings and save positions."""

from dataclasses import dataclass
from datetime import date
from typing import Any

from eventsourcing.application import Application
from eventsourcing.persistence import JSONTranscoder, Recording, Transcoding


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

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(DateAsISO())

    def position_of(self, recordings: list[Recording[Any]]) -> Position | None:
        """The position of the last event a save recorded (None if it recorded none)."""
        if not recordings:
            return None
        return Position(self.name, recordings[-1].notification.id)
