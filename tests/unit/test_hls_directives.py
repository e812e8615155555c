"""The pure parts of four HLS directives: ``hls_ts_floor`` (srspy/hls/segmenter.py
FloorIndex and the moved cuts, with an injected clock), ``hls_acodec``/``hls_vcodec``
(srspy/kernel/ts.py's expected codecs), ``hls_dts_directly off`` (srspy/hls/timing.py)
and ``hls_on_error`` (srspy/hls/onerror.py)."""

from __future__ import annotations

import m3u8

from helpers.hlsmsgs import ASH, VSH, a, v
from helpers.tsparse import packets, pes_dts, section
from srspy.errors import HlsDecodeError
from srspy.hls.onerror import KICK, SKIP, STOP, FrameCheck, on_error
from srspy.hls.playlist import Playlist, Segment, target_duration
from srspy.hls.segmenter import FLOOR_JUMP, FLOOR_REAP_PERCENT, FloorIndex, Media, SegmentClose, SegmentOpen, Segmenter
from srspy.hls.timing import AudioDtsCounter, samples_per_frame
from srspy.hls.tracks import announced_tracks
from srspy.kernel import amf0
from srspy.kernel.message import AUDIO, VIDEO, MediaMessage
from srspy.kernel.ts import AAC_PID, MP3_PID, ST_AAC, ST_H264, ST_MP3, VIDEO_PID, TsMuxer, nalus_ok, pmt_section


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


def test_the_target_duration_stays_for_the_publish():
    """RFC 8216 6.2.1: EXT-X-TARGETDURATION never changes; a longer segment later (a GOP
    that grew) is listed under it, as SRS lists it."""
    pl = Playlist(window=60, td=2)
    for seq, ms in enumerate((2000, 3200, 2000)):
        pl.add(Segment(seq, ms, f"s-{seq}.ts"))
        assert m3u8.loads(pl.text()).target_duration == 2


def test_hls_ts_floor_widens_the_target_by_the_cut_margin():
    assert target_duration(2, 1.0) == 2
    assert target_duration(2, 1.0, margin=FLOOR_REAP_PERCENT) == 3  # cuts up to 30 % of a fragment later
    assert target_duration(10, 1.0, margin=FLOOR_REAP_PERCENT) == 13


# ---------------------------------------------------------------- hls_acodec / hls_vcodec

AVC_SH = bytes([0x17, 0, 0, 0, 0]) + bytes.fromhex("0164001effe10004" "6764001e" "010004" "68ebecb2")
AVC_KEY = bytes([0x17, 1, 0, 0, 0, 0, 0, 0, 2, 0x65, 0x88])
MP3 = bytes([0x2F, 0xFF, 0xFB, 0x90, 0x64]) + bytes(40)
AAC_SH = bytes([0xAF, 0, 0x12, 0x10])
AAC = bytes([0xAF, 1, 1, 2, 3])


def pmts(data: bytes) -> list[bytes]:
    """The distinct PMT sections of a TS, in order."""
    out = []
    for p in packets(data):
        if p.pid == 0x1001 and (not out or out[-1] != section(p)):
            out.append(section(p))
    return out


def mux(m: TsMuxer, msgs) -> bytes:
    return b"".join(m.mux(MediaMessage(t, ts, 1, p)) for t, ts, p in msgs)


MP3_AFTER_VIDEO = [(VIDEO, 0, AVC_SH), (VIDEO, 0, AVC_KEY), (AUDIO, 10, MP3), (AUDIO, 36, MP3)]


def test_without_expected_codecs_the_pmt_lists_what_has_shown():
    assert pmts(mux(TsMuxer(), MP3_AFTER_VIDEO)) == [
        pmt_section([(ST_H264, VIDEO_PID)], VIDEO_PID, 0),
        pmt_section([(ST_MP3, MP3_PID), (ST_H264, VIDEO_PID)], VIDEO_PID, 1)]


def test_an_expected_codec_is_listed_before_the_track_shows():
    m = TsMuxer()
    m.expect("MP3", "H264")  # hls_acodec mp3, onMetaData announces both
    assert pmts(mux(m, MP3_AFTER_VIDEO)) == [pmt_section([(ST_MP3, MP3_PID), (ST_H264, VIDEO_PID)], VIDEO_PID, 0)]
    # the codec a track reveals replaces the expected one: hls_acodec aac, MP3 shows
    m = TsMuxer()
    m.expect("AAC", "H264")
    assert pmts(mux(m, MP3_AFTER_VIDEO)) == [
        pmt_section([(ST_AAC, AAC_PID), (ST_H264, VIDEO_PID)], VIDEO_PID, 0),
        pmt_section([(ST_MP3, MP3_PID), (ST_H264, VIDEO_PID)], VIDEO_PID, 1)]


