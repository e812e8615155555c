"""Port of SrsTcpListener: one listening socket served by gevent's StreamServer.

``port 0`` binds an ephemeral port; ``port`` tells which one was bound. Each accepted
connection runs ``handle(sock, addr)`` in its own greenlet.

When accept fails for lack of resources (the fd limit: EMFILE, ENFILE; ENOBUFS, ENOMEM),
the listener stops accepting for ACCEPT_BACKOFF_S, then tries again, so it never spins on
a socket that stays readable; one error record a second at most tells how many accepts
failed. Pending connections wait in the backlog and are served once fds free.
"""

from __future__ import annotations

import errno
import socket
import time

import gevent
from gevent.server import StreamServer
from loguru import logger

ACCEPT_BACKOFF_S = 0.1
ACCEPT_LOG_EVERY_S = 1.0
RESOURCE_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


class _AcceptServer(StreamServer):
    """StreamServer whose accept backs off on resource errors instead of raising them (gevent
    would print a traceback for each and retry within 10 ms)."""

    name = "tcp"

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.accept_failures = 0
        self._unlogged = 0
        self._logged_at = 0.0
        self._resume = None

    def do_read(self):
        try:
            return super().do_read()
        except OSError as e:
            if e.errno not in RESOURCE_ERRNOS:
                raise
            self._back_off(e)
            return None

    def _back_off(self, e: OSError):
        self.accept_failures += 1
        self._unlogged += 1
        now = time.monotonic()
        if now - self._logged_at >= ACCEPT_LOG_EVERY_S:
            logger.error("{} accept failed {} time(s) since the last record: {}; retrying every {} s",
                         self.name, self._unlogged, e.strerror or e, ACCEPT_BACKOFF_S)
            self._logged_at = now
            self._unlogged = 0
        self.stop_accepting()
        if self._resume is None:
            self._resume = gevent.spawn_later(ACCEPT_BACKOFF_S, self._accept_again)

    def _accept_again(self):
        self._resume = None
        if self.started and getattr(self, "socket", None) is not None:
            self.start_accepting()


def parse_endpoint(value: str | int, default_host: str = "0.0.0.0") -> tuple[str, int]:
    """``1935``, ``127.0.0.1:1935``, ``[::1]:1935``, ``::`` + port forms, as SRS's listen."""
    s = str(value).strip()
    if s.isdigit():
        return default_host, int(s)
    if s.startswith("["):
        host, _, port = s[1:].partition("]:")
        return host, int(port)
    if s.count(":") > 1:  # bare IPv6 with the port after the last colon
        host, _, port = s.rpartition(":")
        return host, int(port)
    host, _, port = s.partition(":")
    return host or default_host, int(port)


class TcpListener:
    def __init__(self, endpoint: str | int, handle, name: str = "tcp", backlog: int = 1024):
        self.host, self.want_port = parse_endpoint(endpoint)
        self.name = name
        self.handle = handle
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            try:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            except OSError:
                pass
        try:
            sock.bind((self.host, self.want_port))
            sock.listen(backlog)
        except OSError as e:
            sock.close()
            raise OSError(e.errno, f"{name} cannot listen at {self.host}:{self.want_port}: {e.strerror}") from e
        self.sock = sock
        self.port = sock.getsockname()[1]
        self.server = _AcceptServer(sock, self._on_accept)
        self.server.name = name
        self.server.max_accept = 256

    def _on_accept(self, sock, addr):
        self.handle(sock, addr)

    def start(self):
        self.server.start()
        logger.info("{} listen at tcp://{}:{}, fd={}", self.name, self.host, self.port, self.sock.fileno())

    @property
    def accept_failures(self) -> int:
        """Accepts that failed for lack of resources (fds) since the start."""
        return self.server.accept_failures

    def close(self):
        """Stop accepting; live connections carry on."""
        if self.server._resume is not None:
            self.server._resume.kill(block=False)
        try:
            self.server.close()
        except Exception:  # noqa: BLE001 - closing twice is fine
            pass
