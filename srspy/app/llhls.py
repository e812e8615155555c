"""Low-latency HLS of one stream, served from memory (``hls_low_latency on``).

:class:`LowLatency` holds the stream's recent parts (fMP4 ``moof``+``mdat`` fragments of
about ``hls_part_duration`` seconds, made by app/hls.py) and answers two kinds of URL in the
HTTP server's stream mux:

* the playlist (``/<app>/<stream>.m3u8``), the text of the stream's
  srspy/hls/playlist.py ``Playlist`` at the time of the request, with EXT-X-PART,
  EXT-X-PRELOAD-HINT and EXT-X-SERVER-CONTROL ``CAN-BLOCK-RELOAD=YES``. A request with
  ``_HLS_msn`` (and ``_HLS_part``) is a blocking reload (RFC 8216bis 6.2.5.2): it is
  answered once the playlist holds that segment or part, 400 when it is too far ahead,
  and 503 when it did not come within three target durations;
* the parts (``/<app>/<stream>.parts/<msn>.<part>.m4s``): 200 with the bytes, and a
  request for the part the preload hint names (or any part of the open or next segment)
  waits until it exists, bounded the same way. Parts of the last ``PART_SEGMENTS`` closed
  segments and of the open one are kept; older ones are dropped from memory.

Waiters sleep on a gevent Event that every change of the playlist sets, so a new part
answers them at once. The playlist and the whole segments are also written under
``hls_path`` as for standard HLS.

With ``hls_ctx on`` (the default) the playlist has play sessions, those of app/hls_play.py
(``HlsSessions``: ``hls-play`` clients in the API, security, on_play/on_stop, kick, idle
expiry): a playlist request that names no session opens one and is redirected (302) to
``<path>?hls_ctx=<id>`` with its other query arguments (``_HLS_msn``/``_HLS_part``
included), where it is answered, blocking or not; an unknown id opens a session of that
id and is answered at once (a player that comes back); a kicked one gets 404. Standard
HLS answers with a one-variant master playlist instead, as SRS; a redirect keeps a
blocking reload a blocking reload. Every playlist request refreshes its session; with
``hls_ts_ctx on`` the segment and part URIs carry the id too, and a part request
refreshes the session it names (and counts its bytes), 404 once that session is kicked.
"""

from __future__ import annotations

import re
import time

from gevent.event import Event

from ..hls.playlist import BAD_REQUEST, READY, HlsError, Part, Playlist, blocking_reload
from ..http.mux import write_body, write_text
from .hls_play import PLAYLIST_TYPE, HlsSessions, with_ctx

PART_SEGMENTS = 3  # closed segments whose parts stay listed and served
BLOCK_TDS = 3  # a blocked request waits at most this many target durations
MAX_WAITERS = 1000  # blocked requests per stream; more get 503 at once
_PART = re.compile(r"^(\d{1,12})\.(\d{1,6})\.m4s$")


def _int_arg(args: dict, name: str) -> int | None:
    v = args.get(name)
    if v is None:
        return None
    if not v.isdigit() or len(v) > 12:
        raise HlsError(f"hls: {name}={v!r} is not a non-negative integer")
    return int(v)


