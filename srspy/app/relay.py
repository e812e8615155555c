"""What the relays share (edge.py pulls, forward.py pushes): upstream URLs and the relay
session that appears as a client of its stream in the statistics (``edge-pull``,
``edge-forward``, ``rtmp-forward``), counting bytes across its reconnections.

A relay reads or feeds a LiveSource like any connection; it never counts as a player
(its consumers are created with ``player=False``).
"""

from __future__ import annotations

from ..request import DEFAULT_VHOST
from ..session import Session

EDGE_PULL = "edge-pull"
EDGE_FORWARD = "edge-forward"
RTMP_FORWARD = "rtmp-forward"

DEFAULT_PORTS = {"rtmp": 1935, "flv": 8080, "flvs": 443}


def split_host_port(endpoint: str, default_port: int) -> tuple[str, int]:
    """``host:port``, ``host``, ``[v6]:port`` -> (host, port)."""
    ep = endpoint.strip()
    if ep.startswith("["):
        host, _, rest = ep[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") and rest[1:] else default_port
    if ep.count(":") == 1:
        host, port = ep.split(":")
        return host or "127.0.0.1", int(port)
    if ep.isdigit():
        return "127.0.0.1", int(ep)
    return ep, default_port


def _query(req, vhost: str) -> str:
    q = req.param.lstrip("?")
    if vhost and vhost != DEFAULT_VHOST and "vhost=" not in q and "domain=" not in q:
        q = f"{q}&vhost={vhost}" if q else f"vhost={vhost}"
    return q


def upstream_url(protocol: str, endpoint: str, req, vhost: str = "") -> str:
    """The URL of ``req``'s stream on another server: ``rtmp://h:p/app/stream?q`` or
    ``http(s)://h:p/app/stream.flv?q``; a non-default vhost goes as ``?vhost=``."""
    host, port = split_host_port(endpoint, DEFAULT_PORTS.get(protocol, 1935))
    if ":" in host:
        host = f"[{host}]"
    q = _query(req, vhost or req.vhost)
    q = f"?{q}" if q else ""
    name = req.stream_name
    if protocol == "rtmp":
        return f"rtmp://{host}:{port}/{req.app}/{name}{q}"
    scheme = "https" if protocol == "flvs" else "http"
    return f"{scheme}://{host}:{port}/{req.app}/{name}.flv{q}"


class RelaySession(Session):
    """What relays share: the stream, the statistics record, byte counters over sessions."""

    is_relay = True
    stat_type = ""

    def __init__(self, server, source):
        req = source.req
        super().__init__(req.stream_url, req.app, req.stream_name, req.param.lstrip("?"))
        self.server = server
        self.source = source
        self.req = req.copy()
        self.cid = self.unique_key
        self.session = None
        self.stopped = False
        self.greenlet = None
        self._closed_send = 0
        self._closed_recv = 0
        self.connects = 0

    @property
    def send_bytes(self) -> int:
        s = self.session
        return self._closed_send + (s.send_bytes if s is not None else 0)

    @property
    def recv_bytes(self) -> int:
        s = self.session
        return self._closed_recv + (s.recv_bytes if s is not None else 0)

    def _drop_session(self):
        s = self.session
        if s is None:
            return
        s.dispose()
        self._closed_send += s.send_bytes
        self._closed_recv += s.recv_bytes
        self.session = None

    def _stat_on(self):
        self.server.stat.on_client(self.cid, self.req, self, self.stat_type)

    def _stat_off(self):
        self.server.stat.on_disconnect(self.cid)

    def expire(self):
        """Kick (API, quit): same as stop."""
        self.stop()

    def stop(self, drain_s: float = 0.0):
        raise NotImplementedError


__all__ = ["RelaySession", "upstream_url", "split_host_port", "EDGE_PULL", "EDGE_FORWARD", "RTMP_FORWARD"]
