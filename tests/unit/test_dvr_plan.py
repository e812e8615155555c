"""DVR plans, names and file bytes (srspy/dvr/): files built from ffmpeg media, read back
with ffprobe/ffmpeg and with our AMF0 decoder."""

from __future__ import annotations

import calendar
import os
import time

import pytest
from pathlib import Path

from helpers.avmedia import decode_errors, flv_messages, hevc_messages, probe_packets
from helpers.media import ffprobe, flv_tags, streams_by_type
from srspy.dvr.plan import Close, DvrError, DvrPlan, Open, Write, applies, dvr_path, is_mp4
from srspy.dvr.recorder import FlvRecorder, FragmentedMp4Recorder, ProgressiveMp4Recorder, make_recorder
from srspy.pathvars import UnsafeNameError
from srspy.kernel import amf0
from srspy.kernel.codec import F_SEQUENCE_HEADER, audio_flags, video_flags
from srspy.kernel.message import AMF0_DATA, AUDIO, VIDEO, MediaMessage


def record(msgs, tmp_path, plan, name="f", ext=".flv", fragmented=True):
    """Run the plan and recorders as the DVR output would; returns the files written."""
    files = []
    rec = data = None
    heads = {}

    def finish():
        tail, patches = rec.finish()
        data.extend(tail)
        for at, b in patches:
            data[at : at + len(b)] = b
        path = tmp_path / f"{name}-{len(files)}{ext}"
        path.write_bytes(data)
        files.append(path)

    def events(m):
        return plan.close() if m is None else plan.feed(m)

    for m in msgs + [None]:
        for e in events(m):
            if isinstance(e, Open):
                rec = make_recorder(f"x{ext}", fragmented_mp4=fragmented)
                data = bytearray(rec.header())
                if e.reopen:  # metadata and sequence headers again
                    for h in heads.values():
                        data.extend(rec.write(h, 0))
            elif isinstance(e, Close):
                finish()
            elif isinstance(e, Write):
                data.extend(rec.write(e.msg, e.timestamp))
        if m is not None and (m.type == AMF0_DATA or (m.type == VIDEO and video_flags(m.payload) & F_SEQUENCE_HEADER)
                              or (m.type == AUDIO and audio_flags(m.payload) & F_SEQUENCE_HEADER)):
            heads[m.type] = m
    return files


def onmetadata(path):
    tags = flv_tags(path.read_bytes())
    assert tags[0][0] == 18
    name, meta = amf0.decode_all(tags[0][2])
    return name, meta, tags


def test_session_flv_patches_duration_and_filesize(tmp_path, av_flv):
    msgs = flv_messages(av_flv)
    files = record(msgs, tmp_path, DvrPlan("session"))
    assert len(files) == 1
    name, meta, tags = onmetadata(files[0])
    av = [t for t in tags if t[0] in (8, 9)]
    want = (max(t[1] for t in av) - min(t[1] for t in av)) / 1000
    assert name == "onMetaData" and meta["duration"] == want and meta["filesize"] == files[0].stat().st_size
    assert list(meta)[-3:] == ["service", "filesize", "duration"]
    assert meta["width"] == 640  # the publisher's properties stay
    fmt = ffprobe(str(files[0]))["format"]
    assert abs(float(fmt["duration"]) - want) < 0.001
    assert decode_errors(files[0]) == ""
    assert av[0][1] <= 10  # time_jitter full: the file starts near 0


def test_segment_plan_rolls_over_on_keyframes(tmp_path, av_flv):
    msgs = flv_messages(av_flv)
    files = record(msgs, tmp_path, DvrPlan("segment", duration=5))
    assert len(files) == 4  # 2 s GOPs, 5 s files: 6 + 6 + 6 + 2
    for f in files:
        name, meta, tags = onmetadata(f)
        av = [t for t in tags if t[0] in (8, 9)]
        seq = [t for t in av if t[2][1] == 0]
        assert {t[0] for t in seq} == {8, 9}  # every file carries both sequence headers
        first_video = next(t for t in av if t[0] == 9 and t[2][1] == 1)
        assert first_video[2][0] >> 4 == 1  # and starts with a keyframe
        assert av[0][1] <= 10
        assert decode_errors(f) == ""
        assert abs(float(ffprobe(str(f))["format"]["duration"]) - meta["duration"]) < 0.001
    assert [round(onmetadata(f)[1]["duration"]) for f in files[:3]] == [6, 6, 6]


def test_segment_plan_rolls_over_on_hevc_keyframes(tmp_path, media_dir):
    msgs = hevc_messages(media_dir, seconds=3, gop=10)  # a keyframe every 400 ms
    files = record(msgs, tmp_path, DvrPlan("segment", duration=1), ext=".mp4")
    assert len(files) == 3  # cuts at the keyframes at 1.2 s and 2.4 s
    for f in files:
        assert decode_errors(f) == ""
        info = streams_by_type(ffprobe(str(f)))
        assert info["video"]["codec_name"] == "hevc" and info["video"]["codec_tag_string"] == "hvc1"


def test_wait_keyframe_drops_video_before_the_first_keyframe():
    plan = DvrPlan("session", wait_keyframe=True)
    sh = MediaMessage(VIDEO, 0, 1, b"\x17\x00\x00\x00\x00")
    inter = MediaMessage(VIDEO, 40, 1, b"\x27\x01\x00\x00\x00")
    key = MediaMessage(VIDEO, 80, 1, b"\x17\x01\x00\x00\x00")
    audio = MediaMessage(AUDIO, 50, 1, b"\xaf\x01\x00")
    written = [e.msg for m in (sh, inter, audio, key, inter) for e in plan.feed(m) if isinstance(e, Write)]
    assert written == [sh, audio, key, inter]
    plan = DvrPlan("session", wait_keyframe=False)
    written = [e.msg for m in (sh, inter) for e in plan.feed(m) if isinstance(e, Write)]
    assert written == [sh, inter]


