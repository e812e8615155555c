"""Port of SrsHttpServer: the stream mux first, the static mux as the fallback (srs.md 1.3).

``/api/`` and ``/console/`` go to the static mux only (API handlers live there).
Anything else asks the stream mux, where live streams are mounted at run time (and its
hijackers), and falls back to the static mux: user handlers, files under ``dir``, then
srspy's own pages (the landing page ``/``, ``/players/``, ``/console/``; srspy/www), 404.
A file in ``dir`` wins over a page of srspy's at the same path.
"""

from __future__ import annotations

from .mux import HttpServeMux, NotFoundHandler
from .static import FileServer, PageServer


class HttpServer:
    """Port of SrsHttpServer. ``handle`` and ``mux`` plug user handlers into the static mux."""

    def __init__(self, dir: str | None = None):  # noqa: A002 - SRS's http_server.dir
        self.static_mux = HttpServeMux()
        self.stream_mux = HttpServeMux()
        self.dir = dir
        pages = PageServer()
        # what the static mux has no handler for: files under dir, then srspy's pages (not
        # registered at "/": an application may still handle "/" itself)
        self.root = FileServer(dir, fallback=pages) if dir else pages

    @property
    def mux(self) -> HttpServeMux:
        return self.static_mux

    def handle(self, pattern: str, handler) -> None:
        self.static_mux.handle(pattern, handler)

    def serve_http(self, w, r):
        path = r.path
        if not path.startswith(("/api/", "/console/")):
            handler, _ = self.stream_mux.find_handler(r)
            if not isinstance(handler, NotFoundHandler):
                return handler.serve_http(w, r)
        return self.serve_static(w, r)

    def serve_static(self, w, r):
        """What the static mux answers (a stream-mux handler may fall back on it)."""
        handler, _ = self.static_mux.find_handler(r)
        if isinstance(handler, NotFoundHandler):
            handler = self.root
        return handler.serve_http(w, r)


__all__ = ["HttpServer"]