def test_an_expected_track_that_never_shows_is_dropped_and_pcr_moves():
    m = TsMuxer()
    m.expect(None, "H264")  # onMetaData said video, none comes
    first = mux(m, [(AUDIO, 0, AAC_SH), (AUDIO, 0, AAC), (AUDIO, 23, AAC), (AUDIO, 46, AAC)])
    assert pmts(first) == [pmt_section([(ST_AAC, AAC_PID), (ST_H264, VIDEO_PID)], VIDEO_PID, 0)]
    assert any(p.pid == VIDEO_PID and p.afc == 2 and p.pcr is not None for p in packets(first))  # PCR-only
    m.expect(None, None)  # the second segment: left out
    later = mux(m, [(AUDIO, 69, AAC), (AUDIO, 92, AAC)])
    assert pmts(later) == [pmt_section([(ST_AAC, AAC_PID)], AAC_PID, 1)]
    assert not [p for p in packets(later) if p.pid == VIDEO_PID]


def test_a_kind_left_out_is_never_listed_nor_carried():
    m = TsMuxer(has_video=False)  # hls_vcodec vn
    m.expect("AAC", "H264")
    data = mux(m, [(VIDEO, 0, AVC_SH), (AUDIO, 0, AAC_SH), (VIDEO, 0, AVC_KEY), (AUDIO, 0, AAC), (AUDIO, 23, AAC)])
    assert pmts(data) == [pmt_section([(ST_AAC, AAC_PID)], AAC_PID, 0)]
    assert {p.pid for p in packets(data)} == {0, 0x1001, AAC_PID}
    m = TsMuxer(has_audio=False)  # hls_acodec an
    data = mux(m, [(VIDEO, 0, AVC_SH), (AUDIO, 0, AAC_SH), (VIDEO, 0, AVC_KEY), (AUDIO, 0, AAC)])
    assert pmts(data) == [pmt_section([(ST_H264, VIDEO_PID)], VIDEO_PID, 0)]
    assert {p.pid for p in packets(data)} == {0, 0x1001, VIDEO_PID}


def test_segments_cut_by_a_track_left_out_and_kept_only_with_media():
    av = [MediaMessage(VIDEO, 0, 1, VSH), MediaMessage(AUDIO, 0, 1, ASH)]
    av += sorted([v(t, key=t % 1000 == 0) for t in range(0, 6000, 40)] + [a(t) for t in range(0, 6000, 23)],
                 key=lambda m: (m.timestamp, m.type == AUDIO))
    both = feed(Segmenter(fragment=2), av, lambda m: 0.0)
    no_video = feed(Segmenter(fragment=2, carry_video=False), av, lambda m: 0.0)
    assert durations(no_video) == durations(both) == [2000, 2000, 1980]  # the video's keyframes cut
    assert all(e.keep and e.carried for e in no_video if isinstance(e, SegmentClose))
    audio_only = [MediaMessage(AUDIO, 0, 1, ASH)] + [a(t) for t in range(0, 12000, 23)]
    closes = [e for e in feed(Segmenter(fragment=2, carry_audio=False), audio_only, lambda m: 0.0)
              if isinstance(e, SegmentClose)]
    assert closes and all(not e.keep and not e.carried and e.seq == 0 for e in closes)  # the number is used again


def test_onmetadata_announces_tracks():
    assert announced_tracks(amf0.encode_all("onMetaData", {"audiocodecid": 10.0, "videocodecid": 7.0})) == (True, True)
    assert announced_tracks(amf0.encode_all("@setDataFrame", "onMetaData", {"audiocodecid": 2.0})) == (True, False)
    assert announced_tracks(amf0.encode_all("onMetaData", {"videocodecid": "avc1", "audiocodecid": 0.0})) == (False, True)
    assert announced_tracks(amf0.encode_all("onCuePoint", {"audiocodecid": 10.0})) == (False, False)
    assert announced_tracks(b"\x02\x00\x0aonMeta") == (False, False)  # truncated AMF0


# ---------------------------------------------------------------- hls_dts_directly off

