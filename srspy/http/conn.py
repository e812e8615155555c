"""Port of SrsHttpConn and SrsHttpxConn: one HTTP connection, one greenlet.

``serve()`` runs the request loop in the calling greenlet: read and parse one request
(httptools, ``request_timeout`` to read it), call ``handler.serve_http(w, r)``, end the
response if the handler did not, and go on while the request is keep-alive. This is the
only place where exceptions become responses: ``HttpError`` -> its status, anything else
-> 500 and a logged traceback, or a close when headers already went out. Disconnects
are logged at info.

The wait for a request (``idle_timeout`` before the first, ``request_timeout`` between
keep-alive requests) has no timer of its own: ``IDLE_SWEEP`` ends the waits past their
deadline once a second. ``Connection: Close`` goes only on responses after which the
connection ends, and on the API's (``close_header``).

Streaming handlers call ``watch_close(callback)`` (SRS's SrsHttpRecvThread) to learn when
the player goes away; ``expire()`` kicks the connection from any greenlet.
"""

from __future__ import annotations

import socket
import time
from functools import partial

import gevent
from gevent.ssl import SSLSocket
from loguru import logger

from ..errors import ClientClosed, HttpError, SrsError, is_client_gracefully_close
from .message import HttpHeaders, HttpRequest
from .mux import write_text
from .parser import HttpParseError, HttpParser
from .writer import ResponseWriter, reason_phrase

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
#: The API's paths: their responses say ``Connection: Close`` as SRS's do (``HttpConn.close_header``).
API_PREFIX = "/api/"


