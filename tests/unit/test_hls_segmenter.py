"""HLS segment and part cutting (srspy/hls/segmenter.py): SRS's reap rules and srspy's
changes, on synthetic streams and on an ffmpeg file; an fMP4 HLS stream built from the
events (srspy/kernel/mp4.py) is played back by ffmpeg from its playlist."""

from __future__ import annotations

import m3u8

from helpers.avmedia import decode_errors, flv_messages, probe_packets
from helpers.hlsmsgs import ASH, VSH, a, v
from srspy.hls.playlist import Part, Playlist, Segment, target_duration
from srspy.hls.segmenter import Media, PartClose, SegmentClose, SegmentOpen, Segmenter, SequenceHeader
from srspy.kernel import mp4
from srspy.kernel.message import AUDIO, VIDEO, MediaMessage


def stream(seconds, gop_ms=2000, fps=25, audio=True, video=True, start=0):
    """Headers, then A/V interleaved by time: video every 1000/fps ms, audio every 23 ms."""
    out = []
    if video:
        out.append(MediaMessage(VIDEO, start, 1, VSH))
    if audio:
        out.append(MediaMessage(AUDIO, start, 1, ASH))
    events = []
    if video:
        step = 1000 // fps
        events += [(t, 0, v(t, key=(t - start) % gop_ms == 0)) for t in range(start, start + seconds * 1000, step)]
    if audio:
        events += [(t, 1, a(t)) for t in range(start, start + seconds * 1000, 23)]
    return out + [m for _, _, m in sorted(events, key=lambda e: (e[0], e[1]))]


def run(seg, msgs, now=0.0):
    out = []
    for m in msgs:
        out += seg.feed(m, now)
    return out + seg.close()


def segments(events):
    """[(seq, discontinuity, first media msg, duration, keep)] per segment."""
    out, cur = [], None
    for e in events:
        if isinstance(e, SegmentOpen):
            cur = [e.seq, e.discontinuity, None, None, None]
        elif isinstance(e, Media) and cur[2] is None:
            cur[2] = e.msg
        elif isinstance(e, SegmentClose):
            cur[3], cur[4] = e.duration, e.keep
            out.append(tuple(cur))
    return out


def is_key(m):
    return m.type == VIDEO and m.payload[0] >> 4 == 1


def test_video_cut_at_first_keyframe_after_max_td():
    msgs = stream(20, gop_ms=2000)
    segs = segments(run(Segmenter(fragment=5), msgs))
    # keyframes every 2 s, max_td 5 s: cuts at 6, 12, 18; the last ends at its last frame.
    assert [s[3] for s in segs] == [6000, 6000, 6000, msgs[-1].timestamp - 18000]
    assert all(is_key(s[2]) for s in segs)
    assert [s[0] for s in segs] == [0, 1, 2, 3]
    assert not any(s[1] for s in segs)


def test_td_ratio_scales_the_video_threshold():
    segs = segments(run(Segmenter(fragment=2, td_ratio=2.0), stream(12, gop_ms=1000)))
    assert [s[3] for s in segs[:-1]] == [4000, 4000]


def test_long_gop_audio_cuts_mid_gop_as_srs():
    """GOP 30 s > aof_ratio*fragment (21 s): the audio cut fires at 21 s, mid-GOP."""
    segs = segments(run(Segmenter(fragment=10, aof_ratio=2.1), stream(40, gop_ms=30000, fps=5)))
    assert segs[0][3] >= 21000 and segs[0][3] < 21100
    assert segs[1][2].type == AUDIO  # the next segment starts with audio, no keyframe
    assert len(segs) == 2  # the keyframe at 30 s comes 9 s into it: below max_td, no cut


def test_gop_within_aof_waits_for_the_keyframe():
    """Keyframes at 0, 3 and 10 s, fragment 4 (aof 2.1 -> 8.4 s): SRS cuts on audio at
    8.4 s, mid-GOP; srspy's GOP (7 s) is within 8.4 s, so it waits for the keyframe at 10 s."""
    keys = {0, 3000, 10000, 14000}
    msgs = [m for m in stream(16, gop_ms=1000, fps=5) if m.type == AUDIO or m.payload[1] == 0
            or not is_key(m) or m.timestamp in keys]
    msgs = [v(m.timestamp, key=m.timestamp in keys) if m.type == VIDEO and m.payload[1] == 1 else m for m in msgs]
    segs = segments(run(Segmenter(fragment=4, aof_ratio=2.1), msgs))
    assert [s[3] for s in segs[:2]] == [10000, 4000]
    assert all(is_key(s[2]) for s in segs)


def test_wait_keyframe_off_cuts_on_any_frame():
    segs = segments(run(Segmenter(fragment=3, wait_keyframe=False), stream(10, gop_ms=10000, audio=False)))
    assert [s[3] for s in segs[:3]] == [3000, 3000, 3000]
    assert not is_key(segs[1][2])


