"""Port of SrsFlvTransmuxer / SrsFlvDecoder: FLV header, tag packing and parsing.

The writer side is built for the HTTP-FLV hot path: ``FlvTagPacker.iovecs`` turns a
batch of shared messages into an iovec list for ONE ``sendmsg``, packing only the small
per-player headers into a reused buffer and referencing each payload as is.
"""

from __future__ import annotations

import struct

from .message import AMF0_DATA, AUDIO, VIDEO, MediaMessage

FLV_TAG_AUDIO = 8
FLV_TAG_VIDEO = 9
FLV_TAG_SCRIPT = 18

# prev-tag-size of the previous tag (4) + this tag's header (11): one pack per tag.
_TAG = struct.Struct(">IIIHB")
_PREV = struct.Struct(">I")
_HDR = struct.Struct(">IIHB")


def flv_header(has_audio: bool, has_video: bool) -> bytes:
    """The 9-byte FLV header followed by PreviousTagSize0 (13 bytes)."""
    flags = (4 if has_audio else 0) | (1 if has_video else 0)
    return b"FLV\x01" + bytes([flags]) + b"\x00\x00\x00\x09" + b"\x00\x00\x00\x00"


def tag_type(msg_type: int) -> int:
    if msg_type == AUDIO:
        return FLV_TAG_AUDIO
    if msg_type == VIDEO:
        return FLV_TAG_VIDEO
    return FLV_TAG_SCRIPT


def encode_tag(tag_type_: int, timestamp: int, payload: bytes) -> bytes:
    """One whole FLV tag (header, payload, previous tag size)."""
    n = len(payload)
    ts = timestamp & 0xFFFFFFFF
    hdr = _HDR.pack((tag_type_ << 24) | n, ((ts & 0xFFFFFF) << 8) | (ts >> 24), 0, 0)
    return hdr + payload + _PREV.pack(n + 11)


class FlvTagPacker:
    """Packs per-player FLV tag headers into one reused buffer (SrsFlvTransmuxer::write_tags).

    Layout of slot i (15 bytes): previous-tag-size of tag i-1, then tag i's 11-byte header;
    the batch's final previous-tag-size follows the last slot. The iovec list is
    ``[hdr0, payload0, prev0+hdr1, payload1, ..., prevN]``: 2n+1 buffers for n tags.
    """

    __slots__ = ("buf", "view", "cap")

    def __init__(self, max_tags: int = 128):
        self.cap = max_tags
        self.buf = bytearray(15 * max_tags + 4)
        self.view = memoryview(self.buf)

    def iovecs(self, msgs: list, base: int, out: list) -> int:
        """Append the iovecs of ``msgs`` to ``out``; return the number of bytes they hold.

        ``base`` is subtracted from every A/V timestamp (per-player jitter offset, never
        below 0); script tags carry timestamp 0, as SRS writes them.
        """
        n = len(msgs)
        if n > self.cap:
            self.cap = n
            self.buf = bytearray(15 * n + 4)
            self.view = memoryview(self.buf)
        buf, view, pack = self.buf, self.view, _TAG.pack_into
        append = out.append
        total = 0
        prev = 0
        off = 0
        for m in msgs:
            t = m.type
            size = len(m.payload)
            if t == VIDEO:
                tt = 0x09000000
                ts = m.timestamp - base
            elif t == AUDIO:
                tt = 0x08000000
                ts = m.timestamp - base
            else:
                tt = 0x12000000
                ts = 0
            if ts < 0:
                ts = 0
            pack(buf, off, prev, tt | size, ((ts & 0xFFFFFF) << 8) | ((ts >> 24) & 0xFF), 0, 0)
            append(view[off + 4 if off == 0 else off : off + 15])
            append(m.payload)
            prev = size + 11
            total += size + 15
            off += 15
        if n:
            _PREV.pack_into(buf, off, prev)
            append(view[off : off + 4])
        return total


def iter_tags(data: bytes, offset: int = 13):
    """Yield (tag_type, timestamp, payload) from a whole FLV byte string (after the header)."""
    n = len(data)
    while offset + 11 <= n:
        tt = data[offset]
        size = int.from_bytes(data[offset + 1 : offset + 4], "big")
        ts = int.from_bytes(data[offset + 4 : offset + 7], "big") | (data[offset + 7] << 24)
        start = offset + 11
        if start + size + 4 > n:
            break
        yield tt, ts, bytes(data[start : start + size])
        offset = start + size + 4


class FlvDecoder:
    """Push parser for an FLV byte stream: ``feed(data) -> [MediaMessage]`` (header checked)."""

    def __init__(self, max_tag_size: int = 16 * 1024 * 1024):
        self.buf = bytearray()
        self.header = None  # (has_audio, has_video) once parsed
        self.max_tag_size = max_tag_size

    def feed(self, data) -> list:
        self.buf += data
        out = []
        buf = self.buf
        pos = 0
        if self.header is None:
            if len(buf) < 13:
                return out
            if bytes(buf[:3]) != b"FLV":
                raise ValueError(f"flv: bad signature {bytes(buf[:3])!r}")
            flags = buf[4]
            hsize = int.from_bytes(buf[5:9], "big")
            if hsize < 9 or hsize > 1024:
                raise ValueError(f"flv: bad header size {hsize}")
            if len(buf) < hsize + 4:
                return out
            self.header = (bool(flags & 4), bool(flags & 1))
            pos = hsize + 4
        n = len(buf)
        while pos + 11 <= n:
            size = int.from_bytes(buf[pos + 1 : pos + 4], "big")
            if size > self.max_tag_size:
                raise ValueError(f"flv: tag of {size} bytes exceeds {self.max_tag_size}")
            end = pos + 11 + size + 4
            if end > n:
                break
            tt = buf[pos]
            ts = int.from_bytes(buf[pos + 4 : pos + 7], "big") | (buf[pos + 7] << 24)
            mtype = {FLV_TAG_AUDIO: AUDIO, FLV_TAG_VIDEO: VIDEO}.get(tt & 0x1F, AMF0_DATA)
            out.append(MediaMessage(mtype, ts, 1, bytes(buf[pos + 11 : pos + 11 + size])))
            pos = end
        if pos:
            del buf[:pos]
        return out


def split_aggregate(msg: MediaMessage) -> list:
    """Port of SrsLiveSource::on_aggregate: the FLV tags inside an aggregate message,
    their timestamps rebased on the aggregate's own."""
    out = []
    p = msg.payload
    pos = 0
    delta = None
    n = len(p)
    while pos + 11 <= n:
        tt = p[pos] & 0x1F
        size = int.from_bytes(p[pos + 1 : pos + 4], "big")
        ts = int.from_bytes(p[pos + 4 : pos + 7], "big") | (p[pos + 7] << 24)
        if pos + 11 + size + 4 > n:
            break
        if delta is None:
            delta = msg.timestamp - ts
        mtype = AUDIO if tt == 8 else VIDEO if tt == 9 else AMF0_DATA
        out.append(MediaMessage(mtype, (ts + delta) & 0xFFFFFFFF, msg.stream_id, bytes(p[pos + 11 : pos + 11 + size])))
        pos += 11 + size + 4
    return out