class HttpConn:
    """Port of SrsHttpConn + SrsHttpxConn (TLS aside)."""

    #: ``Connection: Close`` on every response, yet the connection still follows the
    #: request's keep-alive, as SRS's SrsHttpxConn does (srs.md 1.2). The server sets it on
    #: the API's own listener; on the HTTP server's port only the API's paths (``API_PREFIX``)
    #: get it. Anything else says ``Connection: Close`` only when the connection ends after it
    #: (the live-stream players of app/http_stream.py, a request without keep-alive): a
    #: browser honours the header, and would open a new connection for every playlist and
    #: segment of an HLS stream.
    close_header = False
    #: Small responses and chunks go out at once (as nginx's ``tcp_nodelay on``): no Nagle
    #: delay between the headers and a body sent apart, e.g. by sendfile.
    tcp_nodelay = True
    #: Bytes asked of each ``recv_into``.
    recv_size = 8 * 1024  # per connection: players send one small request, keep it small
    #: Bytes asked of each ``recv`` of the close watcher (what it reads is discarded).
    watch_size = 4096
    #: After answering a broken request, read what the client still sends for at most this
    #: long before closing, so the answer is not lost to a reset (a "lingering close").
    linger_timeout = 1.0

    def __init__(self, sock, addr, handler, *, cid: str, request_timeout: float = 15.0,
                 max_request_line: int = 8192, max_header_bytes: int = 32768, max_body: int = 1 << 20,
                 on_request=None, send_timeout: float | None = None, idle_timeout: float | None = None,
                 close_header: bool | None = None):
        """``on_request(r)``, when given, sees each request before the handler (stats, access
        checks; what it raises is handled like the handler's). ``send_timeout`` bounds each
        blocked send while a handler runs (None: no bound, as SRS's players).
        ``idle_timeout`` (``limits.idle_timeout``) bounds the silence before the first byte
        of the first request (None: ``request_timeout``); ``request_timeout`` bounds each
        request from its first byte, and the silence between keep-alive requests.
        ``close_header`` (None: the class's) says ``Connection: Close`` on every response."""
        self.sock = sock
        self.addr = addr
        self.remote_ip = addr[0] if addr else ""
        self.remote_port = addr[1] if addr else 0
        self.handler = handler
        self.cid = cid
        self.request_timeout = request_timeout
        self.idle_timeout = request_timeout if idle_timeout is None else idle_timeout
        self.send_timeout = send_timeout
        self.on_request = on_request
        if close_header is not None:
            self.close_header = close_header
        self.parser = HttpParser(max_request_line, max_header_bytes, max_body)
        self.bytes_in = 0
        self.bytes_out = 0
        self.requests = 0
        self.closed = False
        self.expired = False
        self.start_time = time.time()
        self.log = logger.bind(cid=cid, ip=self.remote_ip)
        self._buf = bytearray(self.recv_size)
        self._watcher = None
        self._watched = False
        self._linger = False
        self.idle_deadline: float | None = None  # while waiting for a request's first byte
        self._idled = False
        self._wait_readable = readable_waiter(sock)
        if self.tcp_nodelay:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except (OSError, AttributeError):
                pass  # not a TCP socket

    # -- lifecycle ------------------------------------------------------------------------
    def serve(self) -> None:
        with logger.contextualize(cid=self.cid, ip=self.remote_ip):
            logger.debug("HTTP client ip={}:{}", self.remote_ip, self.remote_port)
            IDLE_SWEEP.add(self)
            try:
                self._cycle()
            except BaseException as e:  # noqa: BLE001 - the top of the connection greenlet
                self._log_end(e)
                if not isinstance(e, Exception):
                    raise
            finally:
                self._cleanup()

    def expire(self) -> None:
        """Kick the connection: close the socket; blocked reads and writes end at once.

        A handler waiting on something else (an event) learns it from its ``watch_close``
        callback, which fires when the socket goes away, and from ``closed``.
        """
        if self.closed:
            return
        self.expired = True
        self.closed = True
        w, self._watcher = self._watcher, None
        if w is not None and w.io is not None:
            w.kill()  # stop watching before the fd closes, and tell the handler now
            gevent.get_hub().loop.run_callback(w.callback)
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    def watch_close(self, callback, on_data=None):
        """Port of SrsHttpRecvThread: read until the peer closes, then ``callback()``.

        An event-loop read watcher, not a greenlet: a streaming player costs no second
        stack (SRS runs a coroutine here). Killed when the request or the connection ends.
        Bytes the client sends meanwhile go to ``on_data(bytes)`` (in the event loop: it
        must not block), or are dropped, so the connection closes after such a request
        instead of parsing what follows.
        """
        self._kill_watcher()
        self._watched = True
        self._watcher = _CloseWatcher(self, callback, on_data)
        return self._watcher

    def _kill_watcher(self):
        watcher, self._watcher = self._watcher, None
        if watcher is not None and watcher is not gevent.getcurrent():
            watcher.kill(block=False)

    def _cleanup(self):
        IDLE_SWEEP.discard(self)
        self.idle_deadline = None
        self._kill_watcher()
        if self._linger and not self.closed:
            self._lingering_close()
        self.closed = True
        self.parser.close()
        try:
            self.sock.close()
        except OSError:
            pass

    def _lingering_close(self):
        try:
            self.sock.shutdown(socket.SHUT_WR)
            deadline = time.monotonic() + self.linger_timeout
            while (left := deadline - time.monotonic()) > 0:
                self.sock.settimeout(left)
                if not self.sock.recv_into(self._buf):
                    break
        except OSError:
            pass

    def _log_end(self, e: BaseException):
        if self.expired:
            logger.info("http: connection kicked, {} requests", self.requests)
        elif is_client_gracefully_close(e) or isinstance(e, gevent.GreenletExit):
            logger.info("http: client disconnect peer, {}", e.__class__.__name__)
        elif isinstance(e, (SrsError, OSError)):
            logger.warning("http: serve error code={}: {}", getattr(e, "code", None) or getattr(e, "errno", 0), e)
        else:
            logger.exception("http: serve error: {!r}", e)

    # -- the request loop ---------------------------------------------------------------------
    def _cycle(self):
        while not self.closed:
            r = self._read_request()
            if r is None:
                return
            self.requests += 1
            if not self._serve(r):
                return

    def _read_request(self) -> HttpRequest | None:
        """The next request; None when the peer closed, went idle or sent a broken one."""
        parser = self.parser
        idle = self.idle_timeout if self.requests == 0 else self.request_timeout
        deadline = time.monotonic() + idle
        continued = False
        view = memoryview(self._buf)
        while True:
            try:
                p = parser.next_request()
            except HttpParseError as e:
                logger.info("http: bad request, status={}, {}", e.status, e)
                self._linger = True
                self._reply(None, e.status, reason_phrase(e.status), close=True)
                return None
            if p is not None:
                r = HttpRequest(p.method, p.url, HttpHeaders.received(p.headers), p.body, version=p.version,
                                keep_alive=p.keep_alive, remote=(self.remote_ip, self.remote_port), conn=self)
                r.upgrade_data = p.upgrade_data
                return r
            if parser.expect_continue and not continued:
                continued = True
                self._send_raw(CONTINUE)
            if parser.started:  # a request on its way: the socket's timeout bounds it
                left = deadline - time.monotonic()
                if left <= 0:
                    return self._timeout(True, idle)
                self.sock.settimeout(left)
            else:  # waiting for a request: IDLE_SWEEP ends the wait at the deadline
                self.idle_deadline = deadline
                self.sock.settimeout(None)
            try:
                if not parser.started and self._wait_readable is not None:
                    self._wait_readable()  # a keep-alive client's next request is seldom there yet
                n = self.sock.recv_into(view)
            except socket.timeout:
                return self._timeout(parser.started, idle)
            except OSError as e:
                if self.closed:
                    raise ClientClosed("http: connection expired") from e
                raise
            finally:
                self.idle_deadline = None
            if not n:
                if self._idled:
                    return self._timeout(False, idle)
                if parser.started:
                    logger.info("http: peer closed in the middle of a request")
                return None
            self.bytes_in += n
            if not parser.started:
                deadline = time.monotonic() + self.request_timeout  # the clock starts at the first byte
            parser.feed(view[:n])

    def idle_expire(self) -> None:
        """The wait for a request passed its deadline (IDLE_SWEEP): end the wait as if the
        peer had closed (a read shutdown, past gevent's socket, which would cancel the wait
        with an error); the connection then closes quietly."""
        self.idle_deadline = None
        self._idled = True
        try:
            getattr(self.sock, "_sock", self.sock).shutdown(socket.SHUT_RD)
        except OSError:
            pass

    def _timeout(self, started: bool, idle: float) -> None:
        if started:
            logger.info("http: request not read in {}s, close", self.request_timeout)
        else:
            logger.debug("http: idle for {:g}s, close", idle)
        return None

    def _serve(self, r: HttpRequest) -> bool:
        """Serve one request; True to read another on this connection."""
        w = ResponseWriter(self.sock, conn=self, is_head=r.is_head, version=r.version,
                           keep_alive=r.keep_alive, close_header=self._close_header(r))
        length = r.content_length
        logger.info("HTTP #{} {}:{} {} {}, content-length={}", self.requests, self.remote_ip, self.remote_port,
                    r.method, r.url, -1 if length is None else length)
        self._watched = False
        self.sock.settimeout(self.send_timeout)
        try:
            if self.on_request is not None:
                self.on_request(r)
            self.handler.serve_http(w, r)
            if not w.finished:
                w.final_request()
        except HttpError as e:
            if w.header_sent or self.closed:
                logger.warning("http: {} {} failed after the response started: {}", r.method, r.url, e)
                return False
            text = str(e) if str(e) != str(e.status) else reason_phrase(e.status)
            logger.info("http: {} {} answered {}: {}", r.method, r.url, e.status, text)
            return self._reply(r, e.status, text, close=getattr(e, "close", False), keep=w.header())
        except TimeoutError:  # socket.timeout: a write blocked longer than send_timeout
            if self.closed:
                raise
            logger.warning("http: {} {} dropped: a write blocked over {}s (limits.send_timeout)", r.method, r.url,
                           self.send_timeout)
            return False
        except Exception as e:
            if self.closed or is_client_gracefully_close(e):
                raise
            logger.exception("http: {} {} failed", r.method, r.url)
            if not w.header_sent:
                self._reply(r, 500, reason_phrase(500), close=True)
            return False
        finally:
            self._kill_watcher()
        return w.keep_alive and r.keep_alive and not self._watched and not self.closed

    def _reply(self, r: HttpRequest | None, status: int, text: str, close: bool,
               keep: HttpHeaders | None = None) -> bool:
        """An error response of our own, text/plain; True if the connection may go on.

        The CORS headers a middleware already set (``keep``) are kept, so browsers can read it.
        """
        keep_alive = not close and r is not None and r.keep_alive
        w = ResponseWriter(self.sock, conn=self, is_head=r is not None and r.is_head,
                           version=r.version if r is not None else "1.1", keep_alive=keep_alive,
                           close_header=r is not None and self._close_header(r))
        if keep is not None:
            for name, value in keep.pairs():
                if name.startswith("Access-Control-"):
                    w.header().add(name, value)
        write_text(w, status, text)
        return w.keep_alive

    def _close_header(self, r: HttpRequest) -> bool:
        """SRS's ``Connection: Close`` on this response though the connection goes on."""
        return self.close_header or r.path.startswith(API_PREFIX)

    def _send_raw(self, data: bytes):
        self.sock.sendall(data)
        self.bytes_out += len(data)

    def __repr__(self) -> str:
        return f"<HttpConn {self.cid} {self.remote_ip}:{self.remote_port}>"


