"""WebSocket (RFC 6455) for the HTTP stream players: WS-FLV and WS-TS (beyond SRS).

A request for a mounted ``.flv``/``.ts`` stream with ``Upgrade: websocket`` is answered
``101`` and then gets the same bytes an HTTP player gets, one unmasked binary message per
write. The handshake and the client's frames are wsproto's work (a well-kept RFC 6455
implementation: key and version checks, unmasking, control frames); the server's media
frames are built here, a 2-10 byte header in front of the buffers the muxer made, so that
nothing is copied and players share one encoding of a batch as HTTP players do.

What the client sends afterwards: a ping is answered with a pong, a close with a close (and
the player ends), anything else is ignored, up to ``MAX_CLIENT_DATA`` bytes of it (then the
connection is closed with 1009). permessage-deflate is declined.

Control frames never land inside a media frame: the player's greenlet owns the socket while
it writes (``writing``), and a pong or close that comes meanwhile waits behind that write;
when the player is parked, they go out at once (``send_nowait``, behind any unsent rest).
"""

from __future__ import annotations

import struct

from loguru import logger
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Message, Ping, Request
from wsproto.utilities import RemoteProtocolError

from ..errors import HttpError
from ..netio import send_nowait
from .writer import ResponseWriter

MAX_CLIENT_DATA = 64 * 1024  # bytes of data messages a player may send (it has nothing to say)
CLOSE_NORMAL = 1000
CLOSE_TOO_BIG = 1009


def is_websocket(r) -> bool:
    """The request asks to switch to WebSocket."""
    return "websocket" in (r.header("Upgrade") or "").lower()


def frame_header(size: int, opcode: int = 0x2) -> bytes:
    """The header of one final, unmasked frame of ``size`` payload bytes (binary by default)."""
    b0 = 0x80 | opcode
    if size < 126:
        return bytes((b0, size))
    if size < 65536:
        return struct.pack(">BBH", b0, 126, size)
    return struct.pack(">BBQ", b0, 127, size)


def accept(r) -> tuple[WSConnection, bytes]:
    """Validate the handshake of request ``r`` (wsproto); the connection state and the
    ``101`` response bytes. Raises HttpError(400) for a bad handshake."""
    ws = WSConnection(ConnectionType.SERVER)
    head = [f"{r.method} {r.url} HTTP/1.1\r\n".encode("latin-1", "replace")]
    for name, value in r.headers.pairs():
        head.append(f"{name}: {value}\r\n".encode("latin-1", "replace"))
    head.append(b"\r\n")
    try:
        ws.receive_data(b"".join(head))
        events = list(ws.events())
    except RemoteProtocolError as e:
        raise HttpError(400, f"websocket: bad handshake: {e}") from e
    if not events or not isinstance(events[0], Request):
        raise HttpError(400, "websocket: bad handshake")
    return ws, ws.send(AcceptConnection())  # no extensions: permessage-deflate declined


class WsWriter(ResponseWriter):
    """A ResponseWriter whose body is WebSocket binary messages: ``writev`` and the hub's
    shared writes (``chunk_iov``/``try_send_body``) frame each batch as one message;
    ``final_request`` sends a close frame."""

    def __init__(self, sock, *, conn, ws: WSConnection, handshake: bytes):
        super().__init__(sock, conn=conn, keep_alive=False)
        self.ws = ws
        self.handshake = handshake
        self.writing = False  # the player's greenlet is in a blocking send
        self.control: list = []  # control frames waiting for that send to end
        self.client_data = 0
        self.closing = False

    # -- the response ----------------------------------------------------------------------
    def _head(self, data) -> bytes:
        self.header_sent = True
        self._status_set = True
        self.status = 101
        return self.handshake

    def write(self, data: bytes = b"") -> None:
        if data:
            self.writev([data])
        elif not self.header_sent:
            head = self._head(None)
            self._send([head], len(head))

    @property
    def framing(self) -> str:
        return "ws"

    def chunk_iov(self, bufs: list, size: int) -> tuple:
        hdr = frame_header(size)
        return [hdr, *bufs], size + len(hdr)

    def final_request(self) -> None:
        """End of stream: a close frame (normal closure)."""
        if self.finished:
            return
        if not self.header_sent:
            head = self._head(None)
            self._send([head], len(head))
        self.finished = True
        if not self.closing:
            self.closing = True
            self._send([self._close_frame(CLOSE_NORMAL)], -1)

    def _send(self, bufs: list, size: int) -> None:
        self.writing = True
        try:
            super()._send(bufs, size)
        finally:
            self.writing = False
        if self.control:
            ctrl, self.control = self.control, []
            super()._send(ctrl, -1)

    def _close_frame(self, code: int) -> bytes:
        body = struct.pack(">H", code)
        return frame_header(len(body), 0x8) + body

    # -- what the client sends (from the connection's read watcher, in the event loop) ----
    def on_data(self, data: bytes) -> bool:
        """Feed the client's bytes; False when the connection is to end (a close frame,
        a protocol error, too much data)."""
        try:
            self.ws.receive_data(data)
            for ev in self.ws.events():
                if isinstance(ev, Ping):
                    self._control(self.ws.send(ev.response()))
                elif isinstance(ev, CloseConnection):
                    if not self.closing:
                        self.closing = True
                        self._control(self._close_frame(CLOSE_NORMAL))
                    return False
                elif isinstance(ev, Message):
                    self.client_data += len(ev.data)
                    if self.client_data > MAX_CLIENT_DATA:
                        logger.info("websocket: the player sent over {} bytes, close", MAX_CLIENT_DATA)
                        self.closing = True
                        self._control(self._close_frame(CLOSE_TOO_BIG))
                        return False
        except RemoteProtocolError as e:
            logger.info("websocket: bad frame from the player: {}", e)
            return False
        return True

    def _control(self, frame: bytes) -> None:
        """Send a control frame without waiting, never inside a media frame."""
        if self.writing:
            self.control.append(frame)
            return
        sent, self.backlog = send_nowait(self.sock, [frame], len(frame), self.backlog)
        self._sent(sent)


__all__ = ["WsWriter", "accept", "frame_header", "is_websocket", "MAX_CLIENT_DATA"]