class LowLatency:
    """The parts and the in-memory playlist of one stream (see the module's docstring)."""

    def __init__(self, path: str, playlist: Playlist, fragment: float, sessions: HlsSessions | None = None):
        self.path = path  # the playlist's URL path, e.g. /live/s.m3u8
        self.sessions = sessions  # hls_ctx on: the play sessions of the playlist
        base = path.rsplit("/", 1)[-1]
        stem = base[:-5] if base.endswith(".m3u8") else base
        self.rel = f"{stem}.parts/"  # the parts' URI prefix, relative to the playlist
        self.prefix = path[: len(path) - len(base)] + self.rel  # their URL path prefix
        self.playlist = playlist
        self.fragment = fragment
        self.parts: dict[int, dict[int, bytes]] = {}  # msn -> part index -> bytes
        self.changed = Event()
        self.waiters = 0

    def part_uri(self, seq: int, index: int) -> str:
        return f"{self.rel}{seq}.{index}.m4s"

    # -- from the writer ------------------------------------------------------------------------
    def add_part(self, seq: int, index: int, data: bytes, duration: int, independent: bool) -> None:
        self.parts.setdefault(seq, {})[index] = data
        self.playlist.add_part(Part(self.part_uri(seq, index), duration, independent),
                               preload=self.part_uri(seq, index + 1))
        self._notify()

    def segment_listed(self, seq: int) -> None:
        """Segment ``seq`` was added to the playlist: hint the next one's first part, forget
        the parts of segments that left the part window."""
        self.playlist.preload = self.part_uri(seq + 1, 0)
        keep_from = seq - PART_SEGMENTS + 1
        for old in [s for s in self.parts if s < keep_from]:
            del self.parts[old]
        self._notify()

    def segment_dropped(self, seq: int) -> None:
        """A too-short segment was not kept: its parts go (its number is used again)."""
        self.parts.pop(seq, None)
        self.playlist.open_parts = []
        self.playlist.preload = self.part_uri(seq, 0)
        self._notify()

    def _notify(self) -> None:
        ev, self.changed = self.changed, Event()
        ev.set()

    # -- HTTP -------------------------------------------------------------------------------------
    def _timeout(self) -> float:
        td = self.playlist.td or self.fragment
        return BLOCK_TDS * td

    def _wait(self, ready, deadline: float) -> bool:
        """Wait until ``ready()`` or the deadline; whether it became ready."""
        if ready():
            return True
        if self.waiters >= MAX_WAITERS:
            return False
        self.waiters += 1
        try:
            while not ready():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.changed.wait(left)
            return True
        finally:
            self.waiters -= 1

    def serve_http(self, w, r):
        if r.method not in ("GET", "HEAD"):
            w.header()["Allow"] = "GET, HEAD"
            return write_text(w, 405, "Method Not Allowed")
        if r.path == self.path:
            return self._serve_playlist(w, r)
        if r.path.startswith(self.prefix):
            return self._serve_part(w, r, r.path[len(self.prefix):])
        return write_text(w, 404, "Not Found")

    def _session(self, w, r):
        """hls_ctx: the request's session (``(session, False)``), or ``(None, True)`` when
        the response is written already (kicked, refused, or redirected to a new session)."""
        sessions = self.sessions
        session, ctx = sessions.known(w, r)
        if ctx is None:
            return None, True
        if session is None:
            session = sessions.open(w, r, ctx)
            if session is None:
                return None, True
            if not ctx:  # to this URL with the new session's id, the query kept
                location = sessions.session_url(r, session)
                w.header()["Location"] = location
                write_text(w, 302, f"Redirect to {location}\n")
                return None, True
        return session, False

    def _serve_playlist(self, w, r):
        pl = self.playlist
        try:
            msn = _int_arg(r.args, "_HLS_msn")
            part = _int_arg(r.args, "_HLS_part")
            if part is not None and msn is None:
                raise HlsError("hls: _HLS_part without _HLS_msn")
        except HlsError as e:
            return write_text(w, 400, f"{e}\n")
        session = None
        if self.sessions is not None:
            session, answered = self._session(w, r)
            if answered:
                return None
        deadline = time.monotonic() + self._timeout()
        if not self._wait(lambda: pl.td is not None, deadline):
            return write_text(w, 503, f"hls: {self.path} has no segment yet\n")
        verdict = []

        def decided():
            v = blocking_reload(pl, msn, part)
            verdict[:] = [v]
            return v != "wait"

        if not self._wait(decided, deadline):
            return write_text(w, 503, f"hls: {self.path} did not reach _HLS_msn={msn} _HLS_part={part} in time\n")
        if verdict[0] == BAD_REQUEST:
            return write_text(w, 400, f"hls: _HLS_msn={msn} _HLS_part={part} is too far ahead of {self.path}\n")
        assert verdict[0] == READY
        if session is None:
            return write_body(w, 200, pl.text().encode(), PLAYLIST_TYPE, "no-cache")
        text = pl.text()
        if self.sessions.ts_ctx:
            text = with_ctx(text, session.id)
        self.sessions.send(w, session, text.encode(), PLAYLIST_TYPE, "no-cache")
        return None

    def _serve_part(self, w, r, name: str):
        m = _PART.match(name)
        if m is None:
            return write_text(w, 404, "Not Found")
        session = self.sessions.touch(r) if self.sessions is not None else None
        if session is not None and session.expired:
            return self.sessions.eof(w)
        seq, index = int(m.group(1)), int(m.group(2))
        pl = self.playlist
        last = pl.last_seq if pl.last_seq is not None else -1

        def found():
            return self.parts.get(seq, {}).get(index)

        def settled():
            # the part exists, or can no longer come: its segment closed without it
            cur = pl.last_seq if pl.last_seq is not None else -1
            return found() is not None or seq <= cur

        if found() is None and last < seq <= last + 2:  # the open segment or the next one
            self._wait(settled, time.monotonic() + self._timeout())
        data = found()
        if data is None:
            return write_text(w, 404, "Not Found")
        if session is None:
            return write_body(w, 200, data, "video/mp4", "max-age=60")
        self.sessions.send(w, session, data, "video/mp4", "max-age=60")
        return None


__all__ = ["LowLatency", "PART_SEGMENTS"]
