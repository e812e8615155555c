"""Port of SrsTcpListener: one listening socket served by gevent's StreamServer.

``port 0`` binds an ephemeral port; ``port`` tells which one was bound. Each accepted
connection runs ``handle(sock, addr)`` in its own greenlet.
"""

from __future__ import annotations

import socket

from gevent.server import StreamServer
from loguru import logger


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
        self.server = StreamServer(sock, self._on_accept)
        self.server.max_accept = 256

    def _on_accept(self, sock, addr):
        self.handle(sock, addr)

    def start(self):
        self.server.start()
        logger.info("{} listen at tcp://{}:{}, fd={}", self.name, self.host, self.port, self.sock.fileno())

    def close(self):
        """Stop accepting; live connections carry on."""
        try:
            self.server.close()
        except Exception:  # noqa: BLE001 - closing twice is fine
            pass
