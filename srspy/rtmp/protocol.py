"""Port of SrsProtocol: an RTMP connection's message layer over a gevent socket.

Reads with ``recv_into`` into one reused buffer and feeds the pure ChunkDecoder; handles
the protocol control messages itself (window acknowledgements, ping, peer chunk size,
window size); sends commands through the ChunkEncoder and media batches through the
RtmpChunkPacker with one ``sendmsg`` per batch.
"""

from __future__ import annotations

import socket
import struct
from collections import deque
from contextlib import contextmanager

from ..errors import ClientClosed, RtmpProtocolError, Timeout
from ..netio import send_nowait, sendmsg_all
from ..kernel import amf0
from .chunk import MAX_CHUNK_STREAMS, MAX_PENDING_BYTES, ChunkDecoder, ChunkEncoder
from .message import ACKNOWLEDGEMENT, CID_OVER_CONNECTION, CID_OVER_STREAM, CID_PROTOCOL_CONTROL, SET_CHUNK_SIZE, SET_PEER_BANDWIDTH, UC_PING_REQUEST, UC_PING_RESPONSE, UC_SET_BUFFER_LENGTH, USER_CONTROL, WINDOW_ACK_SIZE
from ..kernel.message import AMF0_DATA, AMF0_COMMAND, AMF3_COMMAND, MediaMessage
from .packer import RtmpChunkPacker, shared_packs

RECV_BUFFER = 64 * 1024  # the most one recv_into takes (a publisher's buffer grows to it)
RECV_BUFFER_START = 4 * 1024  # what every connection starts with: players send little
DEFAULT_MAX_MESSAGE = 16 * 1024 * 1024
MAX_KEPT_REPLIES = 256  # replies (pongs, acknowledgements) kept for a peer that does not read
_U32 = struct.Struct(">I")


def control(msg_type: int, payload: bytes) -> MediaMessage:
    return MediaMessage(msg_type, 0, 0, payload, CID_PROTOCOL_CONTROL)


def set_chunk_size_msg(n: int) -> MediaMessage:
    return control(SET_CHUNK_SIZE, _U32.pack(n))


def window_ack_size_msg(n: int) -> MediaMessage:
    return control(WINDOW_ACK_SIZE, _U32.pack(n))


def set_peer_bandwidth_msg(n: int, limit_type: int = 2) -> MediaMessage:
    return control(SET_PEER_BANDWIDTH, _U32.pack(n) + bytes([limit_type]))


def acknowledgement_msg(seq: int) -> MediaMessage:
    return control(ACKNOWLEDGEMENT, _U32.pack(seq & 0xFFFFFFFF))


def user_control_msg(event: int, *args: int) -> MediaMessage:
    return control(USER_CONTROL, struct.pack(">H", event) + b"".join(_U32.pack(a & 0xFFFFFFFF) for a in args))


def command_msg(name: str, transaction_id: float, *args, stream_id: int = 0, cs_id: int = CID_OVER_CONNECTION) -> MediaMessage:
    return MediaMessage(AMF0_COMMAND, 0, stream_id, amf0.encode_all(name, float(transaction_id), *args), cs_id)


def data_msg(*values, stream_id: int = 0) -> MediaMessage:
    return MediaMessage(AMF0_DATA, 0, stream_id, amf0.encode_all(*values), CID_OVER_STREAM)


def decode_command(msg: MediaMessage) -> list:
    """AMF0 values of a command or data message; AMF3 commands skip their leading byte as SRS does."""
    if msg.type == AMF3_COMMAND:
        return amf0.decode_amf3_command(msg.payload)
    return amf0.decode_all(msg.payload)