def readable_waiter(sock):
    """A call that waits (cooperatively, no timeout) until ``sock`` is readable, so that the
    read after it does not first fail with EAGAIN as gevent's ``recv`` does when nothing is
    there yet; None for a socket without gevent's wait (or a TLS one, whose buffered
    bytes the descriptor does not show)."""
    wait = getattr(sock, "_wait", None)
    event = getattr(sock, "_read_event", None)
    if wait is None or event is None or isinstance(sock, SSLSocket):
        return None
    return partial(wait, event)


class IdleSweep:
    """Ends the waits for a request (``idle_timeout``, then ``request_timeout`` between
    keep-alive requests) of every connection from one greenlet that looks every
    ``interval`` seconds, instead of a gevent Timeout armed and cancelled for each wait:
    a keep-alive viewer's connection waits between each of its requests. A wait ends at
    most ``interval`` after its deadline. The greenlet runs while connections exist."""

    interval = 1.0

    def __init__(self):
        self.conns: set = set()
        self._greenlet = None

    def add(self, conn) -> None:
        self.conns.add(conn)
        if self._greenlet is None:
            self._greenlet = gevent.spawn(self._run)

    def discard(self, conn) -> None:
        self.conns.discard(conn)

    def _run(self) -> None:
        try:
            while self.conns:
                gevent.sleep(self.interval)
                now = time.monotonic()
                for conn in [c for c in self.conns if c.idle_deadline is not None and c.idle_deadline <= now]:
                    conn.idle_expire()
        finally:
            self._greenlet = None


