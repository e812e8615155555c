"""Port of SrsHttpParser: sans-IO request parsing on httptools (llhttp).

``feed(data)`` pushes bytes; ``next_request()`` pops the next complete request (head and
body) or returns None when more bytes are needed. Requests a client pipelined are kept
in order and handed out one at a time. A broken or oversized request raises
``HttpParseError`` with the status to answer, but only after the requests completed
before it were handed out. No socket, no clock.
"""

from __future__ import annotations

from collections import deque

import httptools

from ..errors import ERROR_HTTP_PARSE_HEADER, HttpError


class HttpParseError(HttpError):
    """The request cannot be parsed or breaks a limit; answer ``status`` and close."""

    close = True

    def __init__(self, status: int, message: str):
        super().__init__(status, message, code=ERROR_HTTP_PARSE_HEADER)


class ParsedRequest:
    """One complete request as read from the wire."""

    __slots__ = ("method", "url", "version", "headers", "body", "keep_alive", "upgrade", "upgrade_data")

    def __init__(self, method, url, version, headers, body, keep_alive, upgrade=False):
        self.method = method
        self.url = url
        self.version = version
        self.headers = headers  # [(name, value)] as received
        self.body = body
        self.keep_alive = keep_alive
        self.upgrade = upgrade
        self.upgrade_data = b""  # what the client sent after the head of an Upgrade request


_IDLE, _HEAD, _BODY = 0, 1, 2


class HttpParser:
    """Push parser over httptools.HttpRequestParser with SRS-like limits.

    * request target longer than ``max_request_line`` -> 414
    * header lines (names and values) over ``max_header_bytes`` -> 431
    * body (Content-Length or chunked) over ``max_body`` -> 413
    * anything llhttp refuses -> 400
    """

    def __init__(self, max_request_line: int = 8192, max_header_bytes: int = 32768, max_body: int = 1 << 20):
        self.max_request_line = max_request_line
        self.max_header_bytes = max_header_bytes
        self.max_body = max_body
        self._parser = httptools.HttpRequestParser(self)
        self._ready: deque[ParsedRequest] = deque()
        self._error: HttpParseError | None = None
        self._stopped = False  # after an error or an upgrade, bytes are no longer parsed
        self._state = _IDLE
        self._head_fed = 0
        self.expect_continue = False  # the client waits for "100 Continue" before its body
        self._reset()

    def _reset(self):
        self._url = b""
        self._headers: list[tuple[str, str]] = []
        self._header_bytes = 0
        self._body: bytearray | None = None  # made by the first body bytes (most requests have none)
        self._length: int | None = None
        self._expect = False

    @property
    def started(self) -> bool:
        """True once bytes of a not yet complete request were received."""
        return self._state != _IDLE

    def feed(self, data) -> None:
        if self._stopped or not data:
            return
        state_before, ready_before = self._state, len(self._ready)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as e:
            # Upgrade/CONNECT: llhttp stops after the head (at offset e.args[0] of this
            # feed); what follows belongs to the new protocol (WebSocket frames) and is
            # kept for its handler. The connection closes after the request either way.
            if self._ready:
                last = self._ready[-1]
                last.upgrade = True
                last.keep_alive = False
                offset = e.args[0] if e.args and isinstance(e.args[0], int) else len(data)
                last.upgrade_data = bytes(data[offset:])
            self._stopped = True
        except httptools.HttpParserCallbackError as e:
            cause = e.__context__
            self._fail(cause if isinstance(cause, HttpParseError) else HttpParseError(400, str(e)))
        except httptools.HttpParserError as e:
            self._fail(HttpParseError(400, f"bad request: {e}"))
        # A head that never ends (a huge single header) is caught by counting raw bytes:
        # when no request completed and the head is still open, every byte fed was head.
        if self._state == _HEAD and state_before == _HEAD and len(self._ready) == ready_before:
            self._head_fed += len(data)
            if self._head_fed > self.max_request_line + self.max_header_bytes:
                self._fail(HttpParseError(431, "request header fields too large"))

    def next_request(self) -> ParsedRequest | None:
        if self._ready:
            return self._ready.popleft()
        if self._error is not None:
            raise self._error
        return None

    def _fail(self, err: HttpParseError):
        if self._error is None:
            self._error = err
        self._stopped = True

    # -- httptools callbacks --------------------------------------------------------------
    def on_message_begin(self):
        self._state = _HEAD
        self._head_fed = 0
        self._reset()

    def on_url(self, url: bytes):
        self._url += url
        if len(self._url) > self.max_request_line:
            raise HttpParseError(414, "request URI too long")

    def on_header(self, name: bytes, value: bytes):
        self._header_bytes += len(name) + len(value) + 4
        if self._header_bytes > self.max_header_bytes:
            raise HttpParseError(431, "request header fields too large")
        name, value = name.decode("latin-1"), value.decode("latin-1")
        self._headers.append((name, value))
        size = len(name)
        if size == 14 or size == 6:  # the two names looked at here
            lname = name.lower()
            if lname == "content-length":
                self._length = int(value) if value.strip().isdigit() else None
            elif lname == "expect":
                self._expect = value.strip().lower() == "100-continue"

    def on_headers_complete(self):
        self._state = _BODY
        length = self._length
        if length is not None and length > self.max_body:
            raise HttpParseError(413, f"body of {length} bytes over the limit {self.max_body}")
        self.expect_continue = self._expect

    def on_body(self, body: bytes):
        if self._body is None:
            self._body = bytearray()
        self._body += body
        if len(self._body) > self.max_body:
            raise HttpParseError(413, f"body over the limit {self.max_body}")

    def close(self) -> None:
        """The connection ended: no more bytes are parsed, and llhttp's parser, which holds
        this object's callbacks, is let go (no reference cycle left for the collector)."""
        self._stopped = True
        self._parser = None

    def on_message_complete(self):
        p = self._parser
        self._ready.append(ParsedRequest(
            p.get_method().decode("ascii", "replace"), self._url.decode("latin-1"), p.get_http_version(),
            self._headers, b"" if self._body is None else bytes(self._body), p.should_keep_alive(),
            p.should_upgrade()))
        self._state = _IDLE
        self.expect_continue = False
        self._reset()


__all__ = ["HttpParser", "HttpParseError", "ParsedRequest"]
