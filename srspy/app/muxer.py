"""The interface every HTTP stream container implements (stream_flv.py, stream_ts.py,
stream_aac.py, stream_mp3.py), used by the generic player in http_stream.py.

A muxer belongs to one player. The player asks it for the response's first bytes
(``header``) with its first batch of messages, then for the bytes of every batch
(``pack``: buffers appended to ``out``, nothing copied where the payload can go as it
is). Players whose muxers report the same ``variant()`` produce the same bytes for the
same messages and timestamp base: the hub encodes a batch once for all of them
(docs/architecture.md, the hot path).
"""

from __future__ import annotations

from ..kernel.codec import F_SEQUENCE_HEADER
from ..kernel.message import AUDIO, VIDEO

GUESS_MIN_FRAMES = 30  # frames of one kind, none of the other, before the other is ruled out


class Muxer:
    ext = ""
    content_type = "application/octet-stream"
    websocket = False  # also served over WebSocket (ws://...) on a request with Upgrade
    audio_only = False  # sends audio only: a new player starts http_remux.fast_cache back

    __slots__ = ("source", "remux")

    def __init__(self, source, remux: dict):
        self.source = source
        self.remux = remux

    def header(self, msgs: list) -> bytes | None:
        """The bytes that start the response, given the first batch; None to hold the
        batch until more comes (the header needs media to decide)."""
        return b""

    def pack(self, msgs: list, base: int, out: list) -> int:
        """Append the buffers of ``msgs`` (A/V timestamps minus ``base``) to ``out``;
        return the number of bytes."""
        raise NotImplementedError

    def variant(self):
        """Hashable: equal for muxers that make equal bytes of the same batch."""
        raise NotImplementedError


def guess_av(msgs: list):
    """SRS's guess_has_av over a first batch: (has_audio, has_video), None if neither.

    A kind with frames in the batch is present. A kind with only a sequence header counts
    as present too, unless the batch holds many frames of the other kind and none of its
    own (SRS's rule for a stream that declares audio or video and never sends it); srspy's
    first write is small, so a few video frames without audio yet are not enough to drop
    the audio."""
    audios = videos = audio_frames = video_frames = 0
    for m in msgs:
        if m.type == AUDIO:
            audios += 1
            if not m.flags & F_SEQUENCE_HEADER:
                audio_frames += 1
        elif m.type == VIDEO:
            videos += 1
            if not m.flags & F_SEQUENCE_HEADER:
                video_frames += 1
    has_audio, has_video = audios > 0, videos > 0
    if video_frames >= GUESS_MIN_FRAMES and not audio_frames:
        has_audio = False
    if audio_frames >= GUESS_MIN_FRAMES and not video_frames:
        has_video = False
    if not has_audio and not has_video:
        return None
    return has_audio, has_video
