"""MP4 and fMP4 writing (srspy/kernel/mp4.py) from real ffmpeg media, checked by ffprobe and
ffmpeg decoding the files, and box by box where the bytes matter."""

from __future__ import annotations

import struct

import pytest

from helpers.avmedia import decode_errors, flv_messages, hevc_messages, make_bframes_flv, probe_packets
from helpers.media import ffprobe, streams_by_type
from srspy.dvr.recorder import FragmentedMp4Recorder
from srspy.kernel import mp4
from srspy.kernel.frame import FrameError, iter_nalus, parse_audio, parse_video
from srspy.kernel.message import AUDIO, VIDEO, MediaMessage


def boxes(data: bytes, pos: int = 0, end: int | None = None) -> list[tuple[bytes, int, int]]:
    """(type, start, size) of the top-level boxes in data[pos:end]."""
    end = len(data) if end is None else end
    out = []
    while pos + 8 <= end:
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if size == 1:
            size = struct.unpack(">Q", data[pos + 8 : pos + 16])[0]
        out.append((kind, pos, size))
        pos += size
    return out


def find(data: bytes, path: list[bytes]) -> bytes:
    """The first box at ``path`` (container boxes only), with its header."""
    pos, end = 0, len(data)
    for i, kind in enumerate(path):
        for k, start, size in boxes(data, pos, end):
            if k == kind:
                if i == len(path) - 1:
                    return data[start : start + size]
                skip = {b"stsd": 16, b"avc1": 86, b"hvc1": 86, b"mp4a": 36}.get(kind, 8)
                pos, end = start + skip, start + size
                break
        else:
            raise AssertionError(f"no {kind!r} in {path}")
    raise AssertionError(path)


def write_fragmented(msgs, out, timescale=mp4.HLS_TIMESCALE):
    """init + one fragment per video keyframe (per second for audio-only); returns bytes."""
    tracks = mp4.Mp4Tracks()
    pending = []
    for m in msgs:
        got = tracks.on_message(m)
        if got and got[1] is not None:
            pending.append(got)
    frag = mp4.Fragmenter(tracks.tracks, timescale)
    parts = [mp4.init_segment(tracks.tracks, timescale)]
    has_video = tracks.video is not None
    for track, sample in pending:
        cut = sample.key if track.handler == mp4.VIDE else (not has_video and frag.pending_duration() >= 1000)
        if cut and not frag.empty:
            parts.append(frag.fragment(sample.dts))
        frag.add(track, sample)
    parts.append(frag.fragment())
    data = b"".join(parts)
    out.write_bytes(data)
    return data


def write_progressive(msgs, out):
    w = mp4.ProgressiveMp4()
    data = bytearray(w.header())
    for m in msgs:
        data += w.write(m)
    moov, patches = w.finish()
    data += moov
    for at, b in patches:
        data[at : at + len(b)] = b
    out.write_bytes(data)
    return bytes(data), w


def av_frames(msgs):
    """(video frames, audio frames) that carry samples."""
    v = [m for m in msgs if m.type == VIDEO and parse_video(m.payload).kind == 1]
    a = [m for m in msgs if m.type == AUDIO and parse_audio(m.payload).kind == 1]
    return v, a


@pytest.fixture(scope="module")
def av_msgs(short_flv):
    return flv_messages(short_flv)


def test_fragmented_avc_aac_decodes_with_every_frame_and_time(av_msgs, tmp_path):
    path = tmp_path / "f.mp4"
    write_fragmented(av_msgs, path)
    assert decode_errors(path) == ""
    info = streams_by_type(ffprobe(str(path)))
    assert info["video"]["codec_name"] == "h264" and info["video"]["codec_tag_string"] == "avc1"
    assert (info["video"]["width"], info["video"]["height"]) == (640, 360)
    assert info["audio"]["codec_name"] == "aac" and info["audio"]["sample_rate"] == "44100"
    assert info["audio"]["channels"] == 2
    v, a = av_frames(av_msgs)
    pv = probe_packets(path, "v")
    assert len(pv) == len(v) and len(probe_packets(path, "a")) == len(a)
    # Times on the 90 kHz clock equal the FLV timestamps; keyframes stay keyframes.
    for m, p in zip(v, pv):
        f = parse_video(m.payload)
        assert round(float(p["dts_time"]) * 1000) == m.timestamp
        assert round(float(p["pts_time"]) * 1000) == m.timestamp + f.cts
        assert p["flags"].startswith("K") == f.keyframe


