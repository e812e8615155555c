"""Loopback helpers shared by the tests: free ports, open ports, stream URLs."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A port free right now on 127.0.0.1 (for servers that cannot bind port 0 themselves,
    or a port known to have nothing listening)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    """Something accepts connections on 127.0.0.1:port."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def rtmp_url(srv, path: str = "/live/s") -> str:
    """The RTMP URL of ``path`` on an in-process server's first RTMP port."""
    return f"rtmp://127.0.0.1:{srv.rtmp_ports[0]}{path}"


def shrink_server_sndbuf(srv, client_sock) -> bool:
    """Small buffers both sides of ``client_sock`` (no autotuning): 4 KiB to send on the
    in-process server's side, 4 KiB to receive here. False when the server has no
    client at that address."""
    client_sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    me = client_sock.getsockname()
    for c in list(srv.stat.clients.values()):
        sock = getattr(c.conn, "sock", None)
        try:
            if sock is not None and sock.getpeername() == me:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
                return True
        except OSError:
            continue
    return False

