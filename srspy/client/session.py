"""The life cycle every client session shares: start, wait, dispose.

``start()`` blocks until the session is established (publishing, playing, the HTTP
response is in) or raises when it failed or the start timeout passed. ``dispose()`` may
be called from any greenlet, any number of times. ``wait()`` blocks until the session
ended and returns a ``SessionEnd`` telling how: the peer closed (``CLOSED``), an error on
our side (``ERROR``: timeout, protocol error, a callback raised), or ``DISPOSED``.
"""

from __future__ import annotations

import socket as _pysocket
from collections import deque

import gevent
from gevent import socket
from gevent.event import Event
from loguru import logger

from ..errors import ClientClosed, SrsError, Timeout, is_client_gracefully_close
from ..session import Session

CLOSED = "closed"
ERROR = "error"
DISPOSED = "disposed"

DEFAULT_START_TIMEOUT = 10.0


class SessionDisposed(ClientClosed):
    """The session was disposed while a call was blocked on it."""


class SessionEnd:
    """How a session ended: ``reason`` (CLOSED, ERROR, DISPOSED) and the exception, if any."""

    __slots__ = ("reason", "error")

    def __init__(self, reason: str, error: BaseException | None = None):
        self.reason = reason
        self.error = error

    def __repr__(self) -> str:
        return f"SessionEnd({self.reason}, {self.error!r})"


class ClientSession(Session):
    """Base of the client sessions: socket, counters, start timeout, end bookkeeping.

    ``start_timeout`` covers everything ``start()`` does (connect, handshake, commands or
    the HTTP response head); ``read_timeout`` is the longest wait for data afterwards
    (None: no limit).
    """

    def __init__(self, url: str, parsed, start_timeout: float | None = DEFAULT_START_TIMEOUT,
                 read_timeout: float | None = None):
        super().__init__(url, parsed.app, parsed.stream, parsed.raw_query)
        self.parsed = parsed
        self.start_timeout = start_timeout
        self.read_timeout = read_timeout
        self.sock = None
        self.started = False
        self._recv_bytes = 0
        self._send_bytes = 0
        self._end: SessionEnd | None = None
        self._done = Event()
        self._greenlets: list = []

    # -- counters ------------------------------------------------------------------
    @property
    def recv_bytes(self) -> int:
        return self._recv_bytes

    @property
    def send_bytes(self) -> int:
        return self._send_bytes

    # -- life cycle ----------------------------------------------------------------
    def start(self):
        """Connect and establish the session; return self. Raises on failure or timeout."""
        if self._end is not None:
            raise SessionDisposed(f"{self.unique_key}: session already ended ({self._end.reason})")
        timeout = None
        if self.start_timeout:
            err = Timeout(f"{self.unique_key}: start timeout after {self.start_timeout:g}s, url={self.url}")
            timeout = gevent.Timeout(self.start_timeout, err)
            timeout.start()
        try:
            self._start()
        except BaseException as e:
            if self._end is not None and self._end.reason == DISPOSED:
                self._close_socket()
                raise SessionDisposed(f"{self.unique_key}: disposed while starting") from e
            self._finish(DISPOSED if isinstance(e, gevent.GreenletExit) else ERROR, e)
            raise
        finally:
            if timeout is not None:
                timeout.close()
        if self._end is not None:
            raise SessionDisposed(f"{self.unique_key}: disposed while starting")
        self.started = True
        self._after_start()
        return self

    def _start(self):
        raise NotImplementedError

    def _after_start(self):
        """Hook: spawn the session's background greenlets once established."""

    def dispose(self):
        """End the session now (idempotent, from any greenlet)."""
        if self._end is None:
            self._finish(DISPOSED, None)
        else:
            self._close_socket()

    close = dispose

    def wait(self, timeout: float | None = None) -> SessionEnd | None:
        """Block until the session ended; its SessionEnd (None if ``timeout`` passed first)."""
        self._done.wait(timeout)
        return self._end

    @property
    def ended(self) -> SessionEnd | None:
        return self._end

    @property
    def is_done(self) -> bool:
        return self._end is not None

    def _finish(self, reason: str, error: BaseException | None):
        """Record how the session ended (the first call wins), close, wake waiters."""
        if self._end is not None:
            return
        if reason == ERROR and error is not None and is_client_gracefully_close(error):
            reason = CLOSED
        self._end = SessionEnd(reason, error)
        logger.debug("{} {} ended: {} {}", self.unique_key, self.url, reason, error or "")
        self._close_socket()
        self._done.set()
        current = gevent.getcurrent()
        for g in self._greenlets:
            if g is not current:
                g.kill(block=False)

    def _fail(self, error: BaseException):
        """End on an exception from the I/O path (disposing closed the socket: not an error)."""
        if self._end is not None:
            return
        self._finish(ERROR, error)

    def _close_socket(self):
        sock = self.sock
        if sock is None:
            return
        try:
            sock.shutdown(_pysocket.SHUT_RDWR)
        except OSError:
            pass
        try:
            sock.close()
        except OSError:
            pass

    # -- helpers -------------------------------------------------------------------
    def _connect(self, host: str, port: int, ssl_context=None, server_hostname: str | None = None):
        """A TCP (optionally TLS) connection; sets ``self.sock`` and ``remote_addr``."""
        try:
            sock = socket.create_connection((host, port))
        except OSError as e:
            raise ConnectError(f"{self.unique_key}: connect to {host}:{port} failed: {e}") from e
        self.sock = sock
        if self._end is not None:  # disposed while connecting
            self._close_socket()
            raise SessionDisposed(f"{self.unique_key}: disposed while connecting")
        try:
            sock.setsockopt(_pysocket.IPPROTO_TCP, _pysocket.TCP_NODELAY, 1)
        except OSError:
            pass
        if ssl_context is not None:
            sock = ssl_context.wrap_socket(sock, server_hostname=server_hostname or host)
            self.sock = sock
        try:
            peer = sock.getpeername()
            self.remote_addr = f"{peer[0]}:{peer[1]}"
        except OSError:
            self.remote_addr = f"{host}:{port}"
        return sock


