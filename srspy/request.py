"""Port of SrsRequest and srs_protocol_utility's tcUrl/stream identification.

Shared by RTMP and HTTP: who the client is (ip), what it asked for (vhost, app, stream,
param) and the stream key every table is indexed by (``stream_url``).
"""

from __future__ import annotations

import copy
from urllib.parse import parse_qsl, urlsplit

DEFAULT_VHOST = "__defaultVhost__"
DEFAULT_APP = "__defaultApp__"
RTMP_DEFAULT_PORT = 1935


_NO_SPACE = str.maketrans("", "", " \r\n\t")
_NO_SLASH_OR_SPACE = str.maketrans("", "", " \r\n\t/")


class Request:
    """What SRS calls SrsRequest: one client's view of a stream."""

    def __init__(self):
        self.ip = ""
        self.tc_url = ""
        self.page_url = ""
        self.swf_url = ""
        self.object_encoding = 0.0
        self.schema = "rtmp"
        self.host = ""
        self.port = RTMP_DEFAULT_PORT
        self.vhost = ""
        self.app = ""
        self.stream = ""
        self.param = ""
        self.duration = -1.0
        self.args = None
        self.protocol = "rtmp"

    def copy(self) -> "Request":
        return copy.copy(self)

    @property
    def stream_name(self) -> str:
        """The stream's name, the one helper every table, hook and relay uses: an HTTP
        request's extension is stripped (``s.flv`` is stream ``s``); an RTMP name is whole."""
        stream = self.stream
        if self.protocol != "rtmp":
            dot = stream.rfind(".")
            if dot > 0:
                stream = stream[:dot]
        return stream

    @property
    def stream_url(self) -> str:
        """``/app/stream``, prefixed by the vhost unless it is the default one (SRS's stream url)."""
        url = f"/{self.app}/{self.stream_name}"
        if self.vhost and self.vhost != DEFAULT_VHOST:
            return f"{self.vhost}{url}"
        return url

    @property
    def query(self) -> dict:
        return dict(parse_qsl(self.param.lstrip("?"), keep_blank_values=True))

    def strip(self):
        """Remove spaces, CR/LF/TAB everywhere and surrounding ``/`` from app and stream."""
        self.host = self.host.translate(_NO_SLASH_OR_SPACE)
        self.vhost = self.vhost.translate(_NO_SLASH_OR_SPACE)
        self.app = self.app.translate(_NO_SPACE).strip("/")
        self.stream = self.stream.translate(_NO_SPACE).strip("/")

    def update_auth(self, other: "Request"):
        """A newer request for the same stream refreshes the auth-related fields."""
        self.page_url, self.swf_url, self.tc_url, self.param = other.page_url, other.swf_url, other.tc_url, other.param
        self.ip = other.ip

    def __repr__(self) -> str:
        return f"Request(vhost={self.vhost!r}, app={self.app!r}, stream={self.stream!r}, param={self.param!r})"


def vhost_from_query(param: str) -> str | None:
    """``?vhost=`` or ``?domain=``; ignored when it names the default vhost."""
    q = dict(parse_qsl(param.lstrip("?"), keep_blank_values=True))
    v = q.get("vhost") or q.get("domain")
    if v and v != DEFAULT_VHOST:
        return v
    return None


def discover_tc_url(tc_url: str, stream: str, req: Request) -> Request:
    """Fill schema, host, port, vhost, app, stream and param from a connect's tcUrl and the
    play/publish stream name, as SRS's srs_discovery_tc_url does."""
    tc = tc_url.strip()
    # FMLE style: rtmp://ip/app?k=v/stream -> rtmp://ip/app/stream?k=v (done on the stream side)
    tc = tc.replace("...vhost...", "?vhost=")
    parts = urlsplit(tc)
    req.schema = parts.scheme or "rtmp"
    req.host = parts.hostname or ""
    try:
        req.port = parts.port or RTMP_DEFAULT_PORT
    except ValueError:
        req.port = RTMP_DEFAULT_PORT
    app = parts.path.strip("/")
    if app.endswith("/_definst_") or app == "_definst_":
        app = app[: -len("_definst_")].rstrip("/")
    param = f"?{parts.query}" if parts.query else ""
    # stream may carry its own query: name?token=x
    s = stream
    if "?" in s:
        s, sq = s.split("?", 1)
        param = f"?{sq}" if not param else f"{param}&{sq}"
    if s.startswith("_definst_/"):
        s = s[len("_definst_/"):]
    if not s and "/" in app:  # guess the stream from the app: live/stream
        app, s = app.rsplit("/", 1)
    req.app = app or DEFAULT_APP
    req.stream = s
    req.param = param
    vq = vhost_from_query(param)
    req.vhost = vq or req.host
    if param:
        q = dict(parse_qsl(param.lstrip("?"), keep_blank_values=True))
        if list(q) == ["vhost"] and q["vhost"] == DEFAULT_VHOST:
            req.param = ""
    req.tc_url = tc_url
    req.strip()
    return req


def request_from_http(path: str, query: str, host: str, ip: str, page_url: str = "") -> Request:
    """An HTTP-FLV request as SRS builds it: tcUrl ``rtmp://vhost/app``, param from the query,
    vhost from ``?vhost=``/``?domain=`` or the Host header."""
    req = Request()
    req.ip = ip
    req.schema = "http"
    req.protocol = "flv"
    req.page_url = page_url
    p = path.lstrip("/")
    app, _, stream = p.rpartition("/")
    req.app = app or DEFAULT_APP
    req.stream = stream
    req.param = f"?{query}" if query else ""
    req.host = host
    req.vhost = vhost_from_query(req.param) or host or DEFAULT_VHOST
    req.tc_url = f"rtmp://{req.vhost}/{req.app}"
    req.strip()
    return req
