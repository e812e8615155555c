"""HLS play sessions, ``hls_ctx`` (SRS ``SrsHlsStream``, app/srs_app_http_static.cpp).

With ``hls_ctx on`` (the default) the playlist of a stream with HLS is answered by
``HlsPlaylist``, mounted at the playlist's URL path in the HTTP server's stream mux (it
wins over the static files) while the stream's HLS state lives:

* no ``hls_ctx`` in the query, or an unknown one: a new session (the unknown id itself, or
  a new 8-character id), counted in ``/api/v1/clients`` as ``hls-play``, checked by the
  vhost's security rules and the ``on_play`` hook (a refusal is a 403), answered with a
  one-variant master playlist pointing back at ``<path>?hls_ctx=<id>`` (plus the original
  query);
* a known id: the playlist file, its segment URIs carrying ``?hls_ctx=<id>`` when
  ``hls_ts_ctx on``; a session kicked through the API (``DELETE /api/v1/clients/<id>``)
  gets 404.

A session that asks for nothing for ``2 * hls_window`` seconds ends (``on_stop``, and it
leaves the statistics), checked every few seconds. Only the playlist bytes are counted
for a session; segment downloads are plain files (SRS adds their bytes to the session).

``HlsSessions`` is the part that does not depend on where the playlist comes from; the
low-latency playlist (app/llhls.py) uses it too, answering a request without a session
with a redirect instead of a master playlist, and counting its parts for their session.
"""

from __future__ import annotations

import os
import re
import time

import gevent
from loguru import logger

from ..http.mux import write_body, write_text
from ..log import new_cid
from ..request import request_from_http
from .file_output import run_blocking
from .http_stream import admit_player

HLS_PLAY = "hls-play"
PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
TICK_S = 5.0
MAX_SESSIONS = 100_000  # bounded: an attacker inventing ids cannot grow this without end
_SEGMENT_URI = re.compile(r"^([^#\s][^\s?]*\.(?:ts|m4s))(\?(.*))?$", re.MULTILINE)
_PART_URI = re.compile(r'^(#EXT-X-(?:PART|PRELOAD-HINT):.*?URI=")([^"?]*\.m4s)(\?([^"]*))?"', re.MULTILINE)
_CTX = re.compile(r"^[0-9a-zA-Z_-]{1,64}$")


def with_ctx(playlist: str, ctx: str) -> str:
    """Every segment URI line (``.ts``/``.m4s``) of a playlist, and the part URIs of its
    EXT-X-PART and EXT-X-PRELOAD-HINT tags (low latency), with ``hls_ctx=<ctx>`` first in
    their query; other tags and URIs stay as they are."""
    text = _SEGMENT_URI.sub(lambda m: f"{m.group(1)}?hls_ctx={ctx}" + (f"&{m.group(3)}" if m.group(3) else ""),
                            playlist)
    return _PART_URI.sub(lambda m: f'{m.group(1)}{m.group(2)}?hls_ctx={ctx}' + (f"&{m.group(4)}" if m.group(4) else "")
                         + '"', text)


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        return None


class HlsSession:
    """One HLS viewer; ``expire`` is what the API's kick calls."""

    __slots__ = ("id", "req", "last", "expired", "send_bytes", "recv_bytes")

    def __init__(self, cid: str, req):
        self.id = cid
        self.req = req
        self.last = time.monotonic()
        self.expired = False
        self.send_bytes = 0
        self.recv_bytes = 0

    def expire(self) -> None:
        self.expired = True


