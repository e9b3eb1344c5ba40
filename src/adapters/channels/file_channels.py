"""The development SMS and push channels: each message is one JSON line appended to a
file under ``DATA_DIR`` (``sms.jsonl``, ``push.jsonl``), readable with ``jq`` or by a
test. Nothing leaves the machine; the start-up line says where the file is."""

import json
import threading
from pathlib import Path
from typing import Any

import structlog

from application.channels import PUSH, SMS, ChannelSender, OutboundMessage, SendOutcome, Sent

log = structlog.get_logger(__name__)


class JsonLinesSender(ChannelSender):
    """Appends every message of ``channel`` to ``path`` as one JSON object per line."""

    def __init__(self, channel: str, path: Path) -> None:
        if channel not in (SMS, PUSH):
            raise ValueError("a JSON-lines channel is sms or push")
        self.channel = channel
        self.path = path
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)  # the messages hold patient data: this account only
        log.warning(f"{channel}_channel_writes_to_file", file=str(path), sends=False)

    def send(self, message: OutboundMessage) -> SendOutcome:
        self.check(message)
        line = json.dumps(self._record(message), ensure_ascii=False, sort_keys=True)
        with self._lock, self.path.open("a", encoding="utf-8") as file:
            file.write(line + "\n")
        log.info(f"{self.channel}_written_to_file", delivery_id=str(message.delivery_id))
        return Sent(provider_id=f"file:{message.delivery_id}")

    def _record(self, message: OutboundMessage) -> dict[str, Any]:
        record: dict[str, Any] = {
            "delivery_id": str(message.delivery_id),
            "channel": message.channel,
            "to": message.recipient,
            "language": message.language,
        }
        if message.push is not None:
            record.update(
                data=message.push.data, ttl=message.push.ttl, urgency=message.push.urgency
            )
        else:
            record["text"] = message.text
        return record


def sms_file(folder: Path) -> JsonLinesSender:
    """The development SMS channel: ``folder/sms.jsonl``."""
    return JsonLinesSender(SMS, folder / "sms.jsonl")


def push_file(folder: Path) -> JsonLinesSender:
    """The development push channel: ``folder/push.jsonl``."""
    return JsonLinesSender(PUSH, folder / "push.jsonl")
