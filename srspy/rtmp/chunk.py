"""RTMP chunk stream: a push decoder (bytes in, messages out) and an encoder.

Port of the chunk layer of SrsProtocol (read_basic_header, read_message_header,
read_message_payload, SrsChunkStream; do_send_messages and the c0/c3 header cache on the
way out), without the socket: ``ChunkDecoder.feed(data)`` takes whatever ``recv_into``
returned and gives back the messages completed by it, however the bytes were split.

Decoder strategy. Received bytes are appended to one ``bytearray``. Chunk headers are
parsed in place with ``struct.unpack_from``. A message that is one chunk and all there
(the common case) becomes one slice copy of the buffer. Any other message collects its
chunk payloads in a ``bytearray`` of its own as they are parsed, and becomes one
immutable ``bytes`` when its last chunk is in. The parsed prefix of the receive buffer
is then dropped once per ``feed`` with ``del buf[:n]``: nothing else refers to it, so the
cost of a ``feed`` is linear in the bytes it parses, whatever the number of unfinished
messages.

Bounds (what one peer may make the decoder hold): ``max_message_size`` per message,
checked on its header before any byte of payload is buffered; ``max_chunk_streams``
distinct chunk stream ids (SRS keeps every id a peer names, up to 65599; nginx-rtmp
allows 32); ``max_pending_bytes`` of unfinished messages across all chunk streams.
Beyond any of them ``feed`` raises (``MessageSizeError``, ``RtmpProtocolError``).

Rules, as SRS applies them:
  * the first chunk ever seen on a chunk stream must be fmt 0; fmt 1 is tolerated
    (librtmp sends a fresh ping that way), fmt 2 and 3 are ``RtmpProtocolError``
    (ERROR_RTMP_CHUNK_START); fmt 0 inside an unfinished message is an error too, and
    so is a fmt 1 header that changes the length of an unfinished message;
  * a type 3 chunk that starts a message adds the previous delta (for a message after a
    fmt 0 chunk, the delta is that chunk's timestamp);
  * extended timestamps: read after fmt 0/1/2 headers whose 24-bit field is 0xFFFFFF,
    and after the type 3 header that starts a message on such a stream; on type 3
    continuation chunks the 4 bytes are taken when they repeat the extended value (as
    Flash, FMS, ffmpeg, librtmp and SRS send them) and left as payload otherwise (as
    some encoders omit them), which needs 4 bytes of look-ahead, as in SRS;
  * the extended field of a fmt 1/2 header, or of a type 3 header starting a message,
    is a delta (the RTMP specification, ffmpeg and librtmp; SRS reads it as absolute);
  * timestamps are kept to 31 bits (SRS: "always use 31bits timestamp");
  * Set Chunk Size (type 1) below 128 or with the top bit set is ``ChunkSizeError``;
    values above 65536 are accepted. Abort (type 2) drops the unfinished message of the
    chunk stream it names. Both take effect on the very next byte, and both are also
    returned, so that the protocol layer can log them;
  * a message header announcing more than ``max_message_size`` bytes is
    ``MessageSizeError`` at once, before any byte of payload is buffered;
  * messages with an empty payload are returned (SRS ignores them one layer up).
After an error the decoder stays broken: every later ``feed`` raises the same error.

Encoder. Every message starts with a fmt 0 chunk; continuation chunks are fmt 3 and
repeat the extended timestamp when there is one, as SRS, ffmpeg and librtmp do.
``encode_iovecs`` is the fan-out variant: the two distinct headers of a message (the
fmt 0 one and the fmt 3 one all continuations share) are packed into the caller's
reused ``bytearray``, and the payload is cut into chunk-sized memoryviews once per
message and chunk size, cached on the message for every player at that chunk size.
"""

from __future__ import annotations

import struct

from srspy.errors import (
    ERROR_RTMP_CHUNK_START,
    ChunkSizeError,
    MessageSizeError,
    RtmpProtocolError,
)
from srspy.rtmp.message import ABORT, ACKNOWLEDGEMENT, CID_PROTOCOL_CONTROL, SET_CHUNK_SIZE, SET_PEER_BANDWIDTH, USER_CONTROL, WINDOW_ACK_SIZE
from srspy.kernel.message import MediaMessage

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "MIN_IN_CHUNK_SIZE",
    "MAX_MESSAGE_SIZE",
    "MAX_CHUNK_STREAMS",
    "MAX_PENDING_BYTES",
    "MAX_IOVEC_HEADER",
    "ChunkDecoder",
    "ChunkEncoder",
    "set_chunk_size",
    "abort",
    "acknowledgement",
    "window_ack_size",
    "set_peer_bandwidth",
    "user_control",
]