class RtmpProtocol:
    """Message-level I/O for one RTMP connection (server or client side)."""

    def __init__(self, sock, max_message_size: int = DEFAULT_MAX_MESSAGE, max_chunk_streams: int = MAX_CHUNK_STREAMS,
                 max_pending_bytes: int = MAX_PENDING_BYTES):
        self.sock = sock
        self.decoder = ChunkDecoder(max_message_size, max_chunk_streams, max_pending_bytes)
        self.encoder = ChunkEncoder(128)
        self.out_chunk_size = 128
        self.rbuf = bytearray(RECV_BUFFER_START)
        self.rview = memoryview(self.rbuf)
        self.pending: deque = deque()
        self.recv_bytes = 0
        self.send_bytes = 0
        self.in_ack_window = 0  # the peer asked us to acknowledge every N bytes
        self.last_ack = 0
        self.peer_buffer_length = 0
        self.packer = None
        self.last_read_full = False
        self.backlog: list | None = None  # what try_send_iov could not send; goes out first
        # A player's recv side reads in a greenlet of its own: its replies (acknowledgements,
        # ping responses) then never wait (see reply); ``writing``: the owner's blocking
        # send is under way, and the stream may be in the middle of a message.
        self.replies_nowait = False
        self.writing = False
        self.corked: list | None = None  # messages held by batch()

    # -- timeouts ------------------------------------------------------------------
    def set_recv_timeout(self, seconds: float | None):
        self.sock.settimeout(seconds)

    # -- reading -------------------------------------------------------------------
    def read_some(self) -> list:
        """One ``recv_into`` fed to the decoder; the messages it completed (control handled)."""
        try:
            n = self.sock.recv_into(self.rbuf)
        except socket.timeout as e:
            raise Timeout("rtmp: recv timeout") from e
        if n == 0:
            raise ClientClosed("rtmp: peer closed")
        self.recv_bytes += n
        size = len(self.rbuf)
        self.last_read_full = n == size and size == RECV_BUFFER
        msgs = self.decoder.feed(self.rview[:n])
        if n == size and size < RECV_BUFFER:  # a publisher: read in bigger pieces from now on
            self.rbuf = bytearray(RECV_BUFFER)
            self.rview = memoryview(self.rbuf)
        if self.in_ack_window and self.recv_bytes - self.last_ack >= self.in_ack_window:
            self.last_ack = self.recv_bytes
            self.reply(acknowledgement_msg(self.recv_bytes))
        out = []
        for m in msgs:
            if m.type <= SET_PEER_BANDWIDTH:
                self.on_control(m)
                if m.type != USER_CONTROL:
                    continue
            out.append(m)
        return out

    def recv_message(self) -> MediaMessage:
        """The next message that is not a protocol control message."""
        while not self.pending:
            self.pending.extend(self.read_some())
        return self.pending.popleft()

    def on_control(self, m: MediaMessage):
        p = m.payload
        t = m.type
        if t == WINDOW_ACK_SIZE and len(p) >= 4:
            self.in_ack_window = _U32.unpack_from(p)[0]
        elif t == USER_CONTROL and len(p) >= 2:
            event = struct.unpack_from(">H", p)[0]
            if event == UC_PING_REQUEST and len(p) >= 6:
                self.reply(user_control_msg(UC_PING_RESPONSE, _U32.unpack_from(p, 2)[0]))
            elif event == UC_SET_BUFFER_LENGTH and len(p) >= 10:
                self.peer_buffer_length = _U32.unpack_from(p, 6)[0]
        # SET_CHUNK_SIZE and ABORT are applied by the decoder; ACKNOWLEDGEMENT needs nothing.

    # -- writing -------------------------------------------------------------------
    def reply(self, msg: MediaMessage):
        """A protocol reply to what was read. With ``replies_nowait`` (the reader is not the
        greenlet that owns the writes) it never waits: it goes out now, between messages,
        when no send is under way and nothing is kept; otherwise it is kept in ``backlog``,
        in order, for the owner's next send (``flush``)."""
        if not self.replies_nowait:
            self.send_message(msg)
            return
        if self.backlog is not None and len(self.backlog) > MAX_KEPT_REPLIES:
            raise RtmpProtocolError(f"rtmp: over {MAX_KEPT_REPLIES} replies kept for a peer that does not read")
        data = self.encoder.encode(msg, msg.cs_id or CID_PROTOCOL_CONTROL)
        if self.writing:
            if self.backlog is None:
                self.backlog = [data]
            else:
                self.backlog.append(data)
            return
        sent, self.backlog = send_nowait(self.sock, [data], len(data), self.backlog)
        self.send_bytes += sent

    def _write(self, bufs: list, size: int = -1):
        """The owner's blocking send."""
        self.writing = True
        try:
            self.send_bytes += sendmsg_all(self.sock, bufs, size)
        finally:
            self.writing = False

    def send_message(self, msg: MediaMessage, cs_id: int | None = None):
        self.send_encoded(self.encoder.encode(msg, cs_id if cs_id is not None else (msg.cs_id or CID_OVER_CONNECTION)))
        if msg.type == SET_CHUNK_SIZE:
            self.chunk_size_sent(_U32.unpack_from(msg.payload)[0])

    def chunk_size_sent(self, n: int):
        """A Set Chunk Size of ``n`` went out: what follows is chunked at ``n``."""
        self.encoder.set_chunk_size(n)
        self.out_chunk_size = n

    def send_encoded(self, data: bytes):
        """Chunks already encoded at the out chunk size (a reply kept from an earlier
        connection): sent as they are, or held by ``batch()``."""
        if self.corked is not None:
            self.corked.append(data)
        else:
            if self.backlog is not None:
                self.flush()
            self._write([data], len(data))

    @contextmanager
    def batch(self):
        """Messages sent inside go out together, in one ``sendmsg`` at the end (a reply
        of several messages in one packet: one wake-up of the peer, one syscall)."""
        if self.corked is not None:
            yield
            return
        self.corked = []
        try:
            yield
        finally:
            out, self.corked = self.corked, None
        if out:
            if self.backlog is not None:
                self.flush()
            self._write(out)

    def send_command(self, name: str, transaction_id: float, *args, stream_id: int = 0, cs_id: int = CID_OVER_CONNECTION):
        self.send_message(command_msg(name, transaction_id, *args, stream_id=stream_id, cs_id=cs_id))

    def send_media(self, msgs: list, base: int, stream_id: int = 1, shared: bool = False):
        """The play hot path: one batch, one sendmsg loop. ``shared``: other players are
        likely to send the same batch (catching up after joining): chunk it once for all."""
        if shared:
            bufs, size = shared_packs.pack(msgs, base, self.out_chunk_size, stream_id)
        else:
            bufs, size = self.pack_media(msgs, base, stream_id)
        if self.corked is not None:  # inside batch(): sent at its end
            if shared or self.packer is None:
                self.corked.extend(bufs)
            else:  # the headers live in the packer's reused buffer: copy them
                own = self.packer.buf
                self.corked.extend(bytes(b) if type(b) is memoryview and b.obj is own else b for b in bufs)
            return
        if self.backlog is not None:
            bufs = self.backlog + bufs
            size = -1
            self.backlog = None
        self._write(bufs, size)

    def try_send_iov(self, bufs: list, size: int) -> bool:
        """Send packed chunks (``pack_media``) without waiting, for a caller that must not
        yield (the hub writing for a parked player). False when the kernel took part of
        them: the rest is kept in ``backlog`` and goes out first on the next send (``flush``)."""
        sent, self.backlog = send_nowait(self.sock, bufs, size, self.backlog)
        self.send_bytes += sent
        return self.backlog is None

    def pack_media(self, msgs: list, base: int, stream_id: int) -> tuple:
        """The chunks of a batch: ``(iovecs, size)`` (the headers live in a reused buffer)."""
        packer = self.packer
        if packer is None:
            packer = self.packer = RtmpChunkPacker(stream_id)
        bufs = []
        return bufs, packer.iovecs(msgs, base, self.out_chunk_size, bufs)

    def flush(self):
        """Send what ``try_send_iov`` left (blocking)."""
        while self.backlog is not None:  # replies may be kept while the rest goes out
            rest, self.backlog = self.backlog, None
            self._write(rest)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
