"""HTTP-FLV (and WS-FLV): the FLV muxer of the generic HTTP stream player.

The header is FLV's 13 bytes, with audio/video flags from ``http_remux``'s ``has_audio``/
``has_video`` or guessed from the first batch (``guess_has_av``); with
``drop_if_not_match`` the kinds the header rules out are not sent. Tags are packed by
kernel/flv.py's FlvTagPacker: per-tag headers in one reused buffer, payloads as they are.
"""

from __future__ import annotations

from ..kernel.flv import FlvTagPacker, flv_header
from ..kernel.message import AUDIO, VIDEO
from .muxer import Muxer, guess_av


class FlvMuxer(Muxer):
    ext = ".flv"
    content_type = "video/x-flv"
    websocket = True

    __slots__ = ("packer", "has_audio", "has_video", "drop", "_variant")

    def __init__(self, source, remux: dict):
        super().__init__(source, remux)
        self.packer = FlvTagPacker()
        self.has_audio = self.has_video = True
        self.drop = remux["drop_if_not_match"]
        self._variant = None

    def header(self, msgs: list) -> bytes | None:
        remux = self.remux
        if remux["guess_has_av"]:
            guessed = guess_av(msgs)
            if guessed is None:
                return None
            self.has_audio, self.has_video = guessed
        else:
            self.has_audio, self.has_video = remux["has_audio"], remux["has_video"]
        drop = self.drop
        self._variant = ("flv", self.has_audio or not drop, self.has_video or not drop)
        return flv_header(self.has_audio, self.has_video)

    def pack(self, msgs: list, base: int, out: list) -> int:
        if self.drop and not (self.has_audio and self.has_video):
            a, v = self.has_audio, self.has_video
            msgs = [m for m in msgs if (m.type != AUDIO or a) and (m.type != VIDEO or v)]
        return self.packer.iovecs(msgs, base, out)

    def variant(self):
        return self._variant