DEFAULT_CHUNK_SIZE = 128
#: SRS refuses a peer's Set Chunk Size below this (#541).
MIN_IN_CHUNK_SIZE = 128
#: Above this SRS warns but accepts (#160).
MAX_RECOMMENDED_CHUNK_SIZE = 65536
MAX_CHUNK_SIZE = 0x7FFFFFFF
MAX_MESSAGE_SIZE = 16 * 1024 * 1024
#: Defaults of the per-connection bounds (``limits`` in srspy/config/configspec.ini sets
#: the server's): distinct chunk stream ids, and bytes of unfinished messages.
MAX_CHUNK_STREAMS = 64
MAX_PENDING_BYTES = 2 * MAX_MESSAGE_SIZE
#: Header bytes ``encode_iovecs`` may need per message: fmt 0 (3+11+4) plus fmt 3 (3+4).
MAX_IOVEC_HEADER = 25

EXTENDED_TIMESTAMP = 0xFFFFFF
MAX_CS_ID = 65599
_TS_MASK = 0x7FFFFFFF

_FMT0 = struct.Struct("<7BI")  # timestamp (3, big-endian), length (3), type, stream id (LE)
_FMT1 = struct.Struct("<7B")  # timestamp delta (3), length (3), type
_FMT2 = struct.Struct("<3B")  # timestamp delta (3)
_U32 = struct.Struct(">I")
_HDR_SIZES = (11, 7, 3, 0)


def _fresh_stream_error(cid: int, fmt: int) -> RtmpProtocolError:
    return RtmpProtocolError(
        f"chunk: fresh chunk stream {cid} must start with fmt 0, got fmt {fmt}", code=ERROR_RTMP_CHUNK_START)


class _ChunkStream:
    """Per chunk stream state (SrsChunkStream): the last header and the unfinished message."""

    __slots__ = ("cs_id", "seen", "timestamp", "delta", "ext", "length", "type", "stream_id",
                 "data")

    def __init__(self, cs_id: int):
        self.cs_id = cs_id
        self.seen = False  # a chunk header was read on this stream (SRS msg_count > 0)
        self.timestamp = 0
        self.delta = 0  # last timestamp field (fmt 0: absolute; fmt 1/2: delta), extended if ext
        self.ext = False
        self.length = 0
        self.type = 0
        self.stream_id = 0
        self.data: bytearray | None = None  # the payload of the unfinished message so far


