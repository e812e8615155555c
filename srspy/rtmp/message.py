"""Port of SrsCommonMessage / SrsSharedPtrMessage: one complete RTMP message.

A message is created once when its last chunk arrives; ``payload`` is an immutable
``bytes`` object that the GOP cache and every consumer share by reference (DESIGN.md,
the hot path). ``cs_id`` is the chunk stream the message arrived on (the encoder picks
its own, by type, when it sends).
"""

from __future__ import annotations

# Message type ids (RTMP spec 5.4 and 7.1).
SET_CHUNK_SIZE = 1
ABORT = 2
ACKNOWLEDGEMENT = 3
USER_CONTROL = 4
WINDOW_ACK_SIZE = 5
SET_PEER_BANDWIDTH = 6
AUDIO = 8
VIDEO = 9
AMF3_DATA = 15
AMF3_SHARED_OBJECT = 16
AMF3_COMMAND = 17
AMF0_DATA = 18
AMF0_SHARED_OBJECT = 19
AMF0_COMMAND = 20
AGGREGATE = 22

# Preferred chunk stream ids for what we send (as SRS: RTMP_CID_*).
CID_PROTOCOL_CONTROL = 2
CID_OVER_CONNECTION = 3
CID_OVER_CONNECTION2 = 4
CID_OVER_STREAM = 5
CID_VIDEO = 6
CID_AUDIO = 7
CID_OVER_STREAM2 = 8

# User control event types.
UC_STREAM_BEGIN = 0
UC_STREAM_EOF = 1
UC_STREAM_DRY = 2
UC_SET_BUFFER_LENGTH = 3
UC_STREAM_IS_RECORDED = 4
UC_PING_REQUEST = 6
UC_PING_RESPONSE = 7


class RtmpMessage:
    """One RTMP message. Hot-path object: ``__slots__``, no validation.

    ``timestamp`` is in milliseconds (the full 32-bit value, extended timestamps
    resolved). ``flags`` is filled by the live source at ingest (keyframe, sequence
    header) so that no player has to parse the payload again.
    """

    __slots__ = ("type", "timestamp", "stream_id", "payload", "cs_id", "flags", "_cache")

    def __init__(self, type: int, timestamp: int, stream_id: int, payload: bytes, cs_id: int = 0, flags: int = 0):
        self.type = type
        self.timestamp = timestamp
        self.stream_id = stream_id
        self.payload = payload
        self.cs_id = cs_id
        self.flags = flags
        self._cache = None

    def __repr__(self) -> str:
        return (
            f"RtmpMessage(type={self.type}, timestamp={self.timestamp}, stream_id={self.stream_id}, "
            f"size={len(self.payload)}, cs_id={self.cs_id})"
        )

    def __eq__(self, other) -> bool:
        if not isinstance(other, RtmpMessage):
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

    def copy(self, timestamp: int | None = None) -> "RtmpMessage":
        """A new message sharing the payload bytes (no copy of the payload)."""
        m = RtmpMessage(self.type, self.timestamp if timestamp is None else timestamp, self.stream_id, self.payload, self.cs_id, self.flags)
        return m