class HlsSessions:
    """The ``hls_ctx`` sessions of one stream's playlist URL ``path``: admission, the idle
    timer, the end. Shared by :class:`HlsPlaylist` and the low-latency playlist
    (app/llhls.py), which differ only in how a request without a session is answered."""

    def __init__(self, server, path: str, conf: dict):
        self.server = server
        self.path = path  # the URL path, e.g. /live/s.m3u8
        self.conf = conf
        self.sessions: dict[str, HlsSession] = {}
        self.ticker = None

    @property
    def ts_ctx(self) -> bool:
        """``hls_ts_ctx``: segment (and part) URIs carry the session id."""
        return bool(self.conf["hls_ts_ctx"])

    def known(self, w, r) -> tuple[HlsSession | None, str | None]:
        """``(session, ctx)`` of a request: its live session, refreshed, or None with the
        id to give a new one ("" when the request named none, or no valid one). A kicked
        session is answered here (404) and comes back as ``(None, None)``."""
        ctx = r.args.get("hls_ctx", "")
        session = self.sessions.get(ctx) if ctx else None
        if session is None:
            return None, ctx if _CTX.match(ctx) else ""
        if session.expired:
            self.eof(w)
            return None, None
        session.last = time.monotonic()
        return session, ctx

    def eof(self, w) -> None:
        """The answer to a kicked session (SRS: 404, "is EOF")."""
        write_text(w, 404, f"HLS stream {self.path} is EOF\n")

    def touch(self, r) -> HlsSession | None:
        """The live session a segment or part request names (refreshed), None for none; a
        kicked one is returned as it is (``expired``) for the caller to refuse."""
        ctx = r.args.get("hls_ctx")
        session = self.sessions.get(ctx) if ctx else None
        if session is not None and not session.expired:
            session.last = time.monotonic()
        return session

    def open(self, w, r, cid: str) -> HlsSession | None:
        """A new session for ``r`` (id ``cid``, or a new one): in the statistics as
        ``hls-play``, then the security rules and on_play decide. None when refused (the
        response is written: 403, 404 for an unknown vhost, 503 past MAX_SESSIONS)."""
        if len(self.sessions) >= MAX_SESSIONS:
            write_text(w, 503, "Too many HLS sessions\n")
            return None
        srv = self.server
        req = request_from_http(r.path, r.query, r.host, r.remote_ip, page_url=r.header("Referer") or "")
        found = srv.config.resolve_vhost(req.vhost)
        if found is None:
            write_text(w, 404, "Not Found")
            return None
        req.vhost, vconf = found
        cid = cid or new_cid()
        session = HlsSession(cid, req)
        e = admit_player(srv, vconf, req, cid, session, HLS_PLAY)
        if e is not None:
            write_text(w, 403, f"Forbidden: {e}\n")
            return None
        self.sessions[cid] = session
        logger.info("hls: session {} for {} from {}", cid, req.stream_url, req.ip)
        if self.ticker is None:
            self.ticker = gevent.spawn(self._expire_idle)
        return session

    def session_url(self, r, session: HlsSession) -> str:
        """The playlist's URL for ``session``: ``<path>?hls_ctx=<id>`` and the request's
        other query arguments."""
        extra = "&".join(p for p in r.query.split("&") if p and not p.startswith("hls_ctx=")) if r.query else ""
        return f"{self.path}?hls_ctx={session.id}" + (f"&{extra}" if extra else "")

    @staticmethod
    def send(w, session: HlsSession, body: bytes, content_type: str, cache_control: str) -> None:
        write_body(w, 200, body, content_type, cache_control)
        session.send_bytes += len(body)

    def _expire_idle(self) -> None:
        try:
            while self.sessions:
                gevent.sleep(TICK_S)
                idle = 2 * self.conf["hls_window"]
                now = time.monotonic()
                for cid, s in list(self.sessions.items()):
                    if now - s.last > idle:
                        self._end(cid, s)
        finally:
            self.ticker = None

    def _end(self, cid: str, s: HlsSession) -> None:
        if self.sessions.pop(cid, None) is None:
            return
        logger.info("hls: session {} for {} ended", cid, s.req.stream_url)
        self.server.stat.on_disconnect(cid)
        self.server.hooks.on_stop(s.req, cid)

    def close(self) -> None:
        """The stream's HLS is disposed: every session ends."""
        for cid, s in list(self.sessions.items()):
            self._end(cid, s)
        if self.ticker is not None:
            self.ticker.kill(block=False)


class HlsPlaylist(HlsSessions):
    """The ``.m3u8`` handler of one stream (see the module's docstring)."""

    def __init__(self, server, path: str, file: str, conf: dict):
        super().__init__(server, path, conf)
        self.file = file
        self._cached: tuple | None = None  # (the file's stat key, its text)

    def serve_http(self, w, r):
        if r.method not in ("GET", "HEAD"):
            w.header()["Allow"] = "GET, HEAD"
            return write_text(w, 405, "Method Not Allowed")
        session, ctx = self.known(w, r)
        if ctx is None:
            return None  # kicked: answered
        if session is None:
            session = self.open(w, r, ctx)
            if session is not None:  # a master playlist of one variant: this URL with the id
                self.send(w, session, ("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,AVERAGE-BANDWIDTH=1\n"
                                       f"{self.session_url(r, session)}\n").encode(), PLAYLIST_TYPE, "no-cache")
            return None
        text = self._playlist()
        if text is None:
            return write_text(w, 404, "Not Found")
        if self.ts_ctx:
            text = with_ctx(text, ctx)
        self.send(w, session, text.encode(), PLAYLIST_TYPE, "no-cache")
        return None

    def _playlist(self) -> str | None:
        """The playlist file's text; read (in the threadpool) only when the file changed
        since the last read, as its ``stat`` tells: every viewer asks for it every few
        seconds, the segmenter replaces it once per segment."""
        try:
            st = os.stat(self.file)
        except OSError:
            return None
        key = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        cached = self._cached
        if cached is not None and cached[0] == key:
            return cached[1]
        text = run_blocking(_read, self.file)
        self._cached = None if text is None else (key, text)
        return text


class MemoryPlaylist:
    """The ``.m3u8`` handler of one stream with ``hls_ctx off``: the playlist's bytes as the
    segmenter last wrote them to its file (``state.m3u8_bytes``, app/hls.py), answered from
    memory with the static file's headers, instead of a stat, an open and a read of the file
    for each of the viewers' requests (the file stays for a CDN or another web server). A
    request the bytes cannot answer (a range, another method, a playlist not written yet)
    goes to ``fallback``, the static files."""

    def __init__(self, path: str, state, fallback):
        self.path = path
        self.state = state
        self.fallback = fallback

    def serve_http(self, w, r):
        data = self.state.m3u8_bytes
        if data is None or r.method not in ("GET", "HEAD") or "range" in r.headers:
            return self.fallback(w, r)
        h = w.header()
        h["Content-Type"] = PLAYLIST_TYPE
        h["Cache-Control"] = "no-cache"
        h["Accept-Ranges"] = "bytes"
        h["Content-Length"] = str(len(data))
        w.write_header(200)
        w.write(data)
        return None

    def close(self) -> None:
        """Nothing to end (no sessions)."""


def playlist_path(m3u8: str) -> str:
    return "/" + m3u8.lstrip("/").replace(os.sep, "/")


__all__ = ["HLS_PLAY", "PLAYLIST_TYPE", "HlsPlaylist", "MemoryPlaylist", "HlsSession", "HlsSessions", "playlist_path", "with_ctx"]
