"""HTTP-FLV pull client session (http and https).

``GET`` with a proper ``Host``, HTTP/1.1, ``Connection: close``; follows 301/302/303/
307/308 up to ``max_redirects``; anything but 200 then fails at once with the status;
the body (chunked, Content-Length or close-delimited, parsed by llhttp through
httptools) must start with ``FLV\\x01``; tags come out as ``MediaMessage`` (audio, video,
metadata), to a callback or an iterator as for RTMP pulls.

``start_timeout`` covers connect, request and response head (redirects included);
``read_timeout`` is the longest wait for body bytes afterwards (None: no limit).
"""

from __future__ import annotations

from urllib.parse import urljoin

import httptools
from gevent import ssl as gssl

from .. import __version__
from ..errors import ClientClosed, ProtocolError, SrsError
from ..kernel.flv import FlvDecoder
from ..session import FLV, PULL
from .session import DEFAULT_START_TIMEOUT, PullSession
from .url import parse_httpflv_url

REDIRECTS = (301, 302, 303, 307, 308)
DEFAULT_MAX_REDIRECTS = 5
RECV_SIZE = 64 * 1024
MAX_HEAD = 64 * 1024
USER_AGENT = f"srspy/{__version__}"


class HttpFlvError(SrsError):
    """The HTTP-FLV response cannot be played."""


class HttpStatusError(HttpFlvError):
    """The server answered with a status other than 200 (after redirects)."""

    def __init__(self, status: int, reason: str, url: str):
        super().__init__(f"http-flv: {url} answered {status} {reason}".rstrip())
        self.status = status
        self.reason = reason
        self.url = url


class TooManyRedirects(HttpFlvError):
    def __init__(self, limit: int, url: str, chain: list):
        super().__init__(f"http-flv: more than {limit} redirects from {url} (last: {chain[-1] if chain else url})")
        self.limit = limit
        self.chain = chain


def make_ssl_context(verify: bool = True, cafile: str | None = None):
    """A gevent TLS client context; ``verify=False`` accepts any certificate (lal's default)."""
    ctx = gssl.create_default_context(cafile=cafile)
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = gssl.CERT_NONE
    return ctx


class _Response:
    """httptools callbacks for one response: status, headers, body bytes."""

    def __init__(self):
        self.headers: dict = {}
        self.header_list: list = []
        self.reason = ""
        self.head_done = False
        self.complete = False
        self.body = bytearray()
        self.head_bytes = 0

    def on_status(self, status: bytes):
        self.reason += status.decode("latin-1")

    def on_header(self, name: bytes, value: bytes):
        k, v = name.decode("latin-1"), value.decode("latin-1")
        self.header_list.append((k, v))
        self.headers[k.lower()] = v

    def on_headers_complete(self):
        self.head_done = True

    def on_body(self, body: bytes):
        self.body += body

    def on_message_complete(self):
        self.complete = True


class HttpFlvPullSession(PullSession):
    protocol = FLV
    role = PULL

    def __init__(self, url: str, on_message=None, *, start_timeout: float | None = DEFAULT_START_TIMEOUT,
                 read_timeout: float | None = None, max_redirects: int = DEFAULT_MAX_REDIRECTS,
                 headers: dict | None = None, ssl_context=None, verify: bool = True):
        super().__init__(url, parse_httpflv_url(url), on_message, start_timeout, read_timeout)
        self.max_redirects = max_redirects
        self.extra_headers = headers or {}
        self.ssl_context = ssl_context
        self.verify = verify
        self.final_url = url
        self.redirects: list = []
        self.status = 0
        self.headers: dict = {}
        self.flv_header = None  # (has_audio, has_video) once the body started
        self._parser = None
        self._resp: _Response | None = None
        self._decoder = FlvDecoder()
        self._rbuf = bytearray(RECV_SIZE)

    # -- start ---------------------------------------------------------------------
    def _start(self):
        url = self.url
        while True:
            parsed = parse_httpflv_url(url)
            self.parsed = parsed
            self.final_url = url
            status = self._request(parsed)
            if status in REDIRECTS:
                location = self._resp.headers.get("location", "")
                if not location:
                    raise HttpFlvError(f"http-flv: {url} answered {status} without a Location")
                nxt = urljoin(url, location)
                self.redirects.append(nxt)
                if len(self.redirects) > self.max_redirects:
                    raise TooManyRedirects(self.max_redirects, self.url, self.redirects)
                self._close_socket()
                self.sock = None
                url = nxt
                continue
            if status != 200:
                raise HttpStatusError(status, self._resp.reason, url)
            return

    def _request(self, parsed) -> int:
        ctx = None
        if parsed.secure:
            ctx = self.ssl_context or make_ssl_context(self.verify)
        sock = self._connect(parsed.host, parsed.port, ctx)
        headers = {"Host": parsed.host_port, "User-Agent": USER_AGENT, "Accept": "*/*", "Connection": "close"}
        headers.update(self.extra_headers)
        req = f"GET {parsed.path_with_query} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        data = req.encode("latin-1")
        sock.sendall(data)
        self._send_bytes += len(data)
        resp = self._resp = _Response()
        parser = self._parser = httptools.HttpResponseParser(resp)
        got = 0
        while not resp.head_done:
            n = self._recv_some(parser)
            if n == 0:
                raise ClientClosed(f"http-flv: {parsed.url}: connection closed before the response head")
            got += n
            if not resp.head_done and got > MAX_HEAD:
                raise ProtocolError(f"http-flv: {parsed.url}: response head longer than {MAX_HEAD} bytes")
        self.status = parser.get_status_code()
        self.headers = resp.headers
        return self.status

    def _recv_some(self, parser) -> int:
        n = self.sock.recv_into(self._rbuf)
        if n:
            self._recv_bytes += n
            try:
                parser.feed_data(memoryview(self._rbuf)[:n])
            except httptools.HttpParserUpgrade:
                pass
            except httptools.HttpParserError as e:
                raise ProtocolError(f"http-flv: bad response from {self.final_url}: {e}") from e
        return n

    def _after_start(self):
        self.sock.settimeout(self.read_timeout)
        try:
            self._take_body()  # body bytes that came with the head
        except ProtocolError as e:
            self._fail(e)
        self._start_delivery()

    # -- body ----------------------------------------------------------------------
    def _take_body(self):
        resp = self._resp
        if resp.body:
            data = bytes(resp.body)
            resp.body.clear()
            if self.flv_header is None:
                self._check_signature(data)
            self._queue.extend(self._decode(data))
            if self._decoder.header is not None and self.flv_header is None:
                self.flv_header = self._decoder.header

    def _check_signature(self, data: bytes):
        have = bytes(self._decoder.buf[:4]) + data[:4]
        sig = b"FLV\x01"
        if have[:4] != sig[:len(have[:4])]:
            raise ProtocolError(f"http-flv: {self.final_url} body is not FLV (starts with {have[:4]!r})")

    def _decode(self, data: bytes) -> list:
        try:
            return self._decoder.feed(data)
        except ValueError as e:
            raise ProtocolError(f"http-flv: {self.final_url}: {e}") from e

    def _pump(self):
        if self._resp.complete:
            raise ClientClosed(f"http-flv: {self.final_url}: end of body")
        if self._recv_some(self._parser) == 0:
            raise ClientClosed(f"http-flv: {self.final_url}: server closed the stream")
        self._take_body()


__all__ = ["HttpFlvPullSession", "HttpFlvError", "HttpStatusError", "TooManyRedirects", "make_ssl_context"]
