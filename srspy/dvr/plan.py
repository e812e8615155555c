"""DVR plans (SRS app/srs_app_dvr.cpp ``SrsDvrSessionPlan``/``SrsDvrSegmentPlan``) and
file names, as the repository's outputs notes describe them.

* ``session``: one file per publish, opened by the first message, closed on unpublish.
* ``segment``: before a message is written, when the file holds ``dvr_duration`` seconds
  or more and (``dvr_wait_keyframe off`` or the message is a keyframe that is not a
  sequence header) the file is closed and a new one opened; the caller writes the
  metadata and the sequence headers into it again, then the message. srspy takes HEVC
  keyframes too (SRS tests for H.264 only, so HEVC never rolled over).
* Both: with ``dvr_wait_keyframe on`` video before the file's first keyframe is dropped.
* ``time_jitter`` per file: each file's timestamps start again near 0 (``full``), at 0
  (``zero``) or stay as they are (``off``): the same bases as the players' (srspy/live/jitter.py).
"""

from __future__ import annotations

from typing import NamedTuple

from ..errors import SrsError
from ..pathvars import check_name, expand_stream, expand_time
from ..kernel.codec import F_KEYFRAME, F_SEQUENCE_HEADER, audio_flags, video_flags
from ..kernel.message import AUDIO, VIDEO
from ..live.jitter import JITTER_OFF, consumer_base

SESSION = "session"
SEGMENT = "segment"


class DvrError(SrsError):
    """A DVR path, plan or file DVR refuses."""


def dvr_path(template: str, vhost: str, app: str, stream: str, now: float, utc: bool = False) -> str:
    """The file path from ``dvr_path``: SRS appends ``/[stream].[timestamp].flv`` when the
    template ends in neither ``.flv`` nor ``.mp4``; then the stream and time variables."""
    if not template.endswith((".flv", ".mp4")):
        template = template.rstrip("/") + "/[stream].[timestamp].flv"
    return expand_time(expand_stream(template, vhost, app, stream), now, utc)


def is_mp4(path: str) -> bool:
    return path.endswith(".mp4")


def applies(dvr_apply: list[str] | str, app: str, stream: str) -> bool:
    """``dvr_apply all`` or a list of ``app/stream``."""
    items = dvr_apply.split() if isinstance(dvr_apply, str) else list(dvr_apply)
    return "all" in items or f"{app}/{stream}" in items


class Open(NamedTuple):
    reopen: bool  # a segment rollover: write metadata and sequence headers again first


class Close(NamedTuple):
    duration: int  # ms of media in the file


class Write(NamedTuple):
    msg: object
    timestamp: int  # the file's own timestamp (time_jitter applied)


class DvrPlan:
    """``feed(msg)`` -> events: :class:`Open`, :class:`Close` and :class:`Write` (a message
    to append, with its file timestamp); ``close()`` on unpublish."""

    def __init__(self, plan: str = SESSION, duration: float = 30, wait_keyframe: bool = True,
                 time_jitter: str = "full"):
        if plan not in (SESSION, SEGMENT):
            raise DvrError(f"dvr: plan {plan!r} unknown (session or segment)")
        self.plan = plan
        self.duration_ms = duration * 1000
        self.wait_keyframe = wait_keyframe
        self.time_jitter = time_jitter
        self.open = False
        self.base: int | None = None
        self.first: int | None = None
        self.last: int | None = None
        self.seen_keyframe = False

    def close(self) -> list:
        if not self.open:
            return []
        self.open = False
        return [Close(self._duration())]

    def _duration(self) -> int:
        return 0 if self.first is None else self.last - self.first

    def feed(self, msg) -> list:
        out: list = []
        t = msg.type
        flags = 0
        if t == VIDEO:
            flags = msg.flags or video_flags(msg.payload)
        elif t == AUDIO:
            flags = msg.flags or audio_flags(msg.payload)
        sh = bool(flags & F_SEQUENCE_HEADER)
        key = t == VIDEO and bool(flags & F_KEYFRAME) and not sh
        if not self.open:
            self._start(out, reopen=False)
        elif (self.plan == SEGMENT and self._duration() >= self.duration_ms
              and (not self.wait_keyframe or key)):
            out.append(Close(self._duration()))
            self._start(out, reopen=True)
        if t == VIDEO and not sh and self.wait_keyframe and not self.seen_keyframe:
            if not key:
                return out  # no picture can be decoded before the first keyframe
            self.seen_keyframe = True
        if t in (AUDIO, VIDEO):
            if self.base is None:
                self.base = 0 if self.time_jitter == JITTER_OFF else consumer_base(self.time_jitter, msg.timestamp)
            ts = max(0, msg.timestamp - self.base)
            if not sh:
                if self.first is None:
                    self.first = ts
                self.last = ts if self.last is None else max(self.last, ts)
        else:
            ts = 0  # metadata at 0, as SRS writes it
        out.append(Write(msg, ts))
        return out

    def _start(self, out: list, reopen: bool) -> None:
        self.open = True
        self.base = None
        self.first = self.last = None
        self.seen_keyframe = False
        out.append(Open(reopen))


__all__ = ["DvrPlan", "DvrError", "Open", "Close", "Write", "dvr_path", "is_mp4", "applies", "check_name",
           "SESSION", "SEGMENT"]