def test_audio_dts_from_sample_counts():
    """AAC at 44.1 kHz with jittery 23/24 ms timestamps gets DTS on the exact 1024-sample
    grid, from the first frame's timestamp; a timestamp going backwards starts again there;
    a 43 ms step is one 2048-sample guess; two frames at one timestamp share a DTS."""
    c = AudioDtsCounter()
    stamps = [1000 + (i * 1024 * 1000) // 44100 for i in range(50)]
    assert {b - a for a, b in zip(stamps, stamps[1:])} == {23, 24}
    dts = [c.dts(t, 44100) for t in stamps]
    assert dts == [90000 + 90000 * 1024 * i // 44100 for i in range(50)]
    assert dts != [t * 90 for t in stamps]
    assert c.dts(500, 44100) == 45000
    assert c.dts(543, 44100) == 45000 + 90000 * 2048 // 44100
    assert c.dts(543, 44100) == 45000 + 90000 * 2048 // 44100
    assert [samples_per_frame(g) for g in (0, 1, 959, 960, 1535, 1536, 3071, 3072)] == [0, 960, 960, 1024, 1024, 2048,
                                                                                        2048, 4096]


def test_ts_audio_pes_on_the_sample_grid_at_the_configs_rate():
    """The TS muxer with a counter: AAC PES carry the counted DTS (at the AudioSpecificConfig's
    rate, 48 kHz here: 1920 ticks per frame); MP3 and video keep timestamp x 90."""
    asc_48k = bytes([0xAF, 0, 0x11, 0x90])  # AAC-LC, 48 kHz, stereo
    stamps = [(i * 1024 * 1000) // 48000 for i in range(20)]  # 0, 21, 42, 64, ...
    for counter, expected in ((AudioDtsCounter(), [1920 * i for i in range(20)]), (None, [t * 90 for t in stamps])):
        m = TsMuxer(audio_dts=counter)
        data = mux(m, [(VIDEO, 0, AVC_SH), (AUDIO, 0, asc_48k), (VIDEO, 0, AVC_KEY)] + [(AUDIO, t, AAC) for t in stamps])
        got = [pes_dts(p.payload) for p in packets(data) if p.pid == AAC_PID and p.pusi]
        assert got == expected
        assert [pes_dts(p.payload) for p in packets(data) if p.pid == VIDEO_PID and p.pusi] == [0]
    m = TsMuxer(audio_dts=AudioDtsCounter())
    data = mux(m, [(AUDIO, t, MP3) for t in (0, 26, 52)])
    assert [pes_dts(p.payload) for p in packets(data) if p.pid == MP3_PID and p.pusi] == [0, 26 * 90, 52 * 90]


# ---------------------------------------------------------------- hls_on_error

AVC_AS_FRAME = AVC_SH[:1] + b"\x01" + AVC_SH[2:]  # the sequence header again, flagged as a frame


def refused(check: FrameCheck, kind: int, payload: bytes):
    """The HlsDecodeError ``check`` raises for a message, or None."""
    try:
        check.check(MediaMessage(kind, 0, 1, payload))
    except HlsDecodeError as e:
        assert e.code == 3001
        return e
    return None


def test_nal_units_read_length_prefixed_or_annexb():
    assert nalus_ok(b"\x00\x00\x00\x02\x65\x88\x00\x00\x00\x01\x41", 4)
    assert nalus_ok(b"\x00\x02\x65\x88", 2)
    assert nalus_ok(b"\x00\x00\x00\x01\x65\x88", 2)  # Annex-B
    assert not nalus_ok(b"\x00\x00\x00\x09\x65\x88", 4)  # longer than the frame
    assert not nalus_ok(b"\x01\x64\x00\x1e\xff\xe1", 4)  # an avcC record


def test_frame_check_refuses_what_hls_cannot_decode():
    c = FrameCheck()
    assert refused(c, VIDEO, AVC_SH) is None and c.sh_size[VIDEO] == len(AVC_SH) and c.length_size == 4
    assert refused(c, VIDEO, AVC_KEY) is None
    assert refused(c, VIDEO, bytes([0x27, 1, 0, 0, 0, 0, 0, 0, 1, 0x41])) is None
    e = refused(c, VIDEO, AVC_AS_FRAME)
    assert e is not None and e.like_sequence_header
    e = refused(c, VIDEO, bytes([0x27, 1, 0, 0, 0]) + b"x" * 40)
    assert e is not None and not e.like_sequence_header
    assert refused(c, VIDEO, b"\x17\x01") is not None  # the headers end early
    assert refused(c, VIDEO, bytes([0x27, 1, 0, 0, 0])) is None  # an empty frame: nothing to decode
    assert refused(c, VIDEO, b"\x22" + b"x" * 40) is None  # not HLS's codec (Sorenson H.263): left out, no error
    # a 2-byte NALU length from the sequence header
    c.check(MediaMessage(VIDEO, 0, 1, AVC_SH[:9] + bytes([0xFD]) + AVC_SH[10:]))
    assert c.length_size == 2 and refused(c, VIDEO, bytes([0x17, 1, 0, 0, 0, 0, 2, 0x65, 0x88])) is None
    assert refused(c, AUDIO, AAC_SH) is None and c.sh_size[AUDIO] == 4
    assert refused(c, AUDIO, AAC) is None and refused(c, AUDIO, MP3) is None
    assert refused(c, AUDIO, b"\xaf") is not None  # AAC without its packet type
    assert refused(c, AUDIO, b"\x6f" + b"x" * 10) is None  # Nellymoser: not HLS's


def test_hls_on_error_decides_as_srs():
    like = HlsDecodeError("x", like_sequence_header=True)
    other = HlsDecodeError("x")
    disk = OSError(28, "No space left on device")
    assert [on_error("ignore", e) for e in (like, other, disk)] == [STOP, STOP, STOP]
    assert [on_error("continue", e) for e in (like, other, disk)] == [SKIP, KICK, KICK]
    assert [on_error("disconnect", e) for e in (like, other, disk)] == [KICK, KICK, KICK]