def test_segment_plan_without_wait_keyframe_cuts_on_any_frame():
    plan = DvrPlan("segment", duration=1, wait_keyframe=False, time_jitter="off")
    events = []
    for i in range(100):
        events += plan.feed(MediaMessage(AUDIO, 1000 + i * 23, 1, b"\xaf\x01\x00"))
    closes = [e for e in events if isinstance(e, Close)]
    assert [c.duration for c in closes] == [1012, 1012]
    assert [e.reopen for e in events if isinstance(e, Open)] == [False, True, True]
    assert next(e for e in events if isinstance(e, Write)).timestamp == 1000  # off: timestamps kept


def test_time_jitter_zero_starts_each_file_at_zero():
    plan = DvrPlan("segment", duration=1, wait_keyframe=False, time_jitter="zero")
    writes = []
    for i in range(100):
        writes += [(e.timestamp, o) for o in [None] for e in plan.feed(MediaMessage(AUDIO, 5000 + i * 23, 1, b"\xaf\x01\x00"))
                   if isinstance(e, Write)]
    starts = [writes[0][0]] + [writes[i][0] for i in range(1, len(writes)) if writes[i][0] < writes[i - 1][0]]
    assert starts == [0, 0, 0]


@pytest.mark.parametrize("fragmented", [True, False])
def test_mp4_dvr_files(fragmented, tmp_path, av_flv):
    msgs = flv_messages(av_flv)
    files = record(msgs, tmp_path, DvrPlan("segment", duration=8), ext=".mp4", fragmented=fragmented)
    assert len(files) == 3  # 10 + 10 + 0 s... keyframes every 2 s, files of >= 8 s: 8, 8, 4
    video = [m for m in msgs if m.type == VIDEO and m.payload[1] == 1]
    total = 0
    for f in files:
        assert decode_errors(f) == ""
        info = streams_by_type(ffprobe(str(f)))
        assert info["video"]["codec_name"] == "h264" and info["audio"]["codec_name"] == "aac"
        packets = probe_packets(f, "v")
        assert packets[0]["flags"].startswith("K") and float(packets[0]["dts_time"]) < 0.05
        total += len(packets)
    assert total == len(video)


def test_recorder_choice_and_flv_without_metadata():
    assert isinstance(make_recorder("a/b.flv"), FlvRecorder)
    assert isinstance(make_recorder("a/b.mp4"), FragmentedMp4Recorder)
    assert isinstance(make_recorder("a/b.mp4", fragmented_mp4=False), ProgressiveMp4Recorder)
    rec = FlvRecorder()
    rec.header()
    rec.write(MediaMessage(AUDIO, 5, 1, b"\xaf\x01\x00"), 5)
    assert rec.finish() == (b"", [])  # no onMetaData from the publisher: nothing to patch
    rec.write(MediaMessage(AMF0_DATA, 0, 1, b"\x02\x00\x03bad\xff"), 0)  # undecodable: dropped
    assert rec.meta_at is None


def test_dvr_path_variables():
    now = calendar.timegm((2026, 1, 2, 3, 4, 5)) + 0.678
    assert dvr_path("./objs/nginx/html/[app]/[stream].[timestamp].flv", "v", "live", "s", now) == \
        f"./objs/nginx/html/live/s.{int(now * 1000)}.flv"
    assert dvr_path("/d/[vhost]/[app]/[stream]/[2006]/[01]/[02]/[15].[04].[05].[999].mp4", "vh", "live", "s",
                    now, utc=True) == "/d/vh/live/s/2026/01/02/03.04.05.678.mp4"
    assert dvr_path("/d/[app]", "v", "live", "s", now) == f"/d/live/s.{int(now * 1000)}.flv"
    assert is_mp4("x.mp4") and not is_mp4("x.flv")
    assert dvr_path("/d/[15].flv", "v", "a", "s", now) == f"/d/{time.localtime(now).tm_hour:02d}.flv"
    with pytest.raises(UnsafeNameError, match=r"'\.\.'"):
        dvr_path("/d/[app]/[stream].flv", "v", "live", "..", now)


def test_dvr_apply_and_bad_plan():
    assert applies("all", "live", "s")
    assert applies(["live/s", "live/t"], "live", "t") and not applies(["live/s"], "live", "t")
    with pytest.raises(DvrError, match="append"):
        DvrPlan("append")


def test_dvr_file_tmp_then_rename_never_overwrites(tmp_path, short_flv):
    from srspy.dvr.file import DvrFile

    path = str(tmp_path / "live" / "s.flv")
    f = DvrFile(path)
    assert os.path.exists(path + ".tmp") and not os.path.exists(path)
    plan = DvrPlan("session")
    for m in flv_messages(short_flv):
        for e in plan.feed(m):
            if isinstance(e, Write):
                f.write(e.msg, e.timestamp)
    assert f.close() == path
    assert os.path.exists(path) and not os.path.exists(path + ".tmp")
    assert decode_errors(Path(path)) == ""
    _, meta, _ = onmetadata(Path(path))
    assert meta["filesize"] == os.path.getsize(path) and meta["duration"] > 5
    with pytest.raises(DvrError, match="can't append"):
        DvrFile(path)
    # A file that appears at the final path during the recording is not replaced.
    other = str(tmp_path / "o.mp4")
    g = DvrFile(other)
    Path(other).write_bytes(b"someone else's")
    with pytest.raises(DvrError, match="appeared"):
        g.close()
    assert Path(other).read_bytes() == b"someone else's" and os.path.exists(other + ".tmp")
