"""What the relays share (edge.py pulls, forward.py pushes): upstream URLs and the relay
session that appears as a client of its stream in the statistics (``edge-pull``,
``edge-forward``, ``rtmp-forward``), counting bytes across its reconnections.

A relay reads or feeds a LiveSource like any connection; it never counts as a player
(its consumers are created with ``player=False``).
"""

from __future__ import annotations

import re
from urllib.parse import quote

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


# Query characters kept as they are; everything else (``?``, ``#``, space, CR, LF, other
# controls, non-ASCII) is percent-encoded. ``%`` stays only before two hex digits.
_QUERY_SAFE = "=&+:,;@!$'()*/-._~%"
_STRAY_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


def escape_name(name: str) -> str:
    """One path item: every reserved byte percent-encoded (``/``, ``?``, ``#``, ``%``, space,
    controls), ``.`` and ``..`` too, so the item can neither split nor climb the path."""
    if name in (".", ".."):
        return name.replace(".", "%2E")
    return quote(name, safe="")


def escape_app(app: str) -> str:
    """An app, nested ones (``a/b``) kept nested: each item escaped as by escape_name; empty
    items (``a//b``, a leading or trailing ``/``) dropped."""
    return "/".join(escape_name(item) for item in app.split("/") if item)


def escape_query(q: str) -> str:
    """A query kept as a query: what could end it or the request line is percent-encoded."""
    return quote(_STRAY_PERCENT.sub("%25", q), safe=_QUERY_SAFE)


def _query(req, vhost: str) -> str:
    q = escape_query(req.param.lstrip("?"))
    if vhost and vhost != DEFAULT_VHOST and "vhost=" not in q and "domain=" not in q:
        v = escape_query(vhost).replace("&", "%26")
        q = f"{q}&vhost={v}" if q else f"vhost={v}"
    return q


def upstream_url(protocol: str, endpoint: str, req, vhost: str = "") -> str:
    """The URL of ``req``'s stream on another server: ``rtmp://h:p/app/stream?q`` or
    ``http(s)://h:p/app/stream.flv?q``; a non-default vhost goes as ``?vhost=``.

    The app and the stream come from a client: they are percent-encoded (escape_app,
    escape_name; srspy/client/url.py decodes them back), the params are kept as a query
    (escape_query), so no name or param can add a path item, a second query, a fragment,
    or end an HTTP request line."""
    host, port = split_host_port(endpoint, DEFAULT_PORTS.get(protocol, 1935))
    if ":" in host:
        host = f"[{host}]"
    q = _query(req, vhost or req.vhost)
    q = f"?{q}" if q else ""
    app, name = escape_app(req.app), escape_name(req.stream_name)
    if protocol == "rtmp":
        return f"rtmp://{host}:{port}/{app}/{name}{q}"
    scheme = "https" if protocol == "flvs" else "http"
    return f"{scheme}://{host}:{port}/{app}/{name}.flv{q}"


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


__all__ = ["RelaySession", "upstream_url", "escape_name", "escape_app", "escape_query", "split_host_port", "EDGE_PULL", "EDGE_FORWARD", "RTMP_FORWARD"]