#: The process's sweep (one event loop serves every connection).
IDLE_SWEEP = IdleSweep()

__all__ = ["API_PREFIX", "HttpConn", "IDLE_SWEEP", "IdleSweep"]


class _CloseWatcher:
    """Calls ``callback()`` once when the peer of ``conn`` closes (or the socket fails)."""

    def __init__(self, conn, callback, on_data=None):
        self.conn = conn
        self.callback = callback
        self.on_data = on_data
        self.io = gevent.get_hub().loop.io(conn.sock.fileno(), 1)
        self.io.start(self._readable)

    def _readable(self):
        conn = self.conn
        try:
            data = conn.sock._sock.recv(conn.watch_size, socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            data, reason = b"", ("kicked" if conn.expired else repr(e))
        else:
            reason = "peer closed"
        if data:
            conn.bytes_in += len(data)
            if self.on_data is not None:
                try:
                    self.on_data(data)
                except Exception:  # noqa: BLE001 - an event-loop callback must not raise
                    logger.exception("http: data callback failed")
            return
        self.kill()
        logger.bind(cid=conn.cid, ip=conn.remote_ip).info("http: recv thread ends, {}", reason)
        try:
            self.callback()
        except Exception:  # noqa: BLE001 - an event-loop callback must not raise
            logger.exception("http: close callback failed")

    def kill(self, block: bool = False):
        io, self.io = self.io, None
        if io is not None:
            io.stop()
            io.close()