def test_audio_only_reaps_by_aof_ratio():
    segs = segments(run(Segmenter(fragment=2, aof_ratio=2.0), stream(13, video=False)))
    durations = [s[3] for s in segs[:-1]]
    assert all(4000 <= d < 4023 for d in durations) and len(durations) == 3
    assert all(s[2].type == AUDIO for s in segs)


def test_video_only_cuts_on_keyframes():
    segs = segments(run(Segmenter(fragment=2), stream(9, gop_ms=3000, audio=False)))
    assert [s[3] for s in segs[:-1]] == [3000, 3000]


def test_discontinuity_only_when_a_header_really_changes():
    seg = Segmenter(fragment=2)
    msgs = stream(5)
    events = run(seg, msgs[:60])
    same = [MediaMessage(VIDEO, 2400, 1, VSH), MediaMessage(AUDIO, 2400, 1, ASH)]
    events = []
    for m in msgs[:100]:
        events += seg.feed(m, 0)
    for m in same:
        events += seg.feed(m, 0)
    shs = [e for e in events if isinstance(e, SequenceHeader)]
    assert [e.changed for e in shs] == [False, False, False, False]
    # A new SPS: the current segment ends at the next keyframe, the new one is flagged.
    events = seg.feed(MediaMessage(VIDEO, 2500, 1, VSH + b"\x01"), 0)
    assert events[0].changed
    events = seg.feed(a(2510), 0) + seg.feed(v(2520), 0)
    assert not any(isinstance(e, SegmentOpen) for e in events)
    events = seg.feed(v(2560, key=True), 0)
    opens = [e for e in events if isinstance(e, SegmentOpen)]
    assert len(opens) == 1 and opens[0].discontinuity and opens[0].dts == 2560


def test_audio_header_change_cuts_at_once():
    seg = Segmenter(fragment=2)
    for m in stream(1):
        seg.feed(m, 0)
    seg.feed(MediaMessage(AUDIO, 1000, 1, b"\xaf\x00\x11\x90"), 0)
    events = seg.feed(a(1010), 0)
    assert isinstance(events[0], SegmentClose) and isinstance(events[1], SegmentOpen) and events[1].discontinuity


def test_discontinuity_call_and_timestamp_jump():
    seg = Segmenter(fragment=2)
    for m in stream(1):
        seg.feed(m, 0)
    seg.discontinuity()  # consumer fell behind
    events = seg.feed(v(1100, key=True), 0)
    assert [type(e) for e in events] == [SegmentClose, SegmentOpen, Media] and events[1].discontinuity
    # The encoder restarts its clock without a republish: cut and flag, no huge segment.
    events = seg.feed(v(5, key=True), 0)
    assert isinstance(events[0], SegmentClose) and events[1].discontinuity and events[1].dts == 5


def test_short_segment_is_dropped_and_seq_reused():
    seg = Segmenter(fragment=2)
    events = run(seg, stream(2) + [v(2040, key=True)] + [a(2050)])
    closes = [e for e in events if isinstance(e, SegmentClose)]
    assert closes[-1].keep is False and closes[-1].seq == 1
    assert seg.sequence == 1


def test_parts_every_part_duration_with_independent_flags():
    seg = Segmenter(fragment=2, part_duration=0.2)
    events = run(seg, stream(6, gop_ms=1000))
    parts = [e for e in events if isinstance(e, PartClose)]
    closes = [e for e in events if isinstance(e, SegmentClose)]
    for c in closes[:-1]:
        mine = [p for p in parts if p.seq == c.seq]
        assert sum(p.duration for p in mine) == c.duration
        assert mine[0].independent and [p.index for p in mine] == list(range(len(mine)))
        # within PART-TARGET (200 ms), and at least 85% of it but for a segment's last part
        assert all(170 <= p.duration <= 200 for p in mine[:-1]) and mine[-1].duration <= 200, mine
    # a part is independent exactly when its first video frame is a keyframe
    first_video: dict = {}
    seq = None
    for e in events:
        if isinstance(e, SegmentOpen):
            seq = e.seq
        elif isinstance(e, Media) and e.msg.type == VIDEO:
            first_video.setdefault((seq, e.part), is_key(e.msg))
    assert [p.independent for p in parts] == [first_video[(p.seq, p.index)] for p in parts]
    assert any(not p.independent for p in parts) and all(p.independent for p in parts if p.index == 0)


