"""Port of SrsHttpResponseWriter (ISrsHttpResponseWriter): one response on a socket.

Recipes, as SRS documents them:

* known length: set ``Content-Length``, ``write_header(status)``, ``write(body)``;
* unknown length: ``write_header(status)``, then ``write``/``writev`` as many times as
  needed (each call is one HTTP chunk), then ``final_request()`` (``0\\r\\n\\r\\n``);
* no body: ``write_header(status)`` then ``final_request()`` (``Content-Length: 0``);
* HTTP-FLV: ``writev(bufs)`` per merged batch, one chunk and one ``sendmsg`` each.

``write_header`` only records the status: headers go out with the first body bytes, in
the same send. HEAD responses carry headers only.
"""

from __future__ import annotations

import os
from http import HTTPStatus
from socket import MSG_MORE

from .. import SERVER
from ..errors import ERROR_HTTP_CONTENT_LENGTH, ClientClosed, SrsError
from ..netio import send_nowait, sendfile_all, sendmsg_all
from .message import HttpHeaders

CHUNK_END = b"\r\n"
LAST_CHUNK = b"0\r\n\r\n"
#: ResponseWriter.sendfile: a body up to this size goes out with the headers in one send.
SMALL_FILE = 16 * 1024


_REASONS = {s.value: s.phrase for s in HTTPStatus}
#: ``HTTP/1.1 <status> <reason>\r\n`` by status.
_STATUS_LINES = {code: f"HTTP/1.1 {code} {phrase}\r\n".encode() for code, phrase in _REASONS.items()}


def reason_phrase(status: int) -> str:
    return _REASONS.get(status, "Unknown")


def detect_content_type(data) -> str:
    """A small take on Go's DetectContentType (SRS srs_go_http_detect), for the first write."""
    head = bytes(data[:512])
    lower = head.lstrip().lower()
    if lower.startswith((b"<!doctype html", b"<html", b"<head", b"<body")):
        return "text/html; charset=utf-8"
    if head.startswith(b"FLV"):
        return "video/x-flv"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as e:  # a character cut at the end of the sample is fine
        text = head[:e.start].decode("utf-8") if e.start >= len(head) - 3 and len(head) == 512 else None
    if text is not None and all(c >= " " or c in "\t\r\n\f" for c in text):
        return "text/plain; charset=utf-8"
    return "application/octet-stream"


def _no_body_status(status: int) -> bool:
    return status < 200 or status in (204, 304)


