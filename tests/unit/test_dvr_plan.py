"""DVR plans, names and file bytes (srspy/dvr/): files built from ffmpeg media, read back
with ffprobe/ffmpeg and with our AMF0 decoder."""

from __future__ import annotations

import calendar
import os
import time

import pytest
from pathlib import Path

from helpers.avmedia import decode_errors, flv_messages, hevc_messages, probe_packets
from gevent import subprocess
from helpers.media import ffprobe, flv_tags, streams_by_type
from srspy.dvr.file import DvrFile, free_path
from srspy.dvr.plan import Close, DvrError, DvrPlan, Open, Write, applies, dvr_path, is_mp4
from srspy.dvr.recorder import FlvRecorder, FragmentedMp4Recorder, ProgressiveMp4Recorder, make_recorder
from srspy.pathvars import UnsafeNameError
from srspy.kernel import amf0
from srspy.kernel.codec import F_EMPTY_CONFIG, video_flags
from srspy.kernel.message import AMF0_DATA, AUDIO, VIDEO, MediaMessage


def record(msgs, tmp_path, plan, name="f", ext=".flv", fragmented=True):
    """Run the plan and recorders as the DVR output would; returns the files written."""
    files = []
    rec = data = None

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
            elif isinstance(e, Close):
                finish()
            elif isinstance(e, Write):
                data.extend(rec.write(e.msg, e.timestamp))
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


# -- sequence headers that change mid-file --------------------------------------------------------

def shifted(msgs, by: int) -> list:
    return [m.copy(timestamp=m.timestamp + by) for m in msgs]


def after(first: list, second: list, gap: int = 40) -> list:
    """``second`` played right after ``first`` on one clock."""
    return first + shifted(second, max(m.timestamp for m in first) + gap)


@pytest.fixture(scope="module")
def aac_48k_mono(media_dir):
    path = media_dir / "aac-48k-mono-3s.flv"
    if not path.exists():
        subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                        "sine=frequency=660:sample_rate=48000:duration=3", "-c:a", "aac", "-b:a", "64k", "-ac", "1",
                        "-f", "flv", str(path)], check=True, timeout=120)
    return path


def video_codecs(path) -> list[str]:
    return [s["codec_name"] for s in ffprobe(str(path))["streams"] if s["codec_type"] == "video"]


@pytest.mark.parametrize("fragmented", [True, False])
def test_mp4_codec_change_starts_a_new_file(fragmented, tmp_path, video_flv, media_dir):
    """H.264, then HEVC (an encoder switching codecs without a republish): one MP4 file
    each, each starting with its own configuration and a keyframe."""
    avc = flv_messages(video_flv)
    msgs = after(avc, hevc_messages(media_dir, seconds=3))
    files = record(msgs, tmp_path, DvrPlan("session", split_on_change=True), ext=".mp4", fragmented=fragmented)
    assert [video_codecs(f) for f in files] == [["h264"], ["hevc"]]
    for f, frames in zip(files, (150, 75)):
        assert decode_errors(f) == ""
        packets = probe_packets(f, "v")
        assert packets[0]["flags"].startswith("K") and float(packets[0]["dts_time"]) < 0.05
        assert len(packets) == frames


def test_aac_config_change_mp4_splits_flv_keeps_one_file(tmp_path, audio_flv, aac_48k_mono):
    """A new AudioSpecificConfig (44.1 kHz stereo, then 48 kHz mono): two MP4 files; one
    FLV, which ffmpeg decodes whole, both configurations."""
    msgs = after(flv_messages(audio_flv), flv_messages(aac_48k_mono))
    files = record(msgs, tmp_path, DvrPlan("session", split_on_change=True), ext=".mp4")
    rates = [[(s["sample_rate"], s["channels"]) for s in ffprobe(str(f))["streams"]] for f in files]
    assert rates == [[("44100", 2)], [("48000", 1)]]
    assert all(decode_errors(f) == "" for f in files)
    (flv,) = record(msgs, tmp_path, DvrPlan("session"), name="flv")
    assert decode_errors(flv) == ""
    heads = [t for t in flv_tags(flv.read_bytes()) if t[0] == 8 and t[2][1] == 0]
    assert len(heads) == 2


def seq_header(body: bytes) -> MediaMessage:
    return MediaMessage(VIDEO, 0, 1, b"\x17\x00\x00\x00\x00" + body)


def frames(plan, msgs) -> list:
    return [e for m in msgs for e in plan.feed(m)]


def test_change_rules():
    sh_a, sh_b = seq_header(b"A"), seq_header(b"B")
    key = MediaMessage(VIDEO, 40, 1, b"\x17\x01\x00\x00\x00")
    inter = MediaMessage(VIDEO, 80, 1, b"\x27\x01\x00\x00\x00")
    audio = MediaMessage(AUDIO, 90, 1, b"\xaf\x01\x00")
    meta = MediaMessage(AMF0_DATA, 0, 1, b"meta")
    # a byte-equal resend, or a new header before the file's first frame: no new file
    for plan_kw in ({"split_on_change": True}, {"split_on_change": False}):
        ev = frames(DvrPlan(**plan_kw), [meta, sh_a, sh_b, key, MediaMessage(VIDEO, 60, 1, sh_b.payload), inter])
        assert [type(e) for e in ev] == [Open] + [Write] * 6
    # FLV: a change goes into the same file
    ev = frames(DvrPlan(), [sh_a, key, sh_b, inter])
    assert [type(e) for e in ev] == [Open, Write, Write, Write, Write]
    # MP4: a new file with the latest metadata and headers, video from a keyframe on, even
    # with dvr_wait_keyframe off; audio goes on meanwhile
    for wait in (True, False):
        plan = DvrPlan(wait_keyframe=wait, split_on_change=True)
        ev = frames(plan, [meta, sh_a, key, sh_b, inter, audio, key.copy(timestamp=120), inter.copy(timestamp=160)])
        kinds = [type(e).__name__ for e in ev]
        assert kinds == ["Open", "Write", "Write", "Write", "Close", "Open", "Write", "Write", "Write", "Write", "Write"]
        assert [e.reopen for e in ev if isinstance(e, Open)] == [False, True]
        new_file = ev[ev.index(next(e for e in ev if isinstance(e, Open) and e.reopen)) + 1:]
        assert [e.msg.payload for e in new_file] == [b"meta", sh_b.payload, audio.payload, key.payload, inter.payload]
        assert [e.timestamp for e in new_file][:2] == [0, 0]
    # an empty configuration record keeps the header before it
    empty = MediaMessage(VIDEO, 60, 1, b"\x17\x00\x00\x00\x00")
    empty.flags = video_flags(empty.payload) | F_EMPTY_CONFIG
    assert [type(e) for e in frames(DvrPlan(split_on_change=True), [sh_a, key, empty, inter])] == [Open] + [Write] * 4


def test_numbered_names(tmp_path):
    path = str(tmp_path / "s.mp4")
    assert free_path(path) == path
    open(path, "wb").close()
    open(str(tmp_path / "s-1.mp4.tmp"), "wb").close()  # a crashed recording's leftover is taken too
    assert free_path(path) == str(tmp_path / "s-2.mp4")
    f = DvrFile(path, number=True)
    assert f.path == str(tmp_path / "s-2.mp4") and os.path.exists(f.tmp)
    f.abort()
    with pytest.raises(DvrError, match="can't append"):  # the publish's first file: SRS's rule
        DvrFile(str(tmp_path / "s-1.mp4"))
    assert os.path.getsize(str(tmp_path / "s-1.mp4.tmp")) == 0
