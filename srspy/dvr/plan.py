"""DVR plans (SRS app/srs_app_dvr.cpp ``SrsDvrSessionPlan``/``SrsDvrSegmentPlan``) and
file names, as the repository's outputs notes describe them.

* ``session``: one file per publish, opened by the first message, closed on unpublish.
* ``segment``: before a message is written, when the file holds ``dvr_duration`` seconds
  or more and (``dvr_wait_keyframe off`` or the message is a keyframe that is not a
  sequence header) the file is closed and a new one opened; the caller writes the
  metadata and the sequence headers into it again, then the message. srspy takes HEVC
  keyframes too (SRS tests for H.264 only, so HEVC never rolled over).
* Both: with ``dvr_wait_keyframe on`` video before the file's first keyframe is dropped.
  A new file (after the first) starts with the stream's metadata and sequence headers as
  the plan last saw them, written by the plan itself.
* A sequence header that changes mid-file (a new SPS or AudioSpecificConfig, another
  codec: its bytes differ from the one before; a byte-equal resend changes nothing) goes
  into the same file for FLV, where players take it. An MP4 file has one sample
  description per track, so with ``split_on_change`` (the MP4 files) the plan closes the
  file there and opens the next, which starts with the new headers and, whatever
  ``dvr_wait_keyframe`` says, drops video up to a keyframe (nothing before one decodes
  with the new configuration). A file that holds no frame yet just takes the new header.
* ``time_jitter`` per file: each file's timestamps start again near 0 (``full``), at 0
  (``zero``) or stay as they are (``off``): the same bases as the players' (srspy/live/jitter.py).
"""

from __future__ import annotations

from typing import NamedTuple

from ..errors import SrsError
from ..pathvars import check_name, expand_stream, expand_time
from ..kernel.codec import F_COLOR_INFO, F_EMPTY_CONFIG, F_KEYFRAME, F_SEQUENCE_HEADER, audio_flags, video_flags
from ..kernel.message import AMF0_DATA, AUDIO, VIDEO
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
    reopen: bool  # not the publish's first file (the plan writes the headers again into it)


class Close(NamedTuple):
    duration: int  # ms of media in the file


class Write(NamedTuple):
    msg: object
    timestamp: int  # the file's own timestamp (time_jitter applied)


# The headers a new file starts with, in the order SRS's meta cache dumps them.
_METADATA, _AUDIO_SH, _VIDEO_SH, _VIDEO_COLOR = range(4)


class DvrPlan:
    """``feed(msg)`` -> events: :class:`Open`, :class:`Close` and :class:`Write` (a message
    to append, with its file timestamp); ``close()`` on unpublish. ``split_on_change``:
    a new file at a sequence header whose bytes differ from the last one (MP4)."""

    def __init__(self, plan: str = SESSION, duration: float = 30, wait_keyframe: bool = True,
                 time_jitter: str = "full", split_on_change: bool = False):
        if plan not in (SESSION, SEGMENT):
            raise DvrError(f"dvr: plan {plan!r} unknown (session or segment)")
        self.plan = plan
        self.duration_ms = duration * 1000
        self.wait_keyframe = wait_keyframe
        self.time_jitter = time_jitter
        self.split_on_change = split_on_change
        self.open = False
        self.base: int | None = None
        self.first: int | None = None
        self.last: int | None = None
        self.seen_keyframe = False
        self.need_keyframe = wait_keyframe  # drop video up to this file's first keyframe
        self.headers: dict[int, object] = {}  # the latest metadata and headers, by _METADATA.. _VIDEO_COLOR

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
        changed = self._keep_header(msg, flags)
        if not self.open:
            self._start(out, reopen=False)
        elif changed and self.split_on_change and self.first is not None:
            out.append(Close(self._duration()))
            self._start(out, reopen=True, keyframe_first=True)
            return out  # the new header is among those the new file starts with
        elif (self.plan == SEGMENT and self._duration() >= self.duration_ms
              and (not self.wait_keyframe or key)):
            out.append(Close(self._duration()))
            self._start(out, reopen=True)
        if t == VIDEO and not sh and self.need_keyframe and not self.seen_keyframe:
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

    def _keep_header(self, msg, flags: int) -> bool:
        """Remember ``msg`` when it is metadata or a header a new file needs; True when it
        is a sequence header that differs from the one before it (a first one is no change;
        an empty one keeps the one before, as the source's meta cache)."""
        t = msg.type
        if t == AMF0_DATA:
            self.headers[_METADATA] = msg
            return False
        if t == VIDEO and flags & F_COLOR_INFO:
            self.headers[_VIDEO_COLOR] = msg
            return False
        if not flags & F_SEQUENCE_HEADER or flags & F_EMPTY_CONFIG or t not in (AUDIO, VIDEO):
            return False
        kind = _AUDIO_SH if t == AUDIO else _VIDEO_SH
        old = self.headers.get(kind)
        self.headers[kind] = msg
        return old is not None and old.payload != msg.payload

    def _start(self, out: list, reopen: bool, keyframe_first: bool = False) -> None:
        self.open = True
        self.base = None
        self.first = self.last = None
        self.seen_keyframe = False
        self.need_keyframe = self.wait_keyframe or keyframe_first
        out.append(Open(reopen))
        if reopen:  # metadata at 0, the headers at 0 too: the file's first frame sets its clock
            out.extend(Write(self.headers[k], 0) for k in sorted(self.headers))


__all__ = ["DvrPlan", "DvrError", "Open", "Close", "Write", "dvr_path", "is_mp4", "applies", "check_name",
           "SESSION", "SEGMENT"]
