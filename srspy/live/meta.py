"""Port of SrsMetaCache: the latest onMetaData and audio/video sequence headers."""

from __future__ import annotations

from loguru import logger

from .. import SERVER, __version__
from ..errors import Amf0Error
from ..kernel import amf0
from ..kernel.message import AMF0_DATA, MediaMessage


#: The largest onMetaData kept for new players; a bigger one is dropped with a warning
#: (an index of keyframes of a two-hour file fits comfortably).
MAX_METADATA_BYTES = 256 * 1024


def reencode_metadata(payload: bytes) -> bytes | None:
    """onMetaData as SRS re-encodes it: ``@setDataFrame`` stripped, ``duration`` removed
    (ExoPlayer treats it as VOD), ``server`` and ``server_version`` added. None if the
    data message is not onMetaData."""
    values = amf0.decode_all(payload)
    if values and values[0] == "@setDataFrame":
        values = values[1:]
    if len(values) < 2 or values[0] != "onMetaData" or not isinstance(values[1], dict):
        return None
    meta = values[1]
    cls = type(meta)
    fixed = cls() if cls is not dict else {}
    for k, v in meta.items():
        if k != "duration":
            fixed[k] = v
    fixed["server"] = SERVER
    fixed["server_version"] = __version__
    return amf0.encode_all("onMetaData", fixed)


class MetaCache:
    """Holds what a new player needs before the GOP: metadata, audio SH, video SH."""

    __slots__ = ("metadata", "audio_sh", "video_sh", "video_color", "previous_audio_sh", "previous_video_sh")

    def __init__(self):
        self.metadata: MediaMessage | None = None
        self.audio_sh: MediaMessage | None = None
        self.video_sh: MediaMessage | None = None
        self.video_color: MediaMessage | None = None  # enhanced RTMP colour metadata (after video_sh)
        self.previous_audio_sh: MediaMessage | None = None
        self.previous_video_sh: MediaMessage | None = None

    def clear(self):
        """On publish: forget the previous stream's metadata and headers (SRS #1630)."""
        self.metadata = None
        self.audio_sh = None
        self.video_sh = None
        self.video_color = None

    def update_metadata(self, msg: MediaMessage) -> MediaMessage | None:
        """The re-encoded onMetaData, kept for new players; None (and the publish goes on)
        for another data message, or for metadata that is malformed or larger than
        ``MAX_METADATA_BYTES``, dropped with a warning."""
        size = len(msg.payload)
        if size > MAX_METADATA_BYTES:
            logger.warning("metadata of {} bytes dropped: larger than {}", size, MAX_METADATA_BYTES)
            return None
        try:
            payload = reencode_metadata(msg.payload)
        except Amf0Error as e:
            logger.warning("metadata of {} bytes dropped: {}", size, e)
            return None
        if payload is None:
            return None
        self.metadata = MediaMessage(AMF0_DATA, 0, msg.stream_id, payload, msg.cs_id)
        return self.metadata

    def dumps(self, metadata: bool = True, sequence_headers: bool = True, mp3: bool = False) -> list:
        """Metadata, then the audio SH (unless MP3), then the video SH: SRS's dump order."""
        out = []
        if metadata and self.metadata is not None:
            out.append(self.metadata)
        if sequence_headers:
            if self.audio_sh is not None and not mp3:
                out.append(self.audio_sh)
            if self.video_sh is not None:
                out.append(self.video_sh)
                if self.video_color is not None:
                    out.append(self.video_color)
        return out
