"""Client URLs: ``rtmp://host:port/a/b/stream?x=1`` and ``http://host/a/b/stream.flv?x=1``.

Both give app ``a/b``, stream ``stream`` and raw query ``x=1``: the app is the path
without its last item, the stream is the last item (its extension removed for HTTP).
App and stream are percent-decoded (``live/a%20b`` plays ``a b``; the relays of
srspy/app/relay.py encode names that way); the query is kept raw, and an HTTP request
sends the path as written.
What the protocols need is derived here: the RTMP tcUrl and the stream name with its
query for publish/play; the Host header and request target for HTTP.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from ..errors import SrsError

DEFAULT_PORTS = {"rtmp": 1935, "rtmps": 443, "http": 80, "https": 443}


class UrlError(SrsError, ValueError):
    """The URL cannot be used by a client session."""


class ClientUrl:
    """A parsed client URL. Attributes are plain strings and ints."""

    __slots__ = ("url", "scheme", "host", "port", "path", "raw_query", "app", "stream", "file_name")

    def __init__(self, url: str, scheme: str, host: str, port: int, path: str, raw_query: str, app: str,
                 stream: str, file_name: str):
        self.url = url
        self.scheme = scheme
        self.host = host
        self.port = port
        self.path = path
        self.raw_query = raw_query
        self.app = app
        self.stream = stream
        self.file_name = file_name

    @property
    def secure(self) -> bool:
        return self.scheme in ("rtmps", "https")

    @property
    def host_port(self) -> str:
        """``host:port`` with IPv6 literals in brackets; the port left out when it is the default."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.port == DEFAULT_PORTS.get(self.scheme):
            return host
        return f"{host}:{self.port}"

    @property
    def tc_url(self) -> str:
        """The RTMP connect tcUrl: ``rtmp://host[:port]/app``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}/{self.app}"

    @property
    def stream_with_query(self) -> str:
        """The RTMP publish/play name: ``stream?x=1``."""
        return f"{self.file_name}?{self.raw_query}" if self.raw_query else self.file_name

    @property
    def path_with_query(self) -> str:
        """The HTTP request target: ``/a/b/stream.flv?x=1``."""
        return f"{self.path}?{self.raw_query}" if self.raw_query else self.path

    def __repr__(self) -> str:
        return f"ClientUrl({self.url!r}, app={self.app!r}, stream={self.stream!r}, query={self.raw_query!r})"


def parse_url(url: str, schemes: tuple = ("rtmp", "rtmps", "http", "https")) -> ClientUrl:
    """Parse ``url``; raise UrlError when the scheme is not one of ``schemes`` or parts are missing."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as e:
        raise UrlError(f"url {url!r}: {e}") from e
    scheme = parts.scheme.lower()
    if scheme not in schemes:
        raise UrlError(f"url {url!r}: scheme must be one of {', '.join(schemes)}")
    host = parts.hostname or ""
    if not host:
        raise UrlError(f"url {url!r}: no host")
    path = parts.path or "/"
    app, _, last = path.strip("/").rpartition("/")
    if not last:
        raise UrlError(f"url {url!r}: no stream in the path")
    if scheme in ("rtmp", "rtmps") and not app:
        raise UrlError(f"url {url!r}: an RTMP url needs an app and a stream (rtmp://host/app/stream)")
    last = unquote(last)
    stream = last
    if scheme in ("http", "https"):
        dot = last.rfind(".")
        if dot > 0:
            stream = last[:dot]
    return ClientUrl(url, scheme, host, port or DEFAULT_PORTS[scheme], path, parts.query, unquote(app), stream, last)


def parse_rtmp_url(url: str) -> ClientUrl:
    return parse_url(url, ("rtmp", "rtmps"))


def parse_httpflv_url(url: str) -> ClientUrl:
    return parse_url(url, ("http", "https"))


__all__ = ["ClientUrl", "UrlError", "parse_url", "parse_rtmp_url", "parse_httpflv_url", "DEFAULT_PORTS"]
