"""Enhanced RTMP video/audio tag parsing and codec info (srspy/kernel/codec.py): tags
written by a current FFmpeg (hvc1, av01, vp09, Opus), hand-built Multitrack/ModEx/unknown
FourCC tags, truncations and random bytes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from helpers.media import make_enhanced_flv
from srspy.kernel import codec
from srspy.kernel.codec import F_COLOR_INFO, F_EMPTY_CONFIG, F_KEYFRAME, F_SEQUENCE_HEADER
from srspy.kernel.flv import FlvDecoder
from srspy.kernel.message import AUDIO, VIDEO


def read(path):
    with open(path, "rb") as f:
        return FlvDecoder().feed(f.read())


@pytest.fixture(scope="module", params=[("hevc", "opus", "H265", b"hvc1"), ("av1", "opus", "AV1", b"av01"), ("vp9", None, "VP9", b"vp09")])
def enhanced(request, media_dir):
    video, audio, name, fourcc = request.param
    path = make_enhanced_flv(media_dir / f"{video}-{audio}-352x288-2s.flv", 2, video=video, audio=audio, size="352x288")
    return read(path), name, fourcc


def test_ffmpeg_enhanced_tags(enhanced):
    msgs, name, fourcc = enhanced
    video = [m for m in msgs if m.type == VIDEO]
    tags = [codec.parse_video_tag(m.payload) for m in video]
    assert all(t.enhanced and t.fourcc == fourcc and t.codec == name and not t.malformed for t in tags)
    flags = [codec.video_flags(m.payload) for m in video]
    # sequence headers: flagged, the last non-empty one parses to the picture size
    shs = [m for m, f in zip(video, flags) if f & F_SEQUENCE_HEADER and not f & F_EMPTY_CONFIG]
    assert shs
    info = codec.video_info(shs[-1].payload)
    assert info["codec"] == name
    if name != "VP9":  # vpcC carries no picture size
        assert (info["width"], info["height"]) == (352, 288)
    # ffmpeg sends colorInfo Metadata: meta-cache material, neither frame nor keyframe
    meta = [f for t, f in zip(tags, flags) if t.packet_type == codec.PKT_METADATA]
    assert meta and all(f & F_COLOR_INFO and not f & (F_KEYFRAME | F_SEQUENCE_HEADER) for f in meta)
    # keyframes: 2 s at a 1 s GOP; the codec payload starts after the FourCC (and the CTS for hvc1)
    frames = [(t, f) for t, f in zip(tags, flags) if t.is_frame]
    assert sum(t.is_keyframe for t, _ in frames) == 2
    assert all(bool(f & F_KEYFRAME) == t.is_keyframe for t, f in frames)
    for m, t in zip(video, tags):
        if t.packet_type == codec.PKT_CODED_FRAMES:
            assert t.offset == (8 if fourcc == b"hvc1" else 5) and t.end == len(m.payload)
    if name == "H265":
        assert any(t.cts > 0 for t, _ in frames)  # B-frames: composition times read as SI24
    if name == "AV1":  # ffmpeg's first av01 SequenceStart is empty: it must not win the meta cache
        assert codec.video_flags(video[0].payload) & F_EMPTY_CONFIG
    audio = [m for m in msgs if m.type == AUDIO]
    if audio:
        assert codec.audio_flags(audio[0].payload) == codec.F_AUDIO | F_SEQUENCE_HEADER
        assert codec.audio_info(audio[0].payload)["codec"] == "Opus"
        assert all(codec.parse_audio_tag(m.payload).fourcc == b"Opus" for m in audio)
    # the live source keeps every enhanced tag
    assert all(codec.is_video_codec_ok(m.payload) for m in video)


def test_hevc_info_matches_ffprobe(media_dir, tmp_path):
    """The HEVC SPS parse against ffprobe (5.1 reads no enhanced FLV: it reads the TS of it)."""
    from helpers.media import ffprobe
    from srspy.kernel.ts import TsMuxer

    path = make_enhanced_flv(media_dir / "hevc-aac.flv", 3, video="hevc", audio="aac")
    msgs = read(path)
    sh = next(m for m in msgs if m.type == VIDEO and codec.video_flags(m.payload) & F_SEQUENCE_HEADER)
    info = codec.video_info(sh.payload)
    mux = TsMuxer()
    ts = tmp_path / "hevc.ts"
    ts.write_bytes(b"".join(mux.mux(m) for m in msgs))
    probe = next(s for s in ffprobe(str(ts))["streams"] if s["codec_type"] == "video")
    assert (info["codec"], info["width"], info["height"], info["profile"]) == ("H265", probe["width"], probe["height"], probe["profile"])
    assert codec.video_codec(sh.payload) == codec.VIDEO_HEVC
    aac = next(m for m in msgs if m.type == AUDIO)
    assert codec.audio_info(aac.payload) == {"codec": "AAC", "sample_rate": 48000, "channel": 2, "profile": "LC"}


def test_legacy_layouts_unchanged():
    assert codec.video_flags(bytes([0x17, 0, 0, 0, 0, 1])) == codec.F_VIDEO | F_KEYFRAME | F_SEQUENCE_HEADER
    assert codec.video_flags(bytes([0x27, 1, 0, 0, 0])) == codec.F_VIDEO
    assert codec.video_flags(bytes([0x1C, 1, 0, 0, 0])) == codec.F_VIDEO | F_KEYFRAME  # HEVC codec id 12
    t = codec.parse_video_tag(bytes([0x27, 1, 0xFF, 0xFF, 0xF6, 0, 0, 0, 1, 0x41]))
    assert (t.codec, t.cts, t.offset, t.is_keyframe) == ("H264", -10, 5, False)
    assert codec.parse_video_tag(bytes([0x1C, 1, 0, 0, 40])).codec == "H265"
    assert not codec.is_video_codec_ok(bytes([0x12, 0]))  # H.263: SRS drops it (#421)
    assert codec.audio_flags(bytes([0xAF, 0, 0x12, 0x10])) == codec.F_AUDIO | F_SEQUENCE_HEADER
    assert codec.parse_audio_tag(bytes([0x2F, 0xFF, 0xFB])).codec == "MP3"


def ex_video(frame_type: int, packet_type: int, rest: bytes) -> bytes:
    return bytes([0x80 | (frame_type << 4) | packet_type]) + rest


NALU = b"\x00\x00\x00\x02\x65\x88"


def test_avc1_coded_frames_and_x():
    t = codec.parse_video_tag(ex_video(1, 1, b"avc1" + b"\xff\xff\xfe" + NALU))
    assert (t.codec, t.cts, t.offset, t.is_keyframe) == ("H264", -2, 8, True)
    t = codec.parse_video_tag(ex_video(2, 3, b"hvc1" + NALU))
    assert (t.codec, t.cts, t.offset, t.is_keyframe, t.is_frame) == ("H265", 0, 5, False, True)
    assert codec.video_flags(ex_video(1, 3, b"hvc1" + NALU)) == codec.F_VIDEO | F_KEYFRAME
    assert codec.video_flags(ex_video(1, 2, b"hvc1")) == codec.F_VIDEO  # SequenceEnd
    assert codec.video_flags(ex_video(5, 1, b"\x01")) == codec.F_VIDEO  # a command frame: no FourCC


def test_multitrack_track0_decides():
    body0 = NALU
    body1 = b"\x00\x00\x00\x02\x41\x9a"
    # ManyTracks: track 1 first, then track 0 (keyframe CodedFramesX for both)
    many = ex_video(1, 6, bytes([0x13]) + b"hvc1" + bytes([1]) + len(body1).to_bytes(3, "big") + body1
                    + bytes([0]) + len(body0).to_bytes(3, "big") + body0)
    t = codec.parse_video_tag(many)
    assert (t.multitrack, t.track_id, t.codec, t.packet_type) == (True, 0, "H265", 3)
    assert many[t.offset:t.end] == body0
    assert codec.video_flags(many) == codec.F_VIDEO | F_KEYFRAME
    # OneTrack of track 2 (OBS's extra tracks): not the default track, so no flags
    one = ex_video(1, 6, bytes([0x00]) + b"avc1" + bytes([2]) + body0)
    t = codec.parse_video_tag(one)
    assert (t.track_id, t.codec, t.packet_type, t.offset) == (2, "H264", 0, 7)
    assert codec.video_flags(one) == codec.F_VIDEO
    # ManyTracksManyCodecs: per-track FourCC; track 0 is av01, a sequence start
    mtmc = ex_video(1, 6, bytes([0x20]) + b"hvc1" + bytes([3, 0, 0, 1]) + b"X" + b"av01" + bytes([0, 0, 0, 4]) + b"\x81\x00\x0c\x00")
    t = codec.parse_video_tag(mtmc)
    assert (t.track_id, t.codec, t.fourcc) == (0, "AV1", b"av01") and mtmc[t.offset:t.end] == b"\x81\x00\x0c\x00"
    assert codec.video_flags(mtmc) == codec.F_VIDEO | F_KEYFRAME | F_SEQUENCE_HEADER
    # audio multitrack: Opus track 0 sequence start among others
    a = bytes([0x95, 0x10]) + b"Opus" + bytes([1, 0, 0, 2]) + b"zz" + bytes([0, 0, 0, 3]) + b"abc"
    at = codec.parse_audio_tag(a)
    assert (at.codec, at.track_id, at.packet_type, a[at.offset:at.end]) == ("Opus", 0, 0, b"abc")
    assert codec.audio_flags(a) == codec.F_AUDIO | F_SEQUENCE_HEADER


def test_modex_wrappers():
    # ModEx (TimestampOffsetNano, 3 bytes) around CodedFrames of hvc1
    tag = ex_video(1, 7, bytes([2]) + b"\x00\x01\x02" + bytes([0x01]) + b"hvc1" + b"\x00\x00\x28" + NALU)
    t = codec.parse_video_tag(tag)
    assert (t.codec, t.packet_type, t.cts, tag[t.offset:]) == ("H265", 1, 40, NALU)
    assert codec.video_flags(tag) == codec.F_VIDEO | F_KEYFRAME
    # a 300-byte ModEx payload (size 256 escape to UI16), then SequenceStart
    big = ex_video(1, 7, bytes([255]) + (299).to_bytes(2, "big") + bytes(300) + bytes([0x00]) + b"av01" + b"\x81\x00")
    t = codec.parse_video_tag(big)
    assert (t.codec, t.packet_type, big[t.offset:]) == ("AV1", 0, b"\x81\x00")
    # audio ModEx around an Opus frame
    a = bytes([0x97, 0, 0xAA, 0x01]) + b"Opus" + b"\xfc"
    at = codec.parse_audio_tag(a)
    assert (at.codec, at.packet_type, a[at.offset:]) == ("Opus", 1, b"\xfc")


@pytest.mark.parametrize("fourcc,name", [(b"Opus", "Opus"), (b"fLaC", "FLAC"), (b"mp4a", "AAC"), (b"ac-3", "AC3"),
                                         (b"ec-3", "EAC3"), (b".mp3", "MP3"), (b"zzzz", "unknown")])
def test_enhanced_audio_names(fourcc, name):
    seq = bytes([0x90]) + fourcc + b"\x12\x10"
    t = codec.parse_audio_tag(seq)
    assert (t.codec, t.is_sequence_header, t.enhanced) == (name, True, True)
    # an unknown FourCC passes through but never becomes the stream's cached sequence header
    assert codec.audio_flags(seq) == codec.F_AUDIO | (F_SEQUENCE_HEADER if name != "unknown" else 0)
    assert codec.audio_flags(bytes([0x91]) + fourcc + b"\x00") == codec.F_AUDIO
    # what the live source calls on every audio sequence header today
    assert codec.parse_aac_sequence_header(seq)["codec"] == (name if name != "unknown" else "Others")
    if fourcc == b"mp4a":
        assert codec.audio_info(seq) == {"codec": "AAC", "sample_rate": 44100, "channel": 2, "profile": "LC"}


def test_unknown_fourcc_passes():
    tag = ex_video(1, 1, b"xyz1" + b"\x00\x00\x00payload")
    t = codec.parse_video_tag(tag)
    assert (t.codec, t.fourcc, t.offset, t.malformed) == ("unknown", b"xyz1", 5, False)
    assert codec.is_video_codec_ok(tag)
    # passed through, but no keyframe or sequence header of the stream: nobody could decode it
    assert codec.video_flags(tag) == codec.F_VIDEO
    assert codec.video_info(ex_video(1, 0, b"xyz1\x01\x02"))["codec"] == "Others"
    assert codec.video_codec(tag) == 0


def test_every_truncation_parses():
    tags = [ex_video(1, 6, bytes([0x13]) + b"hvc1" + bytes([1, 0, 0, 2]) + b"ab" + bytes([0, 0, 0, 6]) + NALU),
            ex_video(1, 7, bytes([2]) + b"\x00\x01\x02" + bytes([0x01]) + b"hvc1" + b"\x00\x00\x28" + NALU),
            ex_video(1, 6, bytes([0x20]) + b"hvc1" + bytes([0, 0, 0, 1]) + b"X"),
            bytes([0x17, 1, 0, 0, 0]) + NALU, bytes([0x95, 0x10]) + b"Opus" + bytes([0, 0, 0, 3]) + b"abc"]
    for full in tags:
        for i in range(len(full) + 1):
            p = full[:i]
            for parse in (codec.parse_video_tag, codec.parse_audio_tag):
                t = parse(p)
                assert 0 <= t.offset <= t.end <= len(p)
            codec.video_flags(p)
            codec.audio_flags(p)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=64))
def test_random_bytes_never_raise(data):
    for parse in (codec.parse_video_tag, codec.parse_audio_tag):
        t = parse(data)
        assert 0 <= t.offset <= t.end <= len(data)
    codec.video_flags(data)
    codec.audio_flags(data)
    codec.is_video_codec_ok(data)
    for b0 in (0x90, 0x96, 0x97, 0x95, 0x97):
        codec.video_flags(bytes([b0]) + data)
        codec.audio_flags(bytes([b0]) + data)