def test_fragment_boxes_sequence_and_decode_time(av_msgs):
    tracks = mp4.Mp4Tracks()
    samples = [g for g in map(tracks.on_message, av_msgs) if g and g[1] is not None]
    frag = mp4.Fragmenter(tracks.tracks, 90000, sequence=7)
    video = [(t, s) for t, s in samples if t.handler == mp4.VIDE][:10]
    for t, s in video:
        frag.add(t, s)
    data = frag.fragment(end=video[-1][1].dts + 40)
    assert [b[0] for b in boxes(data)] == [b"moof", b"mdat"]
    assert struct.unpack(">I", find(data, [b"moof", b"mfhd"])[12:16])[0] == 7
    tfdt = find(data, [b"moof", b"traf", b"tfdt"])
    assert tfdt[8] == 1 and struct.unpack(">Q", tfdt[12:20])[0] == video[0][1].dts * 90
    trun = find(data, [b"moof", b"traf", b"trun"])
    count, offset = struct.unpack(">Ii", trun[12:20])
    assert count == 10
    rows = [struct.unpack(">IIIi", trun[20 + 16 * i : 36 + 16 * i]) for i in range(count)]
    assert [r[0] for r in rows] == [40 * 90] * 10  # last duration from ``end``
    assert [r[1] for r in rows] == [len(s.data) for _, s in video]
    assert rows[0][2] == mp4.SYNC_FLAGS and rows[1][2] == mp4.NON_SYNC_FLAGS
    assert data[offset : offset + rows[0][1]] == video[0][1].data  # data_offset points into mdat
    assert frag.empty and frag.sequence == 8 and frag.fragment() == b""