class ChunkDecoder:
    """Push parser of the chunk stream a peer sends after the handshake.

    ``feed(data)`` returns the list of ``MediaMessage`` completed by ``data``.
    ``bytes_received`` counts every byte fed (for acknowledgements; the handshake is not
    included). ``chunk_size`` is the current in chunk size.
    """

    def __init__(self, max_message_size: int = MAX_MESSAGE_SIZE, max_chunk_streams: int = MAX_CHUNK_STREAMS,
                 max_pending_bytes: int = MAX_PENDING_BYTES):
        self.max_message_size = max_message_size
        self.max_chunk_streams = max_chunk_streams
        self.max_pending_bytes = max_pending_bytes
        self.bytes_received = 0
        self.pending_bytes = 0  # payload bytes held by unfinished messages
        self._chunk_size = DEFAULT_CHUNK_SIZE
        self._buf = bytearray()
        self._pos = 0  # parse position in _buf
        self._streams: dict[int, _ChunkStream] = {}
        self._cur: _ChunkStream | None = None  # stream whose chunk payload is being read
        self._chunk_left = 0
        self._error: Exception | None = None

    @property
    def chunk_size(self) -> int:
        return self._chunk_size

    def set_chunk_size(self, size: int) -> None:
        """Set the in chunk size directly (1 .. 2**31-1), bypassing SRS's 128 minimum."""
        if not 1 <= size <= MAX_CHUNK_SIZE:
            raise ChunkSizeError(f"chunk size {size} out of range 1..{MAX_CHUNK_SIZE}")
        self._chunk_size = size

    @property
    def buffered(self) -> int:
        """Bytes held: unparsed in the receive buffer, or in unfinished messages."""
        return len(self._buf) + self.pending_bytes

    @property
    def chunk_streams(self) -> int:
        """Distinct chunk stream ids seen so far."""
        return len(self._streams)

    def feed(self, data) -> list[MediaMessage]:
        if self._error is not None:
            raise self._error
        buf = self._buf
        if data:
            buf += data
            self.bytes_received += len(data)
        out: list[MediaMessage] = []
        mv = memoryview(buf)
        try:
            self._pos = self._parse(buf, mv, out)
        except RtmpProtocolError as e:
            self._error = e
            raise
        finally:
            mv.release()
        n = self._pos
        if n > 0:
            del buf[:n]
            self._pos = 0
        return out

    # The parser proper. Locals mirror attributes for speed; attributes are written back
    # whenever the loop leaves, so it can stop after any byte and resume on the next feed.
    def _parse(self, buf: bytearray, mv: memoryview, out: list) -> int:
        end = len(buf)
        pos = self._pos
        streams = self._streams
        chunk_size = self._chunk_size
        max_size = self.max_message_size

        while True:
            cs = self._cur
            if cs is not None:
                # Inside a chunk payload: take what is there, up to the end of the chunk.
                left = self._chunk_left
                avail = end - pos
                if avail <= 0:
                    return pos
                take = left if left <= avail else avail
                self.pending_bytes += take
                if self.pending_bytes > self.max_pending_bytes:
                    raise MessageSizeError(
                        f"chunk: unfinished messages on {sum(1 for c in streams.values() if c.data is not None)} "
                        f"chunk streams hold more than {self.max_pending_bytes} bytes (cs {cs.cs_id})")
                data = cs.data
                data += mv[pos:pos + take]
                pos += take
                if take < left:
                    self._chunk_left = left - take
                    return pos
                self._cur = None
                if len(data) >= cs.length:
                    msg = self._finish(cs)
                    out.append(msg)
                    if 0 < msg.type <= ABORT:
                        self._control(msg)
                        chunk_size = self._chunk_size
                continue

            # Basic header: 1, 2 or 3 bytes.
            avail = end - pos
            if avail <= 0:
                return pos
            b0 = buf[pos]
            fmt = b0 >> 6
            cid = b0 & 0x3F
            p = pos + 1
            if cid < 2:
                if cid == 0:
                    if avail < 2:
                        return pos
                    cid = 64 + buf[pos + 1]
                    p = pos + 2
                else:
                    if avail < 3:
                        return pos
                    cid = 64 + buf[pos + 1] + (buf[pos + 2] << 8)
                    p = pos + 3
            if end - p < _HDR_SIZES[fmt]:
                return pos
            cs = streams.get(cid)
            if cs is None:
                if len(streams) >= self.max_chunk_streams:
                    raise RtmpProtocolError(
                        f"chunk: cs {cid} would be chunk stream {len(streams) + 1}, more than {self.max_chunk_streams}",
                        code=ERROR_RTMP_CHUNK_START)
                cs = streams[cid] = _ChunkStream(cid)
            partial = cs.data is not None
            # Message header. Nothing is committed to ``cs`` until the whole header,
            # extended timestamp included, is in the buffer.
            if fmt == 0:
                t0, t1, t2, l0, l1, l2, mtype, sid = _FMT0.unpack_from(buf, p)
                p += 11
                field = (t0 << 16) | (t1 << 8) | t2
                ext = field == EXTENDED_TIMESTAMP
                if ext:
                    if end - p < 4:
                        return pos
                    field = _U32.unpack_from(buf, p)[0] & _TS_MASK
                    p += 4
                if partial:
                    raise RtmpProtocolError(
                        f"chunk: fmt 0 on cs {cid} inside an unfinished message", code=ERROR_RTMP_CHUNK_START)
                length = (l0 << 16) | (l1 << 8) | l2
                if length > max_size:
                    raise MessageSizeError(f"chunk: message of {length} bytes on cs {cid} exceeds {max_size}")
                cs.timestamp = field
                cs.delta = field
                cs.ext = ext
                cs.length = length
                cs.type = mtype
                cs.stream_id = sid
            elif fmt == 1:
                t0, t1, t2, l0, l1, l2, mtype = _FMT1.unpack_from(buf, p)
                p += 7
                field = (t0 << 16) | (t1 << 8) | t2
                ext = field == EXTENDED_TIMESTAMP
                if ext:
                    if end - p < 4:
                        return pos
                    field = _U32.unpack_from(buf, p)[0] & _TS_MASK
                    p += 4
                # A fresh stream starting with fmt 1 is accepted, as SRS does for librtmp.
                length = (l0 << 16) | (l1 << 8) | l2
                if partial and length != cs.length:
                    raise MessageSizeError(
                        f"chunk: cs {cid} unfinished message size {cs.length} cannot change to {length}")
                if length > max_size:
                    raise MessageSizeError(f"chunk: message of {length} bytes on cs {cid} exceeds {max_size}")
                cs.timestamp = (cs.timestamp + field) & _TS_MASK
                cs.delta = field
                cs.ext = ext
                cs.length = length
                cs.type = mtype
            elif fmt == 2:
                t0, t1, t2 = _FMT2.unpack_from(buf, p)
                p += 3
                field = (t0 << 16) | (t1 << 8) | t2
                ext = field == EXTENDED_TIMESTAMP
                if ext:
                    if end - p < 4:
                        return pos
                    field = _U32.unpack_from(buf, p)[0] & _TS_MASK
                    p += 4
                if not cs.seen:
                    raise _fresh_stream_error(cid, 2)
                cs.timestamp = (cs.timestamp + field) & _TS_MASK
                cs.delta = field
                cs.ext = ext
            else:
                if not cs.seen:
                    raise _fresh_stream_error(cid, 3)
                if cs.ext:
                    if end - p < 4:
                        return pos
                    value = _U32.unpack_from(buf, p)[0] & _TS_MASK
                    if not partial:
                        # A new message: the extended field carries its delta.
                        p += 4
                        cs.delta = value
                        cs.timestamp = (cs.timestamp + value) & _TS_MASK
                    elif value == cs.delta or value == cs.timestamp:
                        p += 4  # the repeated extended timestamp of a continuation chunk
                elif not partial:
                    cs.timestamp = (cs.timestamp + cs.delta) & _TS_MASK
            cs.seen = True
            pos = p

            length = cs.length
            if not partial:
                # First chunk of a message.
                if length <= chunk_size and end - pos >= length:
                    # Fast path: the whole message is this chunk, and it is all here.
                    msg = MediaMessage(cs.type, cs.timestamp, cs.stream_id, bytes(mv[pos:pos + length]), cid)
                    pos += length
                    out.append(msg)
                    if 0 < msg.type <= ABORT:
                        self._control(msg)
                        chunk_size = self._chunk_size
                    continue
                cs.data = bytearray()
            left = length - len(cs.data)  # > 0: an unfinished message always misses bytes
            self._cur = cs
            self._chunk_left = left if left < chunk_size else chunk_size

    def _finish(self, cs: _ChunkStream) -> MediaMessage:
        data = cs.data
        cs.data = None
        self.pending_bytes -= len(data)
        return MediaMessage(cs.type, cs.timestamp, cs.stream_id, bytes(data), cs.cs_id)

    def _control(self, msg: MediaMessage) -> None:
        """Apply Set Chunk Size and Abort, which change how the next bytes are read."""
        payload = msg.payload
        if len(payload) < 4:
            raise RtmpProtocolError(
                f"chunk: protocol control message type {msg.type} needs 4 bytes, got {len(payload)}")
        (value,) = _U32.unpack_from(payload, 0)
        if msg.type == SET_CHUNK_SIZE:
            if value < MIN_IN_CHUNK_SIZE or value > MAX_CHUNK_SIZE:
                raise ChunkSizeError(f"chunk size should be {MIN_IN_CHUNK_SIZE}+, value={value}")
            self._chunk_size = value
        else:
            cs = self._streams.get(value)
            if cs is not None and cs.data is not None:
                self.pending_bytes -= len(cs.data)
                cs.data = None


