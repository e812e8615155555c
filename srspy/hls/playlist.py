"""HLS media playlists (RFC 8216, and its second edition for low-latency tags), SRS's
file name templates, and the blocking playlist reload decision.

The text follows SRS's ``SrsHlsMuxer::_refresh_m3u8`` (app/srs_app_hls.cpp): ``#EXTM3U``,
``#EXT-X-VERSION``, ``#EXT-X-MEDIA-SEQUENCE``, ``#EXT-X-TARGETDURATION``, then per
segment an optional ``#EXT-X-DISCONTINUITY``, an optional ``#EXT-X-KEY``, ``#EXTINF:%.3f,
no desc`` and the URI; LF line ends. What srspy adds, as RFC 8216 requires:

* ``EXT-X-TARGETDURATION`` is fixed for a publish before the first segment is listed:
  ``ceil(max(hls_fragment * hls_td_ratio, GOP, first segment))`` (:func:`target_duration`;
  with ``hls_ts_floor`` the fragment counts with the floor's 30 % cut margin), and never
  changes while the publish lasts (RFC 8216 6.2.1); a stream whose GOP grows past it
  mid-publish lists longer segments, as SRS would;
* ``EXT-X-DISCONTINUITY-SEQUENCE`` counts the flagged segments that left the window;
* ``EXT-X-KEY`` is repeated on the first listed segment when the segment that carried it
  left the window (else a player joining later would not know the key);
* ``EXT-X-VERSION`` is 3 for plain TS (as SRS) and the lowest the tags need otherwise
  (6 for ``EXT-X-MAP``, fMP4);
* low-latency: ``EXT-X-SERVER-CONTROL``, ``EXT-X-PART-INF``, ``EXT-X-PART`` for the parts
  of the recent segments and of the open one, ``EXT-X-PRELOAD-HINT`` for the next part;
  ``EXT-X-PROGRAM-DATE-TIME`` when segments carry a wall-clock start.
"""

from __future__ import annotations

import math
import time as _time

from ..errors import SrsError
from ..pathvars import UnsafeNameError, check_name, expand_stream, expand_time  # noqa: F401

class HlsError(SrsError):
    """A template or request HLS refuses."""


# ---------------------------------------------------------------- names


def segment_name(template: str, vhost: str, app: str, stream: str, seq: int, now: float, utc: bool = False,
                 floor_index: int | None = None) -> str:
    """A segment's file name from ``hls_ts_file`` (or ``hls_fmp4_file``): the stream
    variables, ``[seq]``, the time variables; ``[duration]`` stays until
    :func:`fill_duration` at rename. With ``hls_ts_floor`` the ``[timestamp]`` is
    ``floor_index`` (floor(now / fragment), as SRS)."""
    name = expand_stream(template, vhost, app, stream).replace("[seq]", str(seq))
    if floor_index is not None:
        name = name.replace("[timestamp]", str(floor_index))
    return expand_time(name, now, utc)


def fill_duration(name: str, duration_ms: int) -> str:
    return name.replace("[duration]", str(int(duration_ms)))


def entry_uri(segment_path: str, m3u8_path: str, prefix: str = "") -> str:
    """A segment's URI in the playlist (SRS ``segment_open``): relative to the m3u8's
    directory; with ``hls_entry_prefix`` P, ``P/<m3u8 dir>/<uri>`` when P has no trailing
    "/", else ``P<uri>`` (SRS adds no app dir then)."""
    m3u8_dir = m3u8_path.rsplit("/", 1)[0] if "/" in m3u8_path else ""
    rel = segment_path
    if m3u8_dir and segment_path.startswith(m3u8_dir + "/"):
        rel = segment_path[len(m3u8_dir) + 1 :]
    if not prefix:
        return rel
    if prefix.endswith("/"):
        return prefix + rel
    return f"{prefix}/{m3u8_dir}/{rel}" if m3u8_dir else f"{prefix}/{rel}"


# ---------------------------------------------------------------- playlist


def target_duration(fragment: float, td_ratio: float, gop_ms: int = 0, first_ms: int = 0,
                    margin: float = 0.0) -> int:
    """EXT-X-TARGETDURATION for a publish, decided before the first segment is listed;
    ``margin`` (a fraction of the fragment) for cuts that may come that much later
    (``hls_ts_floor``)."""
    return max(1, math.ceil(fragment * (td_ratio + margin) - 1e-9), math.ceil(gop_ms / 1000 - 1e-9),
               round(first_ms / 1000))


class Part:
    __slots__ = ("uri", "duration", "independent")

    def __init__(self, uri: str, duration: int, independent: bool):
        self.uri = uri
        self.duration = duration  # ms
        self.independent = independent


class Segment:
    """One listed segment. ``key`` is ``(uri, iv or None)`` when a new key starts here."""

    __slots__ = ("seq", "duration", "uri", "discontinuity", "key", "date", "parts")

    def __init__(self, seq: int, duration: int, uri: str, discontinuity: bool = False, key=None,
                 date: float | None = None, parts: list | None = None):
        self.seq = seq
        self.duration = duration  # ms
        self.uri = uri
        self.discontinuity = discontinuity
        self.key = key
        self.date = date  # wall clock (epoch s) of its first sample, for PROGRAM-DATE-TIME
        self.parts = parts or []