class PullSession(ClientSession):
    """A session that receives media: messages go to ``on_message(msg)`` from a greenlet
    of the session when given, else to whoever iterates it (``for msg in session`` or
    ``session.read()``). Subclasses implement ``_pump``: one read from the socket that
    appends what is deliverable to ``self._queue``."""

    def __init__(self, url: str, parsed, on_message=None, start_timeout=DEFAULT_START_TIMEOUT, read_timeout=None):
        super().__init__(url, parsed, start_timeout, read_timeout)
        self.on_message = on_message
        self._queue: deque = deque()

    def _pump(self):
        raise NotImplementedError

    def _start_delivery(self):
        if self.on_message is not None:
            self._greenlets.append(gevent.spawn(self._deliver_loop))

    def _deliver_loop(self):
        cb = self.on_message
        try:
            while True:
                m = self.read()
                if m is None:
                    return
                cb(m)
        except Exception as e:  # noqa: BLE001 - a callback error ends the session
            self._fail(e)

    def read(self):
        """The next message (``MediaMessage``: audio, video or metadata); None once ended."""
        q = self._queue
        while not q:
            if self._end is not None:
                return None
            try:
                self._pump()
            except Timeout as e:
                err = Timeout(f"{self.unique_key}: no data in {self.read_timeout:g}s (read timeout)")
                err.__cause__ = e
                self._fail(err)
                return None
            except TimeoutError as e:  # a socket timeout not converted by the protocol layer
                err = Timeout(f"{self.unique_key}: no data in {self.read_timeout:g}s (read timeout)")
                err.__cause__ = e
                self._fail(err)
                return None
            except Exception as e:  # noqa: BLE001 - the end of the session
                self._fail(e)
                return None
        return q.popleft()

    def __iter__(self):
        while True:
            m = self.read()
            if m is None:
                return
            yield m


class ConnectError(SrsError):
    """The TCP (or TLS) connection could not be made."""


__all__ = ["ClientSession", "PullSession", "SessionEnd", "SessionDisposed", "ConnectError", "CLOSED", "ERROR", "DISPOSED",
           "DEFAULT_START_TIMEOUT"]
