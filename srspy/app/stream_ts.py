"""HTTP-TS and WS-TS: the MPEG-TS muxer of the generic HTTP stream player (SRS's
http_remux ``.ts``, ``video/MP2T``).

The TS is made once per message for the whole stream, not per player: a ``TsCache``
attached to the source feeds kernel/ts.py's TsMuxer every message of the log in order
(and the sequence headers the source already had when the first TS player came) and keeps
each message's packets on the message (``MediaMessage.ts``). Continuity counters, PAT/PMT
repetition, PCR and timestamps therefore come from the stream's timeline: a player's
catch-up and the live stream it continues with are one continuous TS, and players at the
same position send the same bytes (shared by the hub as FLV players share theirs). A player
starts at a keyframe, whose packets begin with PAT and PMT; when its first message has
none (an audio-only stream), the response starts with the PAT and PMT the stream sent
last, so that its next shared ones continue their counters.
"""

from __future__ import annotations

from ..kernel.ts import TsMuxer, starts_with_psi
from .muxer import Muxer

TS_CACHE = "ts"  # the source's attachment


class TsCache:
    """The stream's TS, made lazily (from the first TS player on), once per message."""

    __slots__ = ("source", "muxer", "seq")

    def __init__(self, source):
        self.source = source
        self.muxer = TsMuxer()
        meta = source.meta
        for sh in (meta.video_sh, meta.audio_sh):  # they may have left the log already
            if sh is not None:
                self.muxer.mux(sh)
        self.seq = source.log.start

    @classmethod
    def of(cls, source) -> "TsCache":
        cache = source.attachments.get(TS_CACHE)
        if cache is None:
            cache = source.attachments[TS_CACHE] = cls(source)
        return cache

    def catch_up(self) -> None:
        """Mux every message appended since the last call (each exactly once)."""
        log = self.source.log
        if self.seq < log.start:
            self.seq = log.start  # trimmed before any TS player read them
        end = log.end
        if self.seq >= end:
            return
        mux = self.muxer.mux
        for m in log.read(self.seq, end - self.seq):
            if m.ts is None:
                m.ts = mux(m)
        self.seq = end

    def last_psi(self) -> bytes:
        """The PAT and PMT the stream sent last (its counters unchanged)."""
        return self.muxer.last_psi()


class TsStreamMuxer(Muxer):
    ext = ".ts"
    content_type = "video/MP2T"
    websocket = True

    __slots__ = ("cache",)

    def __init__(self, source, remux: dict):
        super().__init__(source, remux)
        self.cache = TsCache.of(source)

    def header(self, msgs: list) -> bytes | None:
        self.cache.catch_up()
        for m in msgs:
            data = m.ts
            if data:
                return b"" if starts_with_psi(data) else self.cache.last_psi()
        return None  # nothing to play yet: wait for media

    def pack(self, msgs: list, base: int, out: list) -> int:
        self.cache.catch_up()
        n = 0
        append = out.append
        for m in msgs:
            data = m.ts
            if data:
                append(data)
                n += len(data)
        return n

    def variant(self):
        return ("ts",)