def _date(t: float) -> str:
    ms = int(round(t * 1000))
    return _time.strftime("%Y-%m-%dT%H:%M:%S", _time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


class Playlist:
    """The window of one stream's media playlist.

    ``add(segment)`` lists a closed segment and returns the segments that left the
    window (to unlink when ``hls_cleanup``); ``text()`` is the m3u8. For low-latency,
    ``part_target`` (seconds) turns the LL tags on; ``add_part`` lists a part of the open
    segment and ``preload`` names the next one.
    """

    def __init__(self, window: float = 60.0, td: int | None = None, map_uri: str | None = None,
                 part_target: float = 0.0, part_segments: int = 3):
        self.window_ms = window * 1000
        self.td = td
        self.map_uri = map_uri
        self.part_target = part_target
        self.part_segments = part_segments  # closed segments whose parts stay listed
        self.segments: list[Segment] = []
        self.discontinuity_sequence = 0
        self.current_key = None  # the key in force at the first listed segment
        self.open_parts: list[Part] = []
        self.preload: str | None = None

    @property
    def media_sequence(self) -> int:
        return self.segments[0].seq if self.segments else 0

    @property
    def last_seq(self) -> int | None:
        return self.segments[-1].seq if self.segments else None

    def add(self, seg: Segment) -> list[Segment]:
        """List ``seg``; the target duration, when not set yet, comes from it."""
        if self.td is None:
            self.td = max(1, round(seg.duration / 1000))
        self.segments.append(seg)
        self.open_parts = []
        self.preload = None
        return self._shrink()

    def add_part(self, part: Part, preload: str | None = None) -> None:
        self.open_parts.append(part)
        self.preload = preload

    def _shrink(self) -> list[Segment]:
        """SRS's window: from the newest, keep segments until their sum exceeds the window
        (that one is kept too); drop the older ones."""
        total = 0
        keep_from = 0
        for i in range(len(self.segments) - 1, -1, -1):
            total += self.segments[i].duration
            if total > self.window_ms:
                keep_from = i
                break
        removed = self.segments[:keep_from]
        for s in removed:
            if s.discontinuity:
                self.discontinuity_sequence += 1
            if s.key is not None:
                self.current_key = s.key
        self.segments = self.segments[keep_from:]
        return removed

    @property
    def version(self) -> int:
        return 6 if self.map_uri is not None else 3

    def text(self) -> str:
        if self.td is None:
            raise HlsError("hls: no segment listed yet, no playlist")
        lines = ["#EXTM3U", f"#EXT-X-VERSION:{self.version}"]
        if self.part_target:
            lines.append(f"#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK={3 * self.part_target:.3f}")
            lines.append(f"#EXT-X-PART-INF:PART-TARGET={self.part_target:.3f}")
        lines.append(f"#EXT-X-MEDIA-SEQUENCE:{self.media_sequence}")
        lines.append(f"#EXT-X-TARGETDURATION:{self.td}")
        if self.discontinuity_sequence:
            lines.append(f"#EXT-X-DISCONTINUITY-SEQUENCE:{self.discontinuity_sequence}")
        if self.map_uri is not None:
            lines.append(f'#EXT-X-MAP:URI="{self.map_uri}"')
        with_parts = len(self.segments) - self.part_segments
        for i, s in enumerate(self.segments):
            if s.discontinuity:
                lines.append("#EXT-X-DISCONTINUITY")
            key = s.key if (s.key is not None or i) else self.current_key
            if key is not None:
                uri, iv = key
                lines.append(f'#EXT-X-KEY:METHOD=AES-128,URI="{uri}"' + (f",IV=0x{iv.hex().upper()}" if iv else ""))
            if s.date is not None:
                lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{_date(s.date)}")
            if self.part_target and i >= with_parts:
                lines.extend(self._part_lines(s.parts))
            lines.append(f"#EXTINF:{s.duration / 1000:.3f}, no desc")
            lines.append(s.uri)
        if self.part_target:
            lines.extend(self._part_lines(self.open_parts))
            if self.preload:
                lines.append(f'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="{self.preload}"')
        return "\n".join(lines) + "\n"

    @staticmethod
    def _part_lines(parts: list[Part]) -> list[str]:
        return [f'#EXT-X-PART:DURATION={p.duration / 1000:.3f},URI="{p.uri}"' + (",INDEPENDENT=YES" if p.independent else "")
                for p in parts]


# ---------------------------------------------------------------- blocking reload

READY = "ready"
WAIT = "wait"
BAD_REQUEST = "bad"


def blocking_reload(pl: Playlist, msn: int | None, part: int | None) -> str:
    """Whether a ``_HLS_msn``/``_HLS_part`` request can be answered now (RFC 8216bis
    6.2.5.2): READY when the playlist holds that segment (or part), WAIT until it does,
    BAD_REQUEST when it is too far ahead -- ``msn`` beyond the open segment plus one, or
    ``part`` beyond the listed parts by the Advance Part Limit -- or ``part`` without ``msn``."""
    if msn is None:
        if part is not None:
            raise HlsError("hls: _HLS_part without _HLS_msn")
        return READY
    if msn < 0 or (part is not None and part < 0):
        raise HlsError(f"hls: negative _HLS_msn {msn} or _HLS_part {part}")
    last = pl.last_seq if pl.last_seq is not None else pl.media_sequence - 1
    open_seq = last + 1  # the segment whose parts are being listed
    if msn > open_seq + 1:
        return BAD_REQUEST
    if part is None:
        return READY if msn <= last else WAIT
    if msn <= last:
        return READY
    if msn < open_seq:
        return READY
    listed = len(pl.open_parts) - 1 if msn == open_seq else -1
    limit = 3 if pl.part_target >= 1 or not pl.part_target else math.ceil(3 / pl.part_target)
    if part > listed + limit:
        return BAD_REQUEST
    return READY if part <= listed else WAIT
