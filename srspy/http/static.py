"""Port of SrsHttpFileServer (and the plain-file part of SrsVodStream): files under a root.

Content-Type by extension, Cache-Control for HLS playlists and segments, Content-Length,
single byte ranges (``Range: bytes=a-b``, ``a-``, ``-n``; also ``?range=``/``?bytes=`` for ``.mp4`` as SRS reads them) answered
206, unsatisfiable ones 416; a directory serves its ``index.html``. The resolved path
(symlinks followed) must stay under the root, whatever the URL says. Bodies go out with
``socket.sendfile``.

A FileServer may have a ``fallback`` handler for the paths its root does not hold: the HTTP
server serves the user's ``http_server.dir`` first and srspy's own pages (``WWW_DIR``, served
by :class:`PageServer`) after it, so a user's file always wins.
"""

from __future__ import annotations

import mimetypes
import os
import re
import stat

from loguru import logger

from .mux import write_text

INDEX_PAGE = "index.html"
#: srspy's own pages (the landing page, the player, the console) and the players they load.
WWW_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "www")

# Types SRS's file server names itself (srs_app_http_static / srs_protocol_http_stack).
MIME_TYPES = {
    ".flv": "video/x-flv",
    ".m3u8": "application/vnd.apple.mpegurl",
    ".ts": "video/MP2T",
    ".mp4": "video/mp4",
    ".m4v": "video/x-m4v",
    ".m4a": "audio/x-m4a",
    ".aac": "audio/x-aac",
    ".mp3": "audio/mpeg",
    ".mpd": "application/dash+xml",
    ".m4s": "video/iso.segment",
    ".js": "text/javascript",
    ".css": "text/css",
    ".html": "text/html",
    ".htm": "text/html",
    ".json": "application/json",
    ".xml": "text/xml",
    ".txt": "text/plain",
    ".ico": "image/x-icon",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".svg": "image/svg+xml",
}

# HLS: a playlist changes every segment, a segment never changes once listed (srspy; SRS
# sends no Cache-Control, ossrs/srs#2991). An hour, not forever: a stream that starts again
# after hls_dispose reuses its segment names.
CACHE_CONTROL = {
    ".m3u8": "no-cache",
    ".ts": "max-age=3600",
    ".m4s": "max-age=3600",
}

#: How a file to serve is opened: never through a symlink (``_open_plain``), never blocking
#: (a FIFO), not inherited.
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC

_RANGE = re.compile(r"^\s*bytes=(\d*)-(\d*)\s*$", re.IGNORECASE)


def content_type(path: str) -> str:
    ext = os.path.splitext(path)[1].lower()
    ctype = MIME_TYPES.get(ext) or mimetypes.guess_type(path)[0] or "application/octet-stream"
    if ctype.startswith("text/") and "charset" not in ctype:
        ctype += "; charset=utf-8"
    return ctype


_FILE_HEADERS: dict = {}  # extension -> (Content-Type, Cache-Control or None), for SRS's types


def file_headers(path: str) -> tuple:
    """``(Content-Type, Cache-Control or None)`` for a file, looked up once per extension
    of ``MIME_TYPES`` (a segment or a playlist, many times a second)."""
    ext = os.path.splitext(path)[1].lower()
    found = _FILE_HEADERS.get(ext)
    if found is None:
        found = (content_type(path), CACHE_CONTROL.get(ext))
        if ext in MIME_TYPES:  # other types depend on more than the extension
            _FILE_HEADERS[ext] = found
    return found


def parse_range(value: str | None, size: int):
    """``(start, end)`` inclusive for one byte range; None to ignore it; ``False`` if unsatisfiable.

    Several ranges, or a malformed header, are ignored: the whole file is served (RFC 9110
    allows it).
    """
    if not value:
        return None
    m = _RANGE.match(value)
    if m is None:
        return None
    first, last = m.group(1), m.group(2)
    if not first and not last:
        return None
    if not first:  # suffix: the last n bytes
        n = int(last)
        if n == 0 or size == 0:
            return False
        return max(0, size - n), size - 1
    start = int(first)
    if start >= size:
        return False
    end = int(last) if last else size - 1
    if end < start:
        return None
    return start, min(end, size - 1)