def _basic_header(fmt: int, cs_id: int) -> bytes:
    if 2 <= cs_id <= 63:
        return bytes(((fmt << 6) | cs_id,))
    if 64 <= cs_id <= 319:
        return bytes((fmt << 6, cs_id - 64))
    if 320 <= cs_id <= MAX_CS_ID:
        v = cs_id - 64
        return bytes(((fmt << 6) | 1, v & 0xFF, v >> 8))
    raise ValueError(f"chunk stream id {cs_id} out of range 2..{MAX_CS_ID}")


class _Slices:
    """The payload of a message cut at one chunk size; kept in ``MediaMessage._cache``."""

    __slots__ = ("chunk_size", "slices")

    def __init__(self, chunk_size: int, slices: list):
        self.chunk_size = chunk_size
        self.slices = slices


class ChunkEncoder:
    """Cuts messages into chunks at the out chunk size (SrsProtocol's send side)."""

    def __init__(self, chunk_size: int = DEFAULT_CHUNK_SIZE):
        self.chunk_size = DEFAULT_CHUNK_SIZE
        self.set_chunk_size(chunk_size)

    def set_chunk_size(self, size: int) -> None:
        """Change the out chunk size; send the Set Chunk Size message before the next chunk."""
        if not 1 <= size <= MAX_CHUNK_SIZE:
            raise ValueError(f"chunk size {size} out of range 1..{MAX_CHUNK_SIZE}")
        self.chunk_size = size

    def encode(self, msg: MediaMessage, cs_id: int) -> bytes:
        """All chunks of ``msg`` on chunk stream ``cs_id``, with ``msg.timestamp``."""
        ts = msg.timestamp & 0xFFFFFFFF
        payload = msg.payload
        size = len(payload)
        if size > 0xFFFFFF:
            raise ValueError(f"message of {size} bytes does not fit the 24-bit length field")
        ext = b""
        field = ts
        if ts >= EXTENDED_TIMESTAMP:
            field = EXTENDED_TIMESTAMP
            ext = _U32.pack(ts)
        first = (_basic_header(0, cs_id) + field.to_bytes(3, "big") + size.to_bytes(3, "big")
                 + bytes((msg.type & 0xFF,)) + (msg.stream_id & 0xFFFFFFFF).to_bytes(4, "little") + ext)
        cont = _basic_header(3, cs_id) + ext
        n = self.chunk_size
        parts = [first, payload[:n]]
        for i in range(n, size, n):
            parts.append(cont)
            parts.append(payload[i:i + n])
        return b"".join(parts)

    def payload_slices(self, msg: MediaMessage) -> list:
        """``msg.payload`` cut at the out chunk size, computed once per message and size."""
        n = self.chunk_size
        cache = msg._cache
        if type(cache) is _Slices and cache.chunk_size == n:
            return cache.slices
        payload = msg.payload
        size = len(payload)
        if size <= n:
            slices = [payload] if size else []
        else:
            view = memoryview(payload)
            slices = [view[i:i + n] for i in range(0, size, n)]
        if cache is None or type(cache) is _Slices:
            msg._cache = _Slices(n, slices)
        return slices

    def encode_iovecs(self, msg: MediaMessage, cs_id: int, timestamp: int, hdrbuf: bytearray,
                      offset: int) -> tuple[list, int]:
        """Chunks of ``msg`` as buffers for ``sendmsg``, headers packed into ``hdrbuf``.

        Returns ``([hdr0, slice0, hdr3, slice1, hdr3, ...], new_offset)``: the fmt 0 header
        and the fmt 3 header shared by every continuation chunk are written at ``offset``
        (at most ``MAX_IOVEC_HEADER`` bytes) and returned as memoryviews of ``hdrbuf``;
        the payload slices are the shared, cached ones of ``payload_slices``. The caller
        owns ``hdrbuf`` and must not resize it while the views are alive.
        """
        ts = timestamp & 0xFFFFFFFF
        payload = msg.payload
        size = len(payload)
        if size > 0xFFFFFF:
            raise ValueError(f"message of {size} bytes does not fit the 24-bit length field")
        if offset + MAX_IOVEC_HEADER > len(hdrbuf) and offset + self._header_bytes(cs_id, ts, size) > len(hdrbuf):
            raise ValueError(f"header buffer of {len(hdrbuf)} bytes is full at offset {offset}")
        # Basic header of fmt 0.
        if cs_id <= 63:
            if cs_id < 2:
                raise ValueError(f"chunk stream id {cs_id} out of range 2..{MAX_CS_ID}")
            hdrbuf[offset] = cs_id
            bh = 1
        elif cs_id <= 319:
            hdrbuf[offset] = 0
            hdrbuf[offset + 1] = cs_id - 64
            bh = 2
        elif cs_id <= MAX_CS_ID:
            v = cs_id - 64
            hdrbuf[offset] = 1
            hdrbuf[offset + 1] = v & 0xFF
            hdrbuf[offset + 2] = v >> 8
            bh = 3
        else:
            raise ValueError(f"chunk stream id {cs_id} out of range 2..{MAX_CS_ID}")
        field = ts if ts < EXTENDED_TIMESTAMP else EXTENDED_TIMESTAMP
        _FMT0.pack_into(hdrbuf, offset + bh, field >> 16, (field >> 8) & 0xFF, field & 0xFF,
                        size >> 16, (size >> 8) & 0xFF, size & 0xFF, msg.type & 0xFF, msg.stream_id & 0xFFFFFFFF)
        n0 = bh + 11
        if field == EXTENDED_TIMESTAMP:
            _U32.pack_into(hdrbuf, offset + n0, ts)
            n0 += 4
        slices = self.payload_slices(msg)
        count = len(slices)
        if count <= 1:
            h0 = memoryview(hdrbuf)[offset:offset + n0]
            return ([h0, slices[0]] if count else [h0]), offset + n0
        # The fmt 3 header: same basic header with fmt 3, plus the repeated extended timestamp.
        o3 = offset + n0
        hdrbuf[o3:o3 + bh] = hdrbuf[offset:offset + bh]
        hdrbuf[o3] |= 0xC0
        n3 = bh
        if field == EXTENDED_TIMESTAMP:
            _U32.pack_into(hdrbuf, o3 + bh, ts)
            n3 += 4
        view = memoryview(hdrbuf)
        h0 = view[offset:offset + n0]
        h3 = view[o3:o3 + n3]
        bufs = [h3] * (2 * count)
        bufs[0] = h0
        bufs[1::2] = slices
        return bufs, o3 + n3

    @staticmethod
    def _header_bytes(cs_id: int, ts: int, size: int) -> int:
        bh = 1 if cs_id <= 63 else 2 if cs_id <= 319 else 3
        ext = 4 if ts >= EXTENDED_TIMESTAMP else 0
        return 2 * bh + 11 + 2 * ext


