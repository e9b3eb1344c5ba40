"""MLLP framing: ``0x0B`` payload ``0x1C 0x0D``, read tolerantly.

The deframer accepts what real peers send: junk before a start byte, a missing final
``0x0D``, garbage between frames, and a new start byte in the middle of a frame (the
half frame before it is given up). A frame larger than the bound is reported once as
oversize and skipped up to its end byte, so one huge frame cannot eat the memory.
"""

from dataclasses import dataclass

START = b"\x0b"
END = b"\x1c"
CR = b"\x0d"
DEFAULT_MAX_FRAME = 1024 * 1024
HEAD = 4096


def frame(payload: bytes) -> bytes:
    """The payload wrapped for the wire."""
    return START + payload + END + CR


@dataclass(frozen=True)
class Frame:
    payload: bytes  # for an oversize frame, only its first HEAD bytes
    oversize: bool = False


class Deframer:
    """Feed it bytes as they arrive; it returns the complete frames they close."""

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self.max_frame = max_frame
        self._buffer = bytearray()
        self._in_frame = False
        self._skipping = False  # inside an oversize frame, dropping bytes until its end
        self._head = b""  # the start of an oversize frame, enough to read its MSH
        self.discarded = 0  # bytes outside any frame, or in given-up half frames

    @property
    def pending(self) -> int:
        """Bytes of a frame begun but not finished."""
        return len(self._buffer)

    @property
    def in_frame(self) -> bool:
        """A start byte came and its frame has not ended yet."""
        return self._in_frame

    def feed(self, data: bytes) -> list[Frame]:
        frames: list[Frame] = []
        view = memoryview(data)
        position = 0
        while position < len(view):
            if not self._in_frame:
                start = data.find(START, position)
                if start < 0:
                    self.discarded += len(data) - position
                    break
                self.discarded += start - position
                position = start + 1
                self._in_frame = True
                self._skipping = False
                self._buffer.clear()
                continue
            end = data.find(END, position)
            restart = data.find(START, position)
            if restart >= 0 and (end < 0 or restart < end):
                # A new frame starts before this one ended: the half frame is given up.
                self.discarded += len(self._buffer) + restart - position
                self._buffer.clear()
                self._skipping = False
                position = restart + 1
                continue
            stop = len(data) if end < 0 else end
            if not self._skipping:
                self._buffer += view[position:stop]
                if len(self._buffer) > self.max_frame:
                    self._skipping = True
                    self._head = bytes(self._buffer[:HEAD])
                    self._buffer.clear()
            if end < 0:
                break
            position = end + 1
            if position < len(data) and data[position] == CR[0]:
                position += 1
            frames.append(
                Frame(self._head, oversize=True) if self._skipping else Frame(bytes(self._buffer))
            )
            self._buffer.clear()
            self._in_frame = False
            self._skipping = False
        return frames