def test_fmp4_hls_from_events_plays_in_ffmpeg(tmp_path, short_flv):
    """Segmenter events -> fMP4 init + .m4s files + playlist; ffmpeg reads the m3u8 and
    gets every frame, with the FLV timestamps on the 90 kHz clock."""
    msgs = flv_messages(short_flv)
    seg = Segmenter(fragment=2)
    tracks = mp4.Mp4Tracks()
    frag = None
    pl = None
    names = []
    for m in msgs + [None]:
        events = seg.close() if m is None else seg.feed(m, 0)
        for e in events:
            if isinstance(e, SequenceHeader):
                tracks.on_message(e.msg)
            elif isinstance(e, SegmentOpen):
                if frag is None:
                    frag = mp4.Fragmenter(tracks.tracks, mp4.HLS_TIMESCALE)
                    (tmp_path / "init.mp4").write_bytes(mp4.init_segment(tracks.tracks))
                start = e.dts
            elif isinstance(e, Media):
                got = tracks.on_message(e.msg)
                if got and got[1] is not None:
                    frag.add(*got)
            elif isinstance(e, SegmentClose) and e.keep:
                name = f"s-{e.seq}.m4s"
                (tmp_path / name).write_bytes(frag.fragment(start + e.duration))
                if pl is None:
                    pl = Playlist(window=60, td=target_duration(2, 1.0, seg.gop_ms, e.duration), map_uri="init.mp4")
                pl.add(Segment(e.seq, e.duration, name))
                names.append(name)
    # SRS never ends a live playlist; ENDLIST here lets ffmpeg read it as a whole.
    (tmp_path / "s.m3u8").write_text(pl.text() + "#EXT-X-ENDLIST\n")
    parsed = m3u8.loads(pl.text())
    assert parsed.version == 6 and parsed.target_duration == 2 and len(parsed.segments) == len(names) == 3
    assert parsed.segment_map[0].uri == "init.mp4"
    assert decode_errors(tmp_path / "s.m3u8") == ""
    video = [m for m in msgs if m.type == VIDEO and m.payload[1] == 1]
    packets = probe_packets(tmp_path / "s.m3u8", "v")
    assert len(packets) == len(video)
    assert [round(float(p["dts_time"]) * 1000) for p in packets] == [m.timestamp for m in video]


def test_ll_hls_fmp4_parts_concatenate_into_playable_segments(tmp_path, short_flv):
    """Each part is one moof+mdat; a segment is its parts end to end. The playlist lists
    the parts with INDEPENDENT on keyframe parts; ffmpeg plays the segments."""
    msgs = flv_messages(short_flv)
    seg = Segmenter(fragment=2, part_duration=0.5)
    tracks = mp4.Mp4Tracks()
    frag = pl = None
    parts: list[bytes] = []
    listed: list[Part] = []
    clock = 1700000000.0
    for m in msgs + [None]:
        events = seg.close() if m is None else seg.feed(m, clock + m.timestamp / 1000)
        for e in events:
            if isinstance(e, SequenceHeader):
                tracks.on_message(e.msg)
            elif isinstance(e, SegmentOpen):
                if frag is None:
                    frag = mp4.Fragmenter(tracks.tracks)
                    (tmp_path / "init.mp4").write_bytes(mp4.init_segment(tracks.tracks))
                    pl = Playlist(window=60, td=2, map_uri="init.mp4", part_target=0.5)
                opened = e
            elif isinstance(e, Media):
                got = tracks.on_message(e.msg)
                if got and got[1] is not None:
                    frag.add(*got)
            elif isinstance(e, PartClose):
                data = frag.fragment(opened.dts + sum(p.duration for p in listed) + e.duration)
                assert data[4:8] == b"moof"
                name = f"s-{e.seq}.{e.index}.m4s"
                (tmp_path / name).write_bytes(data)
                parts.append(data)
                listed.append(Part(name, e.duration, e.independent))
                pl.add_part(listed[-1], preload=f"s-{e.seq}.{e.index + 1}.m4s")
            elif isinstance(e, SegmentClose):
                (tmp_path / f"s-{e.seq}.m4s").write_bytes(b"".join(parts))
                pl.add(Segment(e.seq, e.duration, f"s-{e.seq}.m4s", parts=listed, date=opened.at))
                parts, listed = [], []
    text = pl.text()
    p = m3u8.loads(text)
    assert p.version == 6 and float(p.part_inf.part_target) == 0.5
    assert all(s.parts and s.parts[0].independent == "YES" for s in p.segments if s.uri)
    # 2 s segments of parts within the 0.5 s PART-TARGET, each but the last at least 85% of it
    for s in p.segments[:-1]:
        assert 4 <= len(s.parts) <= 5 and all(x.duration <= 0.5 for x in s.parts), s.parts
        assert all(x.duration >= 0.425 for x in s.parts[:-1]), [x.duration for x in s.parts]
    assert p.segments[0].program_date_time.timestamp() == 1700000000
    (tmp_path / "s.m3u8").write_text(text + "#EXT-X-ENDLIST\n")
    assert decode_errors(tmp_path / "s.m3u8") == ""
    video = [m for m in msgs if m.type == VIDEO and m.payload[1] == 1]
    assert len(probe_packets(tmp_path / "s.m3u8", "v")) == len(video)