def test_init_segment_boxes(av_msgs):
    tracks = mp4.Mp4Tracks()
    for m in av_msgs[:5]:
        tracks.on_message(m)
    init = mp4.init_segment(tracks.tracks)
    assert [b[0] for b in boxes(init)] == [b"ftyp", b"moov"]
    moov = find(init, [b"moov"])
    assert [b[0] for b in boxes(moov, 8)] == [b"mvhd", b"trak", b"trak", b"mvex"]
    avcc = find(init, [b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsd", b"avc1", b"avcC"])
    assert avcc[8:] == parse_video(next(m for m in av_msgs if m.type == VIDEO).payload).data
    trex = find(init, [b"moov", b"mvex", b"trex"])
    assert struct.unpack(">I", trex[12:16])[0] == 1
    sps = avcc[8:]
    assert tracks.video.codec_string == f"avc1.{sps[1]:02x}{sps[2]:02x}{sps[3]:02x}"
    assert tracks.audio.codec_string == "mp4a.40.2"


def test_fragmented_file_cut_mid_fragment_still_decodes(av_msgs, tmp_path):
    """A recording killed while writing: everything up to the last whole fragment plays.
    Fragments are written whole (moof and mdat in one write), so a crash tears an mdat; a
    torn moof makes ffmpeg 5.1 refuse the file ("corrupted TRUN atom")."""
    path = tmp_path / "cut.mp4"
    data = write_fragmented(av_msgs, path)
    moofs = [start for kind, start, _ in boxes(data) if kind == b"moof"]
    assert len(moofs) >= 4
    # Fragments: the audio frame before the first keyframe, then one per 2 s GOP.
    cut = path.with_name("cut2.mp4")
    moof = boxes(data, moofs[3])[0][2]
    cut.write_bytes(data[: moofs[3] + moof + 100])  # two whole GOPs and a torn third
    packets = probe_packets(cut, "v", check=False)
    v, _ = av_frames(av_msgs)
    whole = [m for m in v if m.timestamp < 4000]  # 2 s GOPs: two fragments hold 4 s
    assert len(packets) >= len(whole)


def test_progressive_avc_aac_tables(av_msgs, tmp_path):
    path = tmp_path / "p.mp4"
    data, w = write_progressive(av_msgs, path)
    assert [b[0] for b in boxes(data)] == [b"ftyp", b"mdat", b"moov"]
    assert decode_errors(path) == ""
    info = ffprobe(str(path), extra=["-count_frames"])
    v, a = av_frames(av_msgs)
    s = streams_by_type(info)
    assert int(s["video"]["nb_frames"]) == len(v) and int(s["audio"]["nb_frames"]) == len(a)
    span = (v[-1].timestamp - v[0].timestamp) / 1000
    assert abs(float(s["video"]["duration"]) - span) <= 0.05
    stss = find(data, [b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stss"])
    keys = [i + 1 for i, m in enumerate(v) if parse_video(m.payload).keyframe]
    n = struct.unpack(">I", stss[12:16])[0]
    assert list(struct.unpack(f">{n}I", stss[16:])) == keys
    mvhd = find(data, [b"moov", b"mvhd"])
    assert struct.unpack(">I", mvhd[28:32])[0] == 1000  # timescale 1000, as SRS
    pv = probe_packets(path, "v")
    assert [p["flags"].startswith("K") for p in pv] == [parse_video(m.payload).keyframe for m in v]


def test_progressive_bframes_keep_composition_times(tmp_path, media_dir):
    msgs = flv_messages(make_bframes_flv(media_dir / "bframes.flv"))
    path = tmp_path / "b.mp4"
    data, _ = write_progressive(msgs, path)
    assert decode_errors(path) == ""
    find(data, [b"moov", b"trak", b"mdia", b"minf", b"stbl", b"ctts"])
    v, _ = av_frames(msgs)
    pv = probe_packets(path, "v")
    assert len(pv) == len(v)
    base = v[0].timestamp
    for m, p in zip(v, pv):
        cts = parse_video(m.payload).cts
        assert round(float(p["dts_time"]) * 1000) == m.timestamp - base
        assert round(float(p["pts_time"]) * 1000) == m.timestamp - base + cts
    assert any(parse_video(m.payload).cts != 40 for m in v)


@pytest.mark.parametrize("layout", ["fragmented", "progressive"])
def test_hevc_aac_in_mp4(layout, tmp_path, media_dir, short_flv):
    msgs = hevc_messages(media_dir, audio_from=short_flv)
    path = tmp_path / f"h-{layout}.mp4"
    if layout == "fragmented":
        write_fragmented(msgs, path)
    else:
        write_progressive(msgs, path)
    assert decode_errors(path) == ""
    info = streams_by_type(ffprobe(str(path), extra=["-count_frames"]))
    assert info["video"]["codec_name"] == "hevc" and info["video"]["codec_tag_string"] == "hvc1"
    assert (info["video"]["width"], info["video"]["height"]) == (320, 240)
    nv = sum(1 for m in msgs if m.type == VIDEO) - 1
    assert int(info["video"]["nb_read_frames"]) == nv
    assert info["audio"]["codec_name"] == "aac"
    tracks = mp4.Mp4Tracks()
    tracks.on_message(msgs[0] if msgs[0].type == VIDEO else next(m for m in msgs if m.type == VIDEO))
    assert tracks.video.codec_string == "hvc1.1.6.L60.90"


def test_hevc_sps_dimensions_with_cropping(media_dir):
    """1280x720 is coded as 1280x720 (a multiple of 8); 350x200 needs a conformance window."""
    for size, want in (("1280x720", (1280, 720)), ("350x200", (350, 200))):
        msgs = hevc_messages(media_dir, seconds=1, size=size)
        t = mp4.Mp4Tracks()
        t.on_message(msgs[0])
        assert (t.video.width, t.video.height) == want


@pytest.mark.parametrize("which", ["audio", "video"])
def test_single_track_files(which, tmp_path, audio_flv, video_flv):
    msgs = flv_messages(audio_flv if which == "audio" else video_flv)
    for layout in ("fragmented", "progressive"):
        path = tmp_path / f"{which}-{layout}.mp4"
        (write_fragmented if layout == "fragmented" else write_progressive)(msgs, path)
        assert decode_errors(path) == ""
        info = streams_by_type(ffprobe(str(path)))
        assert list(info) == [which]


def test_late_track_gets_an_empty_edit(av_msgs, tmp_path):
    """Video starting 500 ms after audio keeps its place on the timeline (elst empty edit)."""
    v, a = av_frames(av_msgs)
    heads = [m for m in av_msgs if m.type in (AUDIO, VIDEO) and m not in v and m not in a]
    late = [m for m in av_msgs if m in a or (m in v and m.timestamp >= 500)]
    first_key = next(i for i, m in enumerate(late) if m.type == VIDEO and parse_video(m.payload).keyframe)
    msgs = heads + [m for i, m in enumerate(late) if m.type == AUDIO or i >= first_key]
    path = tmp_path / "late.mp4"
    data, _ = write_progressive(msgs, path)
    elst = find(data, [b"moov", b"trak", b"edts", b"elst"])
    start = next(m.timestamp for m in msgs if m in v)
    assert struct.unpack(">QqI", elst[16:36]) == (start, -1, 0x10000)
    pv = probe_packets(path, "v")
    assert abs(float(pv[0]["pts_time"]) * 1000 - start) <= 1


def test_co64_past_4gib(av_msgs):
    w = mp4.ProgressiveMp4()
    w.header()
    w.offset = 0x1_0000_0000 - 100  # as if 4 GiB of samples had been written
    for m in av_msgs[:40]:
        w.write(m)
    moov, patches = w.finish()
    assert b"co64" in moov and b"stco" not in moov
    assert patches[0][0] == len(mp4.ftyp(False)) + 8
    assert struct.unpack(">Q", patches[0][1])[0] == w.offset - len(mp4.ftyp(False))


def test_sequence_header_change_mid_file_is_refused(av_msgs, media_dir):
    hevc = hevc_messages(media_dir)
    w = mp4.ProgressiveMp4()
    w.header()
    w.write(hevc[0])  # before the first sample a header may change: the latest wins
    for m in av_msgs[:20]:
        w.write(m)
    with pytest.raises(mp4.Mp4Error, match="changed mid-file"):
        w.write(hevc[0])
    moov, _ = w.finish()
    assert b"avcC" in moov and b"hvcC" not in moov
    rec = FragmentedMp4Recorder()
    for m in av_msgs[:20]:
        rec.write(m, m.timestamp)
    rec.write(av_msgs[1], 900)  # the same header again
    with pytest.raises(mp4.Mp4Error, match="changed mid-file"):
        rec.write(hevc[0], 900)


def test_tracks_change_flag_only_on_real_change(av_msgs):
    t = mp4.Mp4Tracks()
    sh = next(m for m in av_msgs if m.type == VIDEO)
    t.on_message(sh)
    assert t.changed
    t.on_message(sh.copy(timestamp=5000))
    assert not t.changed


def test_bad_inputs_fail_with_a_reason():
    with pytest.raises(mp4.Mp4Error, match="hvcC"):
        mp4.video_track(b"\x01" * 10, 12)
    with pytest.raises(mp4.Mp4Error, match="avcC"):
        mp4.video_track(b"\x01\x64\x00\x1f\xff\xe0", 7)
    with pytest.raises(mp4.Mp4Error, match="not supported"):
        mp4.video_track(b"\x01" * 30, 13)
    with pytest.raises(mp4.Mp4Error, match="AudioSpecificConfig"):
        mp4.audio_track(b"\x12")
    with pytest.raises(mp4.Mp4Error, match="without a track"):
        mp4.init_segment([])
    with pytest.raises(FrameError, match="overruns"):
        list(iter_nalus(b"\x00\x00\x00\x09abc"))
    with pytest.raises(FrameError, match="empty"):
        parse_video(b"")
    assert parse_video(b"\x57\x00") is None  # video info frame: nothing to mux
    assert parse_audio(b"\x2f\xff\xfb")
    w = mp4.ProgressiveMp4()
    w.header()
    w.write(MediaMessage(VIDEO, 0, 1, b"\x27\x01\x00\x00\x00\x00\x00\x00\x01\x09"))  # before any sequence header
    with pytest.raises(mp4.Mp4Error, match="no sample"):
        w.finish()


from hypothesis import given, settings, strategies as st  # noqa: E402


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64), st.sampled_from([b"\x17\x00", b"\x1c\x00", b"\x90hvc1", b"\x17\x01", b"\xaf\x00", b""]))
def test_hostile_bodies_fail_only_with_our_errors(tail, head):
    """Whatever a publisher sends as a sequence header or frame: a value or Mp4Error/FrameError."""
    payload = head + tail
    for kind in (VIDEO, AUDIO):
        try:
            got = mp4.Mp4Tracks().on_message(MediaMessage(kind, 0, 1, payload))
        except (mp4.Mp4Error, FrameError):
            continue
        assert got is None or isinstance(got[0], mp4.Track)
    try:
        list(iter_nalus(payload))
    except FrameError:
        pass
