"""HTTP-AAC: raw ADTS (SRS's http_remux ``.aac``, ``audio/x-aac``).

Each AAC frame goes out with the ADTS header made from the stream's AudioSpecificConfig
(kernel/ts.py AdtsConverter); video and metadata are left out. A player of an audio-only
stream starts ``fast_cache`` seconds back in the log (see http_stream.py).
"""

from __future__ import annotations

from ..kernel.message import AUDIO
from ..kernel.ts import AdtsConverter
from .muxer import Muxer


class AacMuxer(Muxer):
    ext = ".aac"
    content_type = "audio/x-aac"
    audio_only = True

    __slots__ = ("adts",)

    def __init__(self, source, remux: dict):
        super().__init__(source, remux)
        self.adts = AdtsConverter()

    def header(self, msgs: list) -> bytes | None:
        return b"" if any(m.type == AUDIO for m in msgs) else None

    def pack(self, msgs: list, base: int, out: list) -> int:
        n = 0
        feed = self.adts.feed
        for m in msgs:
            if m.type == AUDIO:
                frame = feed(m.payload)
                if frame:
                    out.append(frame)
                    n += len(frame)
        return n

    def variant(self):
        return ("aac",)
