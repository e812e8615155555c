"""Where HLS segments and parts start and end: SRS's reap rules (app/srs_app_hls.cpp
``SrsHlsController::write_audio/write_video``, as described in the repository's outputs
notes), with three deliberate changes.

SRS's rules, durations in ms from the segment's first decode time:

* a video frame ends the segment when the duration reaches ``hls_fragment * hls_td_ratio``
  and the frame is a keyframe (or ``hls_wait_keyframe off``); the frame opens the next one;
* an audio frame ends it when the duration reaches ``hls_aof_ratio * hls_fragment``,
  keyframe or not (this is also how audio-only streams are cut);
* nothing is cut below 200 ms; a closed segment shorter than 100 ms is not kept (its
  sequence number is used again).

srspy's changes:

* the audio cut waits for the next keyframe while the stream's GOP is at most
  ``hls_aof_ratio * hls_fragment`` (then every segment starts with a keyframe); it fires
  as SRS does once no keyframe came for longer than that;
* a sequence header flags a discontinuity only when its bytes differ from the previous
  one; the segment is then ended at the next keyframe (audio: at once) so that the new
  configuration starts a segment, which carries the flag;
* a timestamp jump (backwards by more than 300 ms, or forwards by more than
  ``JUMP_MS``) ends the segment and flags the next one instead of making it huge.

``ts_floor`` (``hls_ts_floor on``, SRS ``SrsHlsMuxer::generate_ts_filename``): every
segment gets a floor index (:class:`FloorIndex`) for the ``[timestamp]`` of its name, from
the wall clock ``now`` at its opening, and while it is open both cut thresholds move by
``FLOOR_REAP_PERCENT * deviation * hls_fragment``, the deviation being how far the index
ran ahead of (positive) or behind (negative) the clock: segments lengthen while the names
run ahead and shorten while they lag, which keeps the names near floor(now / fragment).

Low-latency parts (``part_duration`` > 0) end before the message that reaches the part
duration, or before the one whose successor would pass it (judged by the longest gap
between messages lately), so a part never exceeds ``part_duration`` (EXT-X-PART-INF's
PART-TARGET) and, but for a segment's last, is rarely shorter than 85% of it.

The segmenter emits events and never builds bytes: :class:`SegmentOpen`,
:class:`Media` (a message for the open segment), :class:`PartClose` (low-latency parts,
when ``part_duration`` > 0), :class:`SegmentClose` and :class:`SequenceHeader`. A writer
turns them into TS (srspy/kernel/ts.py) or fMP4 (srspy/kernel/mp4.py) bytes.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from ..kernel.codec import F_KEYFRAME, F_SEQUENCE_HEADER, audio_flags, video_flags
from ..kernel.message import AUDIO, VIDEO

MIN_REAP_MS = 200
MIN_KEEP_MS = 100
BACKWARDS_MS = 300
JUMP_MS = 60_000
MAX_STEP_MS = 100  # a longer gap between messages is not taken as the stream's frame interval
FLOOR_REAP_PERCENT = 0.3  # hls_ts_floor: one step of deviation moves the cuts by 30% of a fragment
FLOOR_JUMP = 20  # hls_ts_floor: a floor index further ahead of the clock is set back to it


class SegmentOpen(NamedTuple):
    seq: int
    dts: int  # ms, the publisher's clock
    discontinuity: bool
    at: float  # the ``now`` of the message that opened it (for EXT-X-PROGRAM-DATE-TIME)
    floor: int | None = None  # ts_floor: the floor index of its name's [timestamp]


class Media(NamedTuple):
    msg: object
    part: int  # index of the part it belongs to (0 when parts are off)


class PartClose(NamedTuple):
    seq: int
    index: int
    duration: int  # ms
    independent: bool  # its first video frame is a keyframe (or the stream has no video)


class SegmentClose(NamedTuple):
    seq: int
    duration: int  # ms
    keep: bool  # False: shorter than 100 ms, or nothing carried: drop it (its seq is used again)
    carried: bool = True  # it held a message of a kind the writer carries


class SequenceHeader(NamedTuple):
    msg: object
    changed: bool  # its bytes differ from the previous one of the same type


class FloorIndex:
    """The ``[timestamp]`` of ``hls_ts_floor on``: floor(now / fragment) at a segment's
    opening, but one more than the previous segment's, so that names never repeat nor skip
    (the first is the clock's index minus one, as SRS). An index that runs more than
    ``FLOOR_JUMP`` ahead of the clock is set back to the clock's minus one (``jumped``);
    one that lags is never set forward, only the shorter segments of a negative
    ``deviation`` bring it back."""

    __slots__ = ("fragment", "accepted", "deviation", "jumped")

    def __init__(self, fragment: float):
        self.fragment = fragment  # seconds
        self.accepted: int | None = None  # the index of the last segment opened
        self.deviation = 0  # accepted - the clock's index, at the last opening
        self.jumped = False  # the last opening set the index back to the clock

    def next(self, now: float) -> int:
        """The index of a segment opened at ``now`` (seconds of the wall clock)."""
        current = math.floor(now / self.fragment)
        accepted = current - 1 if self.accepted is None else self.accepted + 1
        self.jumped = accepted - current > FLOOR_JUMP
        if self.jumped:
            accepted = current - 1
        self.accepted = accepted
        self.deviation = accepted - current
        return accepted


class Segmenter:
    """``feed(msg, now)`` returns the events a message causes. ``now`` (seconds of the
    wall clock, injected) is recorded as each segment's start for the writer's program
    date time; the cutting itself follows the stream's timestamps, and with ``ts_floor``
    the floor index that ``now`` gives at each opening."""

    def __init__(self, fragment: float = 10.0, td_ratio: float = 1.0, aof_ratio: float = 2.1,
                 wait_keyframe: bool = True, part_duration: float = 0.0, sequence: int = 0, ts_floor: bool = False,
                 carry_audio: bool = True, carry_video: bool = True):
        self.fragment_ms = fragment * 1000
        self.floor = FloorIndex(fragment) if ts_floor else None
        self.floor_ms = 0.0  # ts_floor: how far the open segment's cuts are moved
        # the kinds the writer carries (hls_acodec an / hls_vcodec vn leave one out): the
        # other still decides cuts, but a segment without a carried message is not kept
        self.carry = {AUDIO: carry_audio, VIDEO: carry_video}
        self.open_carried = False
        self.max_td_ms = fragment * td_ratio * 1000
        self.aof_ms = aof_ratio * fragment * 1000
        self.wait_keyframe = wait_keyframe
        self.part_ms = part_duration * 1000
        self.sequence = sequence
        self.sh: dict[int, bytes] = {}
        self.has_video = False
        self.open = False
        self.start_dts = 0
        self.last_dts: int | None = None
        self.last_keyframe: int | None = None
        self.gop_ms = 0  # longest keyframe interval seen
        self.part_index = 0
        self.part_start = 0
        self.part_first_key: bool | None = None  # the part's first video frame was a keyframe
        self.step_ms = 0  # the longest gap between two messages in this part and the last one
        self.last_msg_ts: int | None = None
        self.pending_discontinuity = False
        self.open_discontinuity = False
        self.cut_on: str | None = None  # "keyframe" or "any": a forced cut is pending
        self.opened_at = 0.0

    # ------------------------------------------------------------------ api

    def discontinuity(self) -> None:
        """The next segment starts a discontinuity (the consumer fell behind, or a
        republish continues this playlist)."""
        self.pending_discontinuity = True
        if self.open:
            self.cut_on = "keyframe"

    def close(self) -> list:
        """End the open segment (unpublish): the final, possibly short, segment."""
        out: list = []
        if self.open:
            self._close(out, self.last_dts if self.last_dts is not None else self.start_dts)
        return out

    def feed(self, msg, now: float) -> list:
        out: list = []
        t = msg.type
        if t == VIDEO:
            flags = msg.flags or video_flags(msg.payload)
        elif t == AUDIO:
            flags = msg.flags or audio_flags(msg.payload)
        else:
            return out  # metadata is not carried in segments
        if flags & F_SEQUENCE_HEADER:
            old = self.sh.get(t)
            changed = old is not None and old != msg.payload
            self.sh[t] = msg.payload
            if t == VIDEO:
                self.has_video = True
            if changed:
                self.pending_discontinuity = True
                if self.open and self.cut_on != "any":
                    self.cut_on = "keyframe" if t == VIDEO else "any"
            out.append(SequenceHeader(msg, changed))
            return out
        ts = msg.timestamp
        key = t == VIDEO and bool(flags & F_KEYFRAME)
        if t == VIDEO:
            self.has_video = True
            if key:
                if self.last_keyframe is not None and ts > self.last_keyframe:
                    self.gop_ms = max(self.gop_ms, ts - self.last_keyframe)
                self.last_keyframe = ts
        if self.open and self._jumped(ts):
            self.pending_discontinuity = True
            self._close(out, self.last_dts)
        if self.open and self._should_cut(t, ts, key):
            self._close(out, ts)
        if not self.open:
            self._open(out, ts, now)
        elif self.part_ms and self._part_full(ts):
            out.append(PartClose(self.sequence, self.part_index, ts - self.part_start, self._independent()))
            self.part_index += 1
            self.part_start = ts
            self.part_first_key = None
        if t == VIDEO and self.part_first_key is None:
            self.part_first_key = key
        if self.last_dts is None or ts > self.last_dts:
            self.last_dts = ts
        if self.carry[t]:
            self.open_carried = True
        out.append(Media(msg, self.part_index))
        return out

    # ------------------------------------------------------------------ rules

    def _part_full(self, ts: int) -> bool:
        """The open part ends before the message at ``ts``: it reached the part duration, or
        the message after this one would take it past (parts stay within EXT-X-PART-INF's
        PART-TARGET, as RFC 8216bis 4.4.4.9 asks)."""
        last, self.last_msg_ts = self.last_msg_ts, ts
        if last is not None and 0 < ts - last <= MAX_STEP_MS:
            self.step_ms = max(self.step_ms, ts - last)
        d = ts - self.part_start
        full = d >= self.part_ms or (d > 0 and d + self.step_ms > self.part_ms)
        if full:
            self.step_ms = ts - last if last is not None and 0 < ts - last <= MAX_STEP_MS else 0
        return full

    def _jumped(self, ts: int) -> bool:
        last = self.last_dts
        return last is not None and (ts < last - BACKWARDS_MS or ts > last + JUMP_MS)

    def _should_cut(self, t: int, ts: int, key: bool) -> bool:
        duration = ts - self.start_dts
        if self.cut_on is not None and (key or not self.has_video or self.cut_on == "any"):
            return True
        if duration < MIN_REAP_MS:
            return False
        if t == VIDEO:
            return duration >= self.max_td_ms + self.floor_ms and (key or not self.wait_keyframe)
        aof = self.aof_ms + self.floor_ms
        if duration < aof:
            return False
        if not self.has_video:
            return True
        # srspy: with a GOP within aof_ratio*fragment the keyframe comes soon; wait for it.
        since_key = ts - self.last_keyframe if self.last_keyframe is not None else duration
        return since_key > aof

    def _independent(self) -> bool:
        """A part is independent when its first video frame is a keyframe (audio-only
        streams: always)."""
        return bool(self.part_first_key) if self.has_video else True

    def _open(self, out: list, ts: int, now: float) -> None:
        self.open = True
        self.start_dts = ts
        self.last_dts = ts
        self.part_index = 0
        self.part_start = ts
        self.part_first_key = None
        self.opened_at = now
        index = None
        if self.floor is not None:
            index = self.floor.next(now)
            self.floor_ms = FLOOR_REAP_PERCENT * self.floor.deviation * self.fragment_ms
        out.append(SegmentOpen(self.sequence, ts, self.pending_discontinuity, now, index))
        self.open_discontinuity = self.pending_discontinuity
        self.pending_discontinuity = False
        self.cut_on = None
        self.open_carried = False

    def _close(self, out: list, end: int) -> None:
        duration = max(0, end - self.start_dts)
        if self.part_ms:
            out.append(PartClose(self.sequence, self.part_index, max(0, end - self.part_start), self._independent()))
        keep = duration >= MIN_KEEP_MS and self.open_carried
        if not keep and self.open_discontinuity:
            self.pending_discontinuity = True  # the dropped segment's flag moves on
        out.append(SegmentClose(self.sequence, duration, keep, self.open_carried))
        if keep:
            self.sequence += 1
        self.open = False