class ResponseWriter:
    """Port of SrsHttpResponseWriter.

    ``keep_alive`` says whether the connection may serve another request after this
    response; the writer clears it when the response must be delimited by a close
    (HTTP/1.0 without Content-Length, a short body, a handler's ``Connection: close``).
    ``close_header`` adds ``Connection: Close`` first, on every response, as SRS's
    SrsHttpxConn does; the connection still follows the request's keep-alive then.
    """

    def __init__(self, sock, *, conn=None, is_head: bool = False, version: str = "1.1",
                 keep_alive: bool = True, close_header: bool = False):
        self.sock = sock
        self.conn = conn
        self.is_head = is_head
        self.version = version
        self.keep_alive = keep_alive
        self.close_header = close_header
        self._header = HttpHeaders()
        if close_header or not keep_alive:
            self._header.set("Connection", "Close")
        self.status = 200
        self._status_set = False
        self.header_sent = False
        self.finished = False
        self.chunked = False
        self.content_length: int | None = None
        self.body_sent = 0
        self.bytes_sent = 0
        self.backlog: list | None = None  # what try_send_body could not send; goes out first

    # -- ISrsHttpResponseWriter ---------------------------------------------------------
    def header(self) -> HttpHeaders:
        return self._header

    def write_header(self, status: int) -> None:
        """Record the status; nothing is sent until the first write or final_request."""
        if self.header_sent or self._status_set:
            return  # SRS: a second write_header is ignored
        self.status = int(status)
        self._status_set = True

    def write(self, data: bytes = b"") -> None:
        """Send ``data``: one chunk when chunked, raw bytes otherwise; headers go with it."""
        if self.finished:
            raise SrsError("http: write after final_request")
        head = None if self.header_sent else self._head(data)
        n = len(data)
        if self.is_head or not n:
            if head is not None:
                self._send([head], len(head))
            return
        self._count_body(n)
        if self.chunked:
            bufs = [b"%x\r\n" % n, data, CHUNK_END]
        else:
            bufs = [data]
        if head is not None:
            bufs.insert(0, head)
        self._send(bufs, -1)

    def writev(self, bufs: list) -> None:
        """Send every buffer of ``bufs`` as ONE chunk (when chunked) with ONE sendmsg.

        Buffers are bytes-like with one byte per item (bytes, bytearray, memoryviews of
        them). Nothing is copied; only the total length is computed here.
        """
        if self.finished:
            raise SrsError("http: writev after final_request")
        size = sum(map(len, bufs))
        head = None if self.header_sent else self._head(None)
        if self.is_head or not size:
            if head is not None:
                self._send([head], len(head))
            return
        self._count_body(size)
        iov, size = self.chunk_iov(bufs, size)
        if head is not None:
            iov = [head, *iov]
            size += len(head)
        self._send(iov, size)

    @property
    def framing(self) -> str:
        """How body bytes go on the wire (``chunk_iov``): responses with the same framing
        frame the same bytes the same way."""
        return "chunked" if self.chunked else "raw"

    def chunk_iov(self, bufs: list, size: int) -> tuple:
        """``bufs`` (``size`` body bytes) as they go on the wire: one chunk when chunked.
        The same for every response with the same framing (shared encodings)."""
        if not self.chunked:
            return bufs, size
        iov = [b"%x\r\n" % size, *bufs, CHUNK_END]
        return iov, size + len(iov[0]) + 2

    def try_send_body(self, iov: list, wire: int, size: int) -> bool:
        """Send framed body bytes (from ``chunk_iov``) without waiting, for a caller that
        must not yield (the hub writing for a parked player); only once the headers are
        out. False when the kernel took part of them: the rest is kept in ``backlog`` and
        goes out first on the owner's next send (``flush`` or any write)."""
        if not self.header_sent or self.finished or self.is_head:
            raise SrsError("http: try_send_body before the headers or after the end")
        self._count_body(size)
        sent, self.backlog = send_nowait(self.sock, iov, wire, self.backlog)
        self._sent(sent)
        return self.backlog is None

    def hijacked(self) -> None:
        """The handler took the connection over (a protocol switch): this response writes
        nothing, not even at its end."""
        self.header_sent = True
        self.finished = True
        self.keep_alive = False

    def flush(self) -> None:
        """Send what ``try_send_body`` left (blocking, in the owner's greenlet)."""
        if self.backlog is not None:
            self._send([], 0)

    def sendfile(self, file, offset: int = 0, count: int | None = None) -> None:
        """Send ``count`` bytes of ``file`` (a file object or a descriptor) from ``offset``
        (None: to its end).

        The handler sets Content-Length first. A body of at most ``SMALL_FILE`` bytes (an
        HLS playlist) is read and goes out with the headers in one ``sendmsg``; a larger
        one with ``os.sendfile`` (cooperative, netio.sendfile_all), the headers sent just
        before with ``MSG_MORE`` so that they leave in the body's first segment (nginx's
        ``tcp_nopush``). A file shorter than ``count`` leaves the body short:
        ``final_request`` then ends the connection.
        """
        if self.finished:
            raise SrsError("http: sendfile after final_request")
        self.flush()
        fd = file if isinstance(file, int) else file.fileno()
        if count is None:
            count = max(0, os.fstat(fd).st_size - offset)
        if self.is_head or count == 0:
            if not self.header_sent:
                head = self._head(None)
                self._send([head], len(head))
            return
        if not self.header_sent:
            head = self._head(None)
            if count <= SMALL_FILE:
                data = os.pread(fd, count, offset)
                self._count_body(len(data))
                self._send([head, data], len(head) + len(data))
                return
            self._send_more(head)
        try:
            n = sendfile_all(self.sock, file, offset, count)
        except OSError as e:
            self._raise_closed(e)
            raise
        self._count_body(n)
        self._sent(n)

    def final_request(self) -> None:
        """End the response: last chunk when chunked, an empty body when nothing was written."""
        if self.finished:
            return
        self.finished = True
        h = self._header
        if not self.header_sent:
            if "Content-Length" not in h and "chunked" not in h.get("Transfer-Encoding", "").lower() \
                    and not _no_body_status(self.status):
                h.set("Content-Length", "0")
            head = self._head(None)
            if self.chunked and not self.is_head:
                self._send([head, LAST_CHUNK], len(head) + len(LAST_CHUNK))
            else:
                self._send([head], len(head))
            return
        if self.is_head:
            return
        if self.chunked:
            self._send([LAST_CHUNK], len(LAST_CHUNK))
        elif self.content_length is not None and self.body_sent < self.content_length:
            self.keep_alive = False  # the body is short: only a close can end it

    # -- internals ----------------------------------------------------------------------
    def _head(self, data) -> bytes:
        """Decide the framing and build the status line and headers; marks them sent."""
        h = self._header
        status = self.status
        if data and "Content-Type" not in h:
            h.set("Content-Type", detect_content_type(data))
        if "Server" not in h:
            h.set("Server", SERVER)
        length = h.get("Content-Length")
        if length is not None:
            self.content_length = int(length)
        elif "chunked" in h.get("Transfer-Encoding", "").lower():
            self.chunked = True
        elif _no_body_status(status):
            self.content_length = 0
        elif self.version == "1.0":
            self.keep_alive = False  # no chunked encoding in HTTP/1.0: the close ends the body
        else:
            self.chunked = True
            h.set("Transfer-Encoding", "chunked")
        if not self.keep_alive:
            h.set("Connection", "Close")
        else:
            connection = h.get("Connection")
            if connection is None:
                h.set("Connection", "Keep-Alive")
            elif not self.close_header and connection.lower() == "close":
                self.keep_alive = False
        self.header_sent = True
        self._status_set = True
        line = _STATUS_LINES.get(status) or b"HTTP/1.1 %d Unknown\r\n" % status
        return b"%s%s\r\n" % (line, h.encode())

    def _count_body(self, n: int) -> None:
        self.body_sent += n
        if self.content_length is not None and self.body_sent > self.content_length:
            raise SrsError(f"http: body of {self.body_sent} bytes over Content-Length {self.content_length}",
                           code=ERROR_HTTP_CONTENT_LENGTH)

    def _send(self, bufs: list, size: int) -> None:
        if self.backlog is not None:
            bufs = self.backlog + bufs
            size = -1
            self.backlog = None
        try:
            n = sendmsg_all(self.sock, bufs, size)
        except OSError as e:
            self._raise_closed(e)
            raise
        self._sent(n)

    def _send_more(self, head: bytes) -> None:
        """``head`` with ``MSG_MORE``: the kernel keeps it for the data sent next."""
        try:
            sent = self.sock.sendmsg([head], (), MSG_MORE)
            if sent < len(head):
                sendmsg_all(self.sock, [memoryview(head)[sent:]])
        except OSError as e:
            self._raise_closed(e)
            raise
        self._sent(len(head))

    def _sent(self, n: int) -> None:
        self.bytes_sent += n
        if self.conn is not None:
            self.conn.bytes_out += n

    def _raise_closed(self, e: OSError) -> None:
        if self.conn is not None and self.conn.closed:
            raise ClientClosed("http: connection expired") from e


__all__ = ["ResponseWriter", "detect_content_type", "reason_phrase"]
