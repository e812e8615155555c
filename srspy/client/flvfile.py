"""FLV files for the client tools: read tags from a file, write tags to one.

The writer only ever writes whole tags (header, payload and previous tag size in one
write), so a file closed at any moment, even on a signal, is a valid FLV file.
"""

from __future__ import annotations

from typing import NamedTuple

from ..kernel.flv import FLV_TAG_AUDIO, FLV_TAG_SCRIPT, FLV_TAG_VIDEO, FlvDecoder, encode_tag, flv_header
from ..kernel.message import AUDIO, VIDEO, MediaMessage

READ_SIZE = 256 * 1024


class FlvTag(NamedTuple):
    """One FLV tag: type (8 audio, 9 video, 18 script), timestamp in ms, payload."""

    type: int
    timestamp: int
    payload: bytes

    @classmethod
    def from_message(cls, msg: MediaMessage, timestamp: int | None = None) -> "FlvTag":
        tt = FLV_TAG_AUDIO if msg.type == AUDIO else FLV_TAG_VIDEO if msg.type == VIDEO else FLV_TAG_SCRIPT
        return cls(tt, msg.timestamp if timestamp is None else timestamp, msg.payload)

    def encode(self) -> bytes:
        return encode_tag(self.type, self.timestamp, self.payload)


def read_flv_file(path, header_out: list | None = None):
    """Yield every whole tag of an FLV file as FlvTag (a truncated last tag is left out).

    ``header_out``, when given, receives ``(has_audio, has_video)`` from the file header.
    Raises ValueError when the file is not FLV.
    """
    dec = FlvDecoder()
    with open(path, "rb") as f:
        while True:
            data = f.read(READ_SIZE)
            if not data:
                break
            msgs = dec.feed(data)
            if header_out is not None and dec.header is not None and not header_out:
                header_out.append(dec.header)
            for m in msgs:
                yield FlvTag.from_message(m)
    if dec.header is None:
        raise ValueError(f"{path}: not an FLV file")


class FlvFileWriter:
    """Write an FLV header then tags; ``close`` leaves a valid file."""

    def __init__(self, path_or_file, has_audio: bool = True, has_video: bool = True):
        if hasattr(path_or_file, "write"):
            self.f = path_or_file
            self.owned = False
        else:
            self.f = open(path_or_file, "wb")
            self.owned = True
        self.has_audio = has_audio
        self.has_video = has_video
        self.header_written = False
        self.tags = 0
        self.bytes = 0

    def write_header(self, has_audio: bool | None = None, has_video: bool | None = None):
        if self.header_written:
            return
        if has_audio is not None:
            self.has_audio = has_audio
        if has_video is not None:
            self.has_video = has_video
        h = flv_header(self.has_audio, self.has_video)
        self.f.write(h)
        self.bytes += len(h)
        self.header_written = True

    def write_tag(self, tag_type: int, timestamp: int, payload: bytes):
        if not self.header_written:
            self.write_header()
        b = encode_tag(tag_type, timestamp, payload)
        self.f.write(b)
        self.bytes += len(b)
        self.tags += 1

    def write_message(self, msg: MediaMessage):
        t = FlvTag.from_message(msg)
        self.write_tag(t.type, t.timestamp, t.payload)

    def flush(self):
        self.f.flush()

    def close(self):
        if not self.header_written:
            self.write_header()
        try:
            self.f.flush()
        finally:
            if self.owned:
                self.f.close()


__all__ = ["FlvTag", "FlvFileWriter", "read_flv_file"]