# ------------------------------------------------------- protocol control messages

def _control_message(mtype: int, payload: bytes) -> MediaMessage:
    return MediaMessage(mtype, 0, 0, payload, CID_PROTOCOL_CONTROL)


def set_chunk_size(size: int) -> MediaMessage:
    """Set Chunk Size (type 1)."""
    return _control_message(SET_CHUNK_SIZE, _U32.pack(size))


def abort(cs_id: int) -> MediaMessage:
    """Abort Message (type 2): the peer drops the unfinished message of ``cs_id``."""
    return _control_message(ABORT, _U32.pack(cs_id))


def acknowledgement(seq: int) -> MediaMessage:
    """Acknowledgement (type 3): bytes received so far (32-bit sequence number)."""
    return _control_message(ACKNOWLEDGEMENT, _U32.pack(seq & 0xFFFFFFFF))


def window_ack_size(size: int) -> MediaMessage:
    """Window Acknowledgement Size (type 5)."""
    return _control_message(WINDOW_ACK_SIZE, _U32.pack(size))


def set_peer_bandwidth(size: int, limit_type: int = 2) -> MediaMessage:
    """Set Peer Bandwidth (type 6); limit type 0 hard, 1 soft, 2 dynamic (SRS sends 2)."""
    return _control_message(SET_PEER_BANDWIDTH, _U32.pack(size) + bytes((limit_type,)))


def user_control(event: int, *args: int) -> MediaMessage:
    """User Control Message (type 4): a 16-bit event then each argument as 32 bits.

    ``user_control(UC_STREAM_BEGIN, 1)``, ``user_control(UC_SET_BUFFER_LENGTH, sid, ms)``,
    ``user_control(UC_PING_RESPONSE, ts)``.
    """
    payload = event.to_bytes(2, "big") + b"".join(_U32.pack(a & 0xFFFFFFFF) for a in args)
    return _control_message(USER_CONTROL, payload)
