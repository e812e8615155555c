"""The media message every part of srspy passes around (SRS's SrsCommonMessage /
SrsSharedPtrMessage): a type, a timestamp, a stream id and one immutable payload.

It is RTMP's message and FLV's tag at once: the type ids are the same numbers in both
(audio 8, video 9, script data 18). A message is created once at ingest; ``payload`` is
an immutable ``bytes`` object that the GOP cache and every consumer share by reference
(docs/architecture.md, the hot path). ``cs_id`` is the RTMP chunk stream the message
arrived on, if it came over RTMP (an encoder picks its own when it sends).
"""

from __future__ import annotations

# Message type ids (RTMP spec 7.1; the FLV tag types are the same numbers).
AUDIO = 8
VIDEO = 9
AMF3_DATA = 15
AMF3_SHARED_OBJECT = 16
AMF3_COMMAND = 17
AMF0_DATA = 18
AMF0_SHARED_OBJECT = 19
AMF0_COMMAND = 20
AGGREGATE = 22


class MediaMessage:
    """One media message. Hot-path object: ``__slots__``, no validation.

    ``timestamp`` is in milliseconds (the full 32-bit value, extended timestamps
    resolved). ``flags`` is filled by the live source at ingest (keyframe, sequence
    header) so that no player has to parse the payload again.
    """

    __slots__ = ("type", "timestamp", "stream_id", "payload", "cs_id", "flags", "_cache", "ts")

    def __init__(self, type: int, timestamp: int, stream_id: int, payload: bytes, cs_id: int = 0, flags: int = 0):
        self.type = type
        self.timestamp = timestamp
        self.stream_id = stream_id
        self.payload = payload
        self.cs_id = cs_id
        self.flags = flags
        self._cache = None  # RTMP chunking of the payload, per chunk size (rtmp/packer.py)
        self.ts = None  # the stream's MPEG-TS packets of this message, made once (app/stream_ts.py)

    def __repr__(self) -> str:
        return (
            f"MediaMessage(type={self.type}, timestamp={self.timestamp}, stream_id={self.stream_id}, "
            f"size={len(self.payload)}, cs_id={self.cs_id})"
        )

    def __eq__(self, other) -> bool:
        if not isinstance(other, MediaMessage):
            return NotImplemented
        return (
            self.type == other.type
            and self.timestamp == other.timestamp
            and self.stream_id == other.stream_id
            and self.payload == other.payload
        )

    __hash__ = None  # mutable timestamp; compare by value in tests only

    @property
    def is_audio(self) -> bool:
        return self.type == AUDIO

    @property
    def is_video(self) -> bool:
        return self.type == VIDEO

    @property
    def is_av(self) -> bool:
        return self.type == AUDIO or self.type == VIDEO

    @property
    def is_metadata(self) -> bool:
        return self.type == AMF0_DATA or self.type == AMF3_DATA

    def copy(self, timestamp: int | None = None) -> "MediaMessage":
        """A new message sharing the payload bytes (no copy of the payload)."""
        m = MediaMessage(self.type, self.timestamp if timestamp is None else timestamp, self.stream_id, self.payload, self.cs_id, self.flags)
        return m
