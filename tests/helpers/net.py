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
