"""HTTP-MP3 (SRS's http_remux ``.mp3``, ``audio/mpeg``): an ID3v2 header, then the MPEG
audio frames as the publisher sent them (the FLV audio byte removed); video and metadata
are left out. A player of an audio-only stream starts ``fast_cache`` seconds back."""

from __future__ import annotations

from ..kernel.message import AUDIO
from ..kernel.ts import MP3_ID3V2_HEADER, mp3_frames
from .muxer import Muxer


class Mp3Muxer(Muxer):
    ext = ".mp3"
    content_type = "audio/mpeg"
    audio_only = True

    __slots__ = ()

    def header(self, msgs: list) -> bytes | None:
        return MP3_ID3V2_HEADER if any(m.type == AUDIO for m in msgs) else None

    def pack(self, msgs: list, base: int, out: list) -> int:
        n = 0
        for m in msgs:
            if m.type == AUDIO and len(m.payload) > 1:
                frame = mp3_frames(m.payload)
                out.append(frame)
                n += len(frame)
        return n

    def variant(self):
        return ("mp3",)
