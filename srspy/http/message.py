"""Port of SrsHttpHeader and SrsHttpMessage (ISrsHttpMessage): headers and one request.

Pure: no socket, no gevent. ``HttpHeaders`` keeps insertion order and normalizes names to
Upper-Camel-Case on set, as SRS does, so responses go out with the header order the
handlers built. ``HttpRequest`` is what a handler receives as ``r``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, MutableMapping
from urllib.parse import parse_qsl, unquote_to_bytes, urlsplit


_NORMALIZED: dict[str, str] = {}
_NORMALIZED_MAX = 1024  # names seen are remembered, up to this many: clients choose them


def normalize_name(name: str) -> str:
    """``content-type`` -> ``Content-Type`` (SRS's and Go's canonical header form)."""
    done = _NORMALIZED.get(name)
    if done is None:
        done = "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))
        if len(_NORMALIZED) < _NORMALIZED_MAX:
            _NORMALIZED[name] = done
    return done


class HttpHeaders(MutableMapping):
    """Port of SrsHttpHeader: a case-insensitive, insertion-ordered multi-map.

    Mapping access sees the first value of a name; ``add``/``get_all``/``pairs`` see
    repeated ones. Names are stored normalized.
    """

    __slots__ = ("_items",)

    def __init__(self, pairs: Iterable[tuple[str, str]] | dict | None = None):
        # lowercase name -> [normalized name, value, value...]
        self._items: dict[str, list[str]] = {}
        if pairs is not None:
            for name, value in pairs.items() if isinstance(pairs, dict) else pairs:
                self.add(name, value)

    @classmethod
    def received(cls, pairs: list) -> "HttpHeaders":
        """The headers of a request as the parser hands them, ``[(name, value)]``."""
        h = cls()
        items = h._items
        for name, value in pairs:
            key = name.lower()
            item = items.get(key)
            if item is None:
                items[key] = [_NORMALIZED.get(name) or normalize_name(name), value]
            else:
                item.append(value)
        return h

    def set(self, name: str, value) -> None:
        """Replace every value of ``name`` by ``value``; the name keeps its place if present."""
        key = name.lower()
        item = self._items.get(key)
        if type(value) is not str:
            value = str(value)
        if item is None:
            self._items[key] = [_NORMALIZED.get(name) or normalize_name(name), value]
        else:
            del item[1:]
            item.append(value)

    def add(self, name: str, value) -> None:
        """Append one more value of ``name`` (``Set-Cookie`` style)."""
        item = self._items.get(name.lower())
        if item is None:
            self._items[name.lower()] = [normalize_name(name), str(value)]
        else:
            item.append(str(value))

    def get(self, name: str, default=None):
        item = self._items.get(name.lower())
        return item[1] if item is not None else default

    def get_all(self, name: str) -> list[str]:
        item = self._items.get(name.lower())
        return item[1:] if item is not None else []

    def delete(self, name: str) -> None:
        self._items.pop(name.lower(), None)

    def pairs(self) -> Iterator[tuple[str, str]]:
        """Every ``(Name, value)`` in insertion order, repeated names included."""
        for item in self._items.values():
            name = item[0]
            for value in item[1:]:
                yield name, value

    def encode(self) -> bytes:
        """``Name: value\\r\\n`` lines, as sent on the wire (no final blank line)."""
        lines = []
        for item in self._items.values():
            name = item[0]
            if len(item) == 2:
                lines.append(f"{name}: {item[1]}\r\n")
            else:
                lines.extend(f"{name}: {v}\r\n" for v in item[1:])
        return "".join(lines).encode("latin-1", "replace")

    # -- MutableMapping ---------------------------------------------------------------
    def __getitem__(self, name: str) -> str:
        item = self._items.get(name.lower())
        if item is None:
            raise KeyError(name)
        return item[1]

    def __setitem__(self, name: str, value) -> None:
        self.set(name, value)

    def __delitem__(self, name: str) -> None:
        if self._items.pop(name.lower(), None) is None:
            raise KeyError(name)

    def __contains__(self, name) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def __iter__(self) -> Iterator[str]:
        return (item[0] for item in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"HttpHeaders({list(self.pairs())!r})"


def url_bytes(target: str) -> bytes:
    """The percent-decoded bytes of a request target (the parser decodes it as latin-1)."""
    try:
        raw = target.encode("latin-1")
    except UnicodeEncodeError:
        raw = target.encode("utf-8")
    return unquote_to_bytes(raw)


def strip_port(host: str) -> str:
    """The Host header without its port, lowercased; IPv6 literals lose their brackets."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    if host.count(":") == 1:
        return host.partition(":")[0]
    return host


class HttpRequest:
    """Port of SrsHttpMessage: one parsed HTTP request, body read in full.

    ``url`` is the raw request target; ``path`` its percent-decoded path; ``query`` the
    raw query without ``?``; ``args`` the first value of each query argument. ``attrs``
    is free for handlers and middlewares.
    """

    def __init__(self, method: str = "GET", url: str = "/", headers=None, body: bytes = b"", *,
                 version: str = "1.1", keep_alive: bool | None = None, remote: tuple = ("", 0), conn=None):
        self.method = method.upper()
        self.url = url
        self.headers = headers if isinstance(headers, HttpHeaders) else HttpHeaders(headers)
        self.body = body
        self.version = version
        self.conn = conn
        self.remote_ip = remote[0]
        self.remote_port = remote[1]
        self.attrs: dict = {}
        self.upgrade_data = b""  # bytes after the head of an Upgrade request (http/ws.py)
        parts = urlsplit(url) if not url.startswith("/") else None
        if parts is not None and parts.scheme:  # absolute-form target (proxies)
            raw_path, self.query = parts.path or "/", parts.query
            if "host" not in self.headers and parts.netloc:
                self.headers.set("Host", parts.netloc)
        else:
            raw_path, _, rest = url.partition("?")
            self.query = rest.partition("#")[0]
            raw_path = raw_path.partition("#")[0]
        self.raw_path = raw_path
        if "%" not in raw_path and raw_path.isascii():
            self.path = raw_path  # what the decoding below gives, without its cost
        else:
            self.path = url_bytes(raw_path).decode("utf-8", "replace")
        self.args: dict[str, str] = {}
        if self.query:
            for k, v in parse_qsl(self.query, keep_blank_values=True):
                self.args.setdefault(k, v)
        self.host = strip_port(self.headers.get("Host", ""))
        if keep_alive is None:
            conn_hdr = self.headers.get("Connection", "").lower()
            keep_alive = "keep-alive" in conn_hdr if version == "1.0" else "close" not in conn_hdr
        self.keep_alive = keep_alive

    @property
    def is_head(self) -> bool:
        return self.method == "HEAD"

    @property
    def content_length(self) -> int | None:
        value = self.headers.get("Content-Length")
        return int(value) if value is not None and value.isdigit() else None

    def header(self, name: str, default=None):
        return self.headers.get(name, default)

    def __repr__(self) -> str:
        return f"<HttpRequest {self.method} {self.url} from {self.remote_ip}:{self.remote_port}>"


__all__ = ["HttpHeaders", "HttpRequest", "normalize_name", "strip_port", "url_bytes"]
