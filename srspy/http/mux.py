"""Port of SrsHttpServeMux (Go's ServeMux rules) and the small handlers around it.

Rules (srs.md 1.4):

* a pattern ending in ``/`` matches by prefix, any other one exactly; the longest wins;
* a pattern not starting with ``/`` is vhost-prefixed (``ossrs.net/live/x.flv``) and is
  matched against ``host + path`` when the request's Host is that vhost;
* registering ``/tree/`` also answers ``/tree`` with a 302 to ``/tree/``, unless ``/tree``
  is registered explicitly;
* a path with a ``..`` segment (percent-encoded too) is refused: 400, then close;
* after matching, every hijacker may substitute its own handler;
* nothing found: the ``NotFoundHandler`` (404).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from loguru import logger

from ..errors import (ERROR_HTTP_PATTERN_DUPLICATED, ERROR_HTTP_PATTERN_EMPTY, ERROR_HTTP_URL_NOT_CLEAN,
                      HttpError, SrsError)


@runtime_checkable
class HttpHandler(Protocol):
    """Port of ISrsHttpHandler."""

    def serve_http(self, w, r) -> None: ...


class HttpMatchHijacker(Protocol):
    """Port of ISrsHttpMatchHijacker: may replace the handler the mux found (None: keep)."""

    def hijack(self, r, handler): ...


class UrlNotClean(HttpError):
    """A path with a ``..`` segment: SRS drops the connection; srspy answers 400 and closes."""

    close = True

    def __init__(self, path: str):
        super().__init__(400, f"url {path} contains ..", code=ERROR_HTTP_URL_NOT_CLEAN)


class HandlerFunc:
    """Adapts a plain function ``fn(w, r)`` to the handler protocol."""

    __slots__ = ("fn",)

    def __init__(self, fn):
        self.fn = fn

    def serve_http(self, w, r):
        return self.fn(w, r)

    def __repr__(self) -> str:
        return f"HandlerFunc({getattr(self.fn, '__qualname__', self.fn)!r})"


def as_handler(handler) -> HttpHandler:
    """A handler object as is; a callable ``(w, r)`` wrapped in HandlerFunc."""
    if hasattr(handler, "serve_http"):
        return handler
    if callable(handler):
        return HandlerFunc(handler)
    raise TypeError(f"not an http handler: {handler!r}")


def write_body(w, status: int, body: bytes, content_type: str, cache_control: str | None = None) -> None:
    """A whole response body with its Content-Type, Content-Length and Cache-Control."""
    h = w.header()
    h["Content-Type"] = content_type
    if cache_control:
        h["Cache-Control"] = cache_control
    h["Content-Length"] = str(len(body))
    w.write_header(status)
    w.write(body)


def write_text(w, status: int, text: str) -> None:
    """A small text/plain response with Content-Length."""
    body = text.encode()
    h = w.header()
    h["Content-Type"] = "text/plain; charset=utf-8"
    h["Content-Length"] = str(len(body))
    w.write_header(status)
    w.write(body)


class NotFoundHandler:
    """Port of SrsHttpNotFoundHandler: 404 ``Not Found``."""

    def serve_http(self, w, r):
        write_text(w, 404, "Not Found")

    def is_not_found(self) -> bool:
        return True


NOT_FOUND = NotFoundHandler()


class RedirectHandler:
    """Port of SrsHttpRedirectHandler: ``Location: url`` (+ the request's query)."""

    def __init__(self, url: str, status: int = 302):
        self.url = url
        self.status = status

    def serve_http(self, w, r):
        location = self.url + ("?" + r.query if r.query else "")
        w.header()["Location"] = location
        write_text(w, self.status, f"Redirect to {location}")


class MuxEntry:
    """Port of SrsHttpMuxEntry."""

    __slots__ = ("pattern", "handler", "explicit", "enabled")

    def __init__(self, pattern: str, handler, explicit: bool):
        self.pattern = pattern
        self.handler = handler
        self.explicit = explicit
        self.enabled = True


def has_dot_dot(path: str) -> bool:
    """True when ``path`` (already percent-decoded) has a ``..`` segment."""
    return ".." in path and ".." in path.replace("\\", "/").split("/")


class HttpServeMux:
    """Port of SrsHttpServeMux."""

    def __init__(self):
        self.entries: dict[str, MuxEntry] = {}  # every pattern, exact and prefix
        self._prefixes: list[MuxEntry] = []  # patterns ending in '/', longest first
        self.vhosts: dict[str, int] = {}  # vhost -> number of its patterns
        self.hijackers: list = []

    # -- registration ---------------------------------------------------------------------
    def handle(self, pattern: str, handler) -> None:
        if not pattern:
            raise SrsError("http: empty pattern", code=ERROR_HTTP_PATTERN_EMPTY)
        handler = as_handler(handler)
        old = self.entries.get(pattern)
        if old is not None and old.explicit:
            raise SrsError(f"http: multiple registrations for {pattern}", code=ERROR_HTTP_PATTERN_DUPLICATED)
        if not pattern.startswith("/"):
            vhost = pattern.partition("/")[0]
            self.vhosts[vhost] = self.vhosts.get(vhost, 0) + 1
        self._put(MuxEntry(pattern, handler, explicit=True))
        # /tree/ also answers /tree with a redirect, unless /tree is registered itself.
        if pattern != "/" and pattern.endswith("/"):
            short = pattern[:-1]
            if short not in self.entries:
                url = pattern if pattern.startswith("/") else pattern[pattern.find("/"):]
                self._put(MuxEntry(short, RedirectHandler(url, 302), explicit=False))

    def unhandle(self, pattern: str) -> None:
        entry = self.entries.get(pattern)
        if entry is None or not entry.explicit:
            return
        self._drop(pattern)
        if not pattern.startswith("/"):
            vhost = pattern.partition("/")[0]
            left = self.vhosts.get(vhost, 1) - 1
            if left > 0:
                self.vhosts[vhost] = left
            else:
                self.vhosts.pop(vhost, None)
        if pattern != "/" and pattern.endswith("/"):
            short = self.entries.get(pattern[:-1])
            if short is not None and not short.explicit:
                self._drop(short.pattern)

    def hijack(self, h) -> None:
        if h not in self.hijackers:
            self.hijackers.append(h)

    def unhijack(self, h) -> None:
        if h in self.hijackers:
            self.hijackers.remove(h)

    def _put(self, entry: MuxEntry):
        self._drop(entry.pattern)
        self.entries[entry.pattern] = entry
        if entry.pattern.endswith("/"):
            self._prefixes.append(entry)
            self._prefixes.sort(key=lambda e: len(e.pattern), reverse=True)

    def _drop(self, pattern: str):
        entry = self.entries.pop(pattern, None)
        if entry is not None and pattern.endswith("/"):
            self._prefixes.remove(entry)

    # -- lookup ---------------------------------------------------------------------------
    def find_handler(self, r):
        """``(handler, pattern)`` for ``r``; ``(NOT_FOUND, None)`` when nothing matches."""
        if has_dot_dot(r.path):
            raise UrlNotClean(r.path)
        entry = None
        if self.vhosts and r.host in self.vhosts:
            entry = self._match(r.host + r.path)
        if entry is None:
            entry = self._match(r.path)
        handler, pattern = (entry.handler, entry.pattern) if entry is not None else (None, None)
        for h in self.hijackers:
            hijacked = h.hijack(r, handler)
            if hijacked is not None:
                handler = as_handler(hijacked)
        if handler is None:
            return NOT_FOUND, None
        return handler, pattern

    def _match(self, path: str) -> MuxEntry | None:
        # An exact match is the whole path, so nothing can be longer.
        entry = self.entries.get(path)
        if entry is not None and entry.enabled and not path.endswith("/"):
            return entry
        for entry in self._prefixes:  # longest first
            if entry.enabled and path.startswith(entry.pattern):
                return entry
        return None

    # -- ISrsHttpHandler ------------------------------------------------------------------
    def serve_http(self, w, r):
        handler, _ = self.find_handler(r)
        if handler is NOT_FOUND:
            logger.debug("http: no handler for {} {}", r.method, r.path)
        handler.serve_http(w, r)


__all__ = ["HttpHandler", "HttpMatchHijacker", "HttpServeMux", "HandlerFunc", "MuxEntry", "NotFoundHandler",
           "NOT_FOUND", "RedirectHandler", "UrlNotClean", "as_handler", "has_dot_dot", "write_text"]