class FileServer:
    """Port of SrsHttpFileServer: serves ``root``; ``prefix`` (a mount like ``/hls/``) is
    removed from the path first; ``fallback`` (a handler) serves what the root lacks."""

    def __init__(self, root: str, prefix: str = "", fallback=None):
        self.root = os.path.realpath(root)
        self.prefix = prefix.rstrip("/")
        self.fallback = fallback

    def resolve(self, path: str) -> str | None:
        """The real file for a URL path, or None if it is missing or outside the root."""
        if "\x00" in path:
            return None
        if self.prefix and path.startswith(self.prefix):
            path = path[len(self.prefix):]
        found = self._plain(path.lstrip("/"))
        if found is not None:
            return found or None
        full = os.path.realpath(os.path.join(self.root, path.lstrip("/")))
        if os.path.isdir(full):
            full = os.path.realpath(os.path.join(full, INDEX_PAGE))
        if not self._inside(full):
            logger.warning("http: refuse {}, outside of {}", path, self.root)
            return None
        return full if os.path.isfile(full) else None

    def _plain(self, rel: str) -> str | None:
        """The common case in a few ``lstat`` calls instead of ``realpath``'s one per
        component of the whole path: ``rel`` names, under the (real) root, a regular file
        through plain names, none of them a symlink: that path is its real path. ``""``
        when such a path is missing or not a regular file; None for anything else (a
        symlink, a directory, ``.``/``..``/empty components), which ``resolve`` checks the
        long way."""
        parts = rel.split("/")
        if not rel or "" in parts or "." in parts or ".." in parts:
            return None
        full = self.root.rstrip("/")
        st = None
        for part in parts:
            full = f"{full}/{part}"
            try:
                st = os.lstat(full)
            except (OSError, ValueError):
                return ""
            if stat.S_ISLNK(st.st_mode):
                return None
        if stat.S_ISREG(st.st_mode):
            return full
        return None if stat.S_ISDIR(st.st_mode) else ""

    def _open_plain(self, rel: str):
        """``(fd, stat, path)`` of a regular file that ``rel`` names through plain names
        below the root, none of them a symlink: one ``lstat`` per directory, the file
        opened with ``O_NOFOLLOW`` and ``fstat``-ed (``_plain`` and ``open`` take two more
        ``stat`` calls); None for anything else (missing too), which ``resolve`` sees to."""
        parts = rel.split("/")
        if not rel or "" in parts or "." in parts or ".." in parts:
            return None
        full = self.root.rstrip("/")
        for part in parts[:-1]:
            full = f"{full}/{part}"
            try:
                st = os.lstat(full)
            except (OSError, ValueError):
                return None
            if not stat.S_ISDIR(st.st_mode):  # a symlink too
                return None
        full = f"{full}/{parts[-1]}"
        try:
            fd = os.open(full, _OPEN_FLAGS)
        except (OSError, ValueError):
            return None
        try:
            st = os.fstat(fd)
        except OSError:
            os.close(fd)
            return None
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            return None
        return fd, st, full

    def _inside(self, full: str) -> bool:
        return full == self.root or full.startswith(self.root.rstrip(os.sep) + os.sep)

    def serve_http(self, w, r):
        path = r.path
        if r.method in ("GET", "HEAD") and "\x00" not in path:  # the common case, the short way
            if self.prefix and path.startswith(self.prefix):
                path = path[len(self.prefix):]
            opened = self._open_plain(path.lstrip("/"))
            if opened is not None:
                fd, st, fullpath = opened
                try:
                    return self.serve_file(w, r, fd, fullpath, st.st_size)
                finally:
                    os.close(fd)
        fullpath = self.resolve(r.path)
        if fullpath is None and self.fallback is not None:
            return self.fallback.serve_http(w, r)
        if fullpath is None:
            logger.info("http miss file={}", os.path.join(self.root, r.path.lstrip("/")))
            return write_text(w, 404, "Not Found")
        if r.method not in ("GET", "HEAD"):
            w.header()["Allow"] = "GET, HEAD"
            return write_text(w, 405, "Method Not Allowed")
        try:
            f = open(fullpath, "rb", buffering=0)  # unbuffered: only its descriptor is used
        except OSError as e:
            logger.warning("http: open file={} failed: {}", fullpath, e)
            return write_text(w, 404, "Not Found")
        with f:
            self.serve_file(w, r, f, fullpath)

    def serve_file(self, w, r, f, fullpath: str, size: int | None = None):
        """Answer with the file ``f`` (a file object or a descriptor) of ``size`` bytes
        (None: its ``fstat`` tells)."""
        if size is None:
            size = os.fstat(f if isinstance(f, int) else f.fileno()).st_size
        rng = r.header("Range")
        if rng is None and fullpath.endswith(".mp4"):
            query_range = r.args.get("range") or r.args.get("bytes")
            rng = f"bytes={query_range}" if query_range else None
        span = parse_range(rng, size)
        h = w.header()
        h["Content-Type"], cache = file_headers(fullpath)
        if cache:
            h["Cache-Control"] = cache
        h["Accept-Ranges"] = "bytes"
        if span is False:
            h["Content-Range"] = f"bytes */{size}"
            h["Content-Length"] = "0"
            w.write_header(416)
            return w.final_request()
        start, end = span if span else (0, size - 1)
        count = end - start + 1
        h["Content-Length"] = str(count)
        if span:
            h["Content-Range"] = f"bytes {start}-{end}/{size}"
            w.write_header(206)
        else:
            w.write_header(200)
        w.sendfile(f, start, count)


class PageServer(FileServer):
    """srspy's own pages under ``WWW_DIR``. A directory asked for without its trailing slash
    is redirected to it (301), so that the pages' relative links resolve."""

    def __init__(self, root: str = WWW_DIR):
        super().__init__(root)

    def serve_http(self, w, r):
        path = r.path
        if not path.endswith("/") and "\x00" not in path:
            full = os.path.realpath(os.path.join(self.root, path.lstrip("/")))
            if self._inside(full) and os.path.isdir(full):
                w.header()["Location"] = path + "/" + (f"?{r.query}" if r.query else "")
                return write_text(w, 301, "Moved Permanently")
        super().serve_http(w, r)


__all__ = ["FileServer", "MIME_TYPES", "PageServer", "WWW_DIR", "content_type", "parse_range"]
