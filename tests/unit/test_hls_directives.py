"""The pure parts of four HLS directives: ``hls_ts_floor`` (srspy/hls/segmenter.py
FloorIndex and the moved cuts, with an injected clock), ``hls_acodec``/``hls_vcodec``
(srspy/kernel/ts.py's expected codecs), ``hls_dts_directly off`` (srspy/hls/timing.py)
and ``hls_on_error`` (srspy/hls/onerror.py)."""

from __future__ import annotations

import m3u8

from srspy.hls.playlist import Playlist, Segment
from srspy.hls.segmenter import FLOOR_JUMP, FloorIndex, Media, SegmentClose, SegmentOpen, Segmenter
from srspy.kernel.message import AUDIO, VIDEO, MediaMessage

VSH = b"\x17\x00\x00\x00\x00\x01\x64\x00\x1f\xff\xe1\x00\x04\x67\x64\x00\x1f\x01\x00\x04\x68\xee\x3c\x80"
ASH = b"\xaf\x00\x12\x10"


def v(ts, key=False):
    return MediaMessage(VIDEO, ts, 1, (b"\x17" if key else b"\x27") + b"\x01\x00\x00\x00" + b"\x00\x00\x00\x01\x65")


def a(ts):
    return MediaMessage(AUDIO, ts, 1, b"\xaf\x01\x21")


def video_stream(seconds, gop_ms):
    return [MediaMessage(VIDEO, 0, 1, VSH)] + [v(t, key=t % gop_ms == 0) for t in range(0, seconds * 1000, 50)]


def feed(seg, msgs, clock):
    """Every event of ``msgs``, the clock giving each message's wall-clock ``now``."""
    out = []
    for m in msgs:
        out += seg.feed(m, clock(m))
    return out + seg.close()


def opened(events):
    return [(e.dts, e.floor) for e in events if isinstance(e, SegmentOpen)]


def durations(events):
    return [e.duration for e in events if isinstance(e, SegmentClose)]


# ---------------------------------------------------------------- hls_ts_floor

def test_floor_index_counts_one_per_segment_from_the_clock():
    f = FloorIndex(2.0)
    assert f.next(1000.5) == 499 and f.deviation == -1  # the first: the clock's index minus one
    assert f.next(1002.2) == 500 and f.deviation == -1
    assert f.next(1003.0) == 501 and f.deviation == 0  # a short segment: the index catches up
    assert f.next(1003.5) == 502 and f.deviation == 1  # and runs ahead
    assert f.next(1010.0) == 503 and f.deviation == -2  # a long one: it lags, never set forward
    # always one more, however far it runs ahead, until more than FLOOR_JUMP: then back to the clock
    got = []
    for _ in range(FLOOR_JUMP + 3):
        got.append((f.next(1010.0), f.jumped))
    # 503 lags the clock's 505 by 2: 22 more segments at the same instant reach 525, FLOOR_JUMP
    # ahead; the next would be 21 ahead, so it is set back to the clock's index minus one
    assert got[:-1] == [(i, False) for i in range(504, 526)]
    assert got[-1] == (504, True) and f.deviation == -1
    assert f.next(1012.0) == 505 and not f.jumped


def test_floor_off_names_nothing_and_moves_nothing():
    events = feed(Segmenter(fragment=2), video_stream(10, 500), lambda m: 1000 + m.timestamp / 1000)
    assert [f for _, f in opened(events)] == [None] * 5
    assert durations(events)[:-1] == [2000, 2000, 2000, 2000]


def test_floor_with_the_clock_shortens_the_first_segment_then_follows_the_fragment():
    """The clock goes with the stream (1 s of stream per second): the first segment's index
    lags by one, so its cut comes 30% of a fragment early (1.4 s -> the keyframe at 1.5 s);
    from then on the index matches the clock and the cuts fall at the fragment."""
    events = feed(Segmenter(fragment=2, ts_floor=True), video_stream(10, 500), lambda m: 1000 + m.timestamp / 1000)
    assert opened(events) == [(0, 499), (1500, 500), (3500, 501), (5500, 502), (7500, 503), (9500, 504)]
    assert durations(events)[:-1] == [1500, 2000, 2000, 2000, 2000]


def test_floor_ahead_of_a_stalled_clock_lengthens_the_segments():
    """A stream pushed faster than the clock (here the clock stands still): each segment's
    index runs one further ahead, and each cut comes 30% of a fragment later than the last."""
    events = feed(Segmenter(fragment=2, ts_floor=True), video_stream(14, 500), lambda m: 1000.0)
    assert opened(events) == [(0, 499), (1500, 500), (3500, 501), (6500, 502), (10000, 503)]
    # thresholds 1.4 s, 2.0 s, 2.6 s, 3.2 s -> the next keyframe (every 0.5 s)
    assert durations(events)[:-1] == [1500, 2000, 3000, 3500]


def test_floor_moves_the_audio_only_cut_too():
    msgs = [MediaMessage(AUDIO, 0, 1, ASH)] + [a(t) for t in range(0, 12000, 23)]
    events = feed(Segmenter(fragment=2, ts_floor=True), msgs, lambda m: 1000.0)
    # aof 4.2 s: first 4.2 - 0.6 = 3.6 s (-> 3611 ms, audio every 23 ms), then 4.2 s
    assert durations(events)[:2] == [3611, 4209]
    assert all(isinstance(e.msg, MediaMessage) for e in events if isinstance(e, Media))


def test_a_segment_longer_than_the_target_raises_it():
    pl = Playlist(window=60, td=2)
    pl.add(Segment(0, 2000, "s-0.ts"))
    assert m3u8.loads(pl.text()).target_duration == 2
    pl.add(Segment(1, 3200, "s-1.ts"))
    p = m3u8.loads(pl.text())
    assert p.target_duration == 3 and all(round(s.duration) <= p.target_duration for s in p.segments)
    pl.add(Segment(2, 2000, "s-2.ts"))
    assert m3u8.loads(pl.text()).target_duration == 3  # never lowered
