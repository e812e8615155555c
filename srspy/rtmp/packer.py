"""The RTMP play hot path: chunk a batch of shared messages into iovecs for one sendmsg.

Per player only the 12-byte (16 with extended timestamp) first-chunk headers are packed,
into a reused buffer; payload slices at the out chunk size are computed once per message
and shared by every player (cached on the message), as are the 1-byte type-3 headers.
"""

from __future__ import annotations

import struct

from .chunk import _Slices
from .message import CID_AUDIO, CID_OVER_CONNECTION2, CID_VIDEO
from ..kernel.message import AUDIO, VIDEO

_H0 = struct.Struct(">BIHBI")  # basic header, ts(3)+size(1 of 3), size(2 of 3), type, stream id (LE as BE int)
_EXT = struct.Struct(">I")
_C3 = [bytes([0xC0 | i]) for i in range(64)]
EXT_TS = 0xFFFFFF


def payload_slices(msg, chunk_size: int) -> list:
    """The payload cut at ``chunk_size``, computed once per message and chunk size."""
    cache = msg._cache
    if type(cache) is _Slices and cache.chunk_size == chunk_size:
        return cache.slices
    p = msg.payload
    n = len(p)
    if n <= chunk_size:
        slices = [p]
    else:
        mv = memoryview(p)
        slices = [mv[i : i + chunk_size] for i in range(0, n, chunk_size)]
    msg._cache = _Slices(chunk_size, slices)
    return slices


def cid_for(msg_type: int) -> int:
    if msg_type == VIDEO:
        return CID_VIDEO
    if msg_type == AUDIO:
        return CID_AUDIO
    return CID_OVER_CONNECTION2


class RtmpChunkPacker:
    """Builds the iovecs of a batch for one player (SrsProtocol::do_send_messages)."""

    __slots__ = ("buf", "view", "cap", "stream_id_be")

    def __init__(self, stream_id: int = 1, max_msgs: int = 128):
        self.cap = max_msgs
        self.buf = bytearray(16 * max_msgs)
        self.view = memoryview(self.buf)
        self.stream_id_be = int.from_bytes(stream_id.to_bytes(4, "little"), "big")

    def iovecs(self, msgs: list, base: int, chunk_size: int, out: list) -> int:
        """Append the chunks of ``msgs`` to ``out``; return the byte count.

        A/V timestamps are ``timestamp - base`` (never below 0); data messages go at 0.
        """
        n = len(msgs)
        if n > self.cap:
            self.cap = n
            self.buf = bytearray(16 * n)
            self.view = memoryview(self.buf)
        buf, view, pack = self.buf, self.view, _H0.pack_into
        sid = self.stream_id_be
        append = out.append
        total = 0
        off = 0
        for m in msgs:
            t = m.type
            if t == VIDEO:
                cid = CID_VIDEO
                ts = m.timestamp - base
            elif t == AUDIO:
                cid = CID_AUDIO
                ts = m.timestamp - base
            else:
                cid = CID_OVER_CONNECTION2
                ts = 0
            if ts < 0:
                ts = 0
            size = len(m.payload)
            if ts < EXT_TS:
                pack(buf, off, cid, (ts << 8) | (size >> 16), size & 0xFFFF, t, sid)
                append(view[off : off + 12])
                total += 12
                ext = None
            else:
                pack(buf, off, cid, (EXT_TS << 8) | (size >> 16), size & 0xFFFF, t, sid)
                _EXT.pack_into(buf, off + 12, ts & 0xFFFFFFFF)
                append(view[off : off + 16])
                total += 16
                ext = _EXT.pack(ts & 0xFFFFFFFF)
            off += 16
            if size <= chunk_size:
                append(m.payload)
            else:
                slices = payload_slices(m, chunk_size)
                append(slices[0])
                c3 = _C3[cid] if ext is None else _C3[cid] + ext
                for s in slices[1:]:
                    append(c3)
                    append(s)
                total += len(c3) * (len(slices) - 1)
            total += size
        return total


class SharedPacks:
    """Chunked batches kept for the players that send the same messages with the same
    timestamp base: players that joined at one keyframe catch up through the same GOP,
    a few messages a write, so the first one there chunks a batch and the others send
    the same buffers. Keyed by the messages themselves (held by the entry, so their ids
    stay theirs); small and bounded, oldest out first."""

    __slots__ = ("entries", "limit")

    def __init__(self, limit: int = 32):
        self.entries: dict = {}
        self.limit = limit

    def pack(self, msgs: list, base: int, chunk_size: int, stream_id: int) -> tuple:
        """``(iovecs, size)`` of ``msgs``; the iovecs are shared: never change them."""
        key = (base, chunk_size, stream_id, *map(id, msgs))
        entries = self.entries
        hit = entries.get(key)
        if hit is not None:
            return hit[1], hit[2]
        bufs: list = []
        size = RtmpChunkPacker(stream_id, len(msgs)).iovecs(msgs, base, chunk_size, bufs)
        if len(entries) >= self.limit:
            del entries[next(iter(entries))]
        entries[key] = (msgs, bufs, size)
        return bufs, size


shared_packs = SharedPacks()

