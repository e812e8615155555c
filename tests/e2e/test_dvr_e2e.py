"""DVR (app/dvr.py): ffmpeg publishes over RTMP; the recordings are checked with ffprobe,
ffmpeg and the FLV parser, the on_dvr hook with a hook server."""

from __future__ import annotations

import json
import os
import signal
import time
import sys

import gevent
import pytest
from gevent import subprocess
from helpers.avmedia import frame_sizes
from helpers.media import concat_flv, flv_tags, make_flv, publish_args, wait_published, wait_until
from helpers.net import free_port, port_open, rtmp_url

from srspy.client.flvfile import read_flv_file
from srspy.client.rtmp import RtmpPushSession
from srspy.kernel import amf0

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


ON_DVR_FIELDS = ["server_id", "service_id", "action", "client_id", "ip", "vhost", "app", "tcUrl", "stream", "param",
                 "cwd", "file", "stream_url"]


def dvr_block(path, plan="session", duration=30, extra="") -> str:
    return f"dvr {{ enabled on; dvr_plan {plan}; dvr_path {path}; dvr_duration {duration}; {extra} }}"


def probe_json(path: str, *extra) -> dict:
    out = subprocess.run(["ffprobe", "-v", "error", "-of", "json", *extra, path], check=True, capture_output=True,
                         timeout=60)
    return json.loads(out.stdout)


def first_video_is_keyframe(path: str, *fmt) -> bool:
    pkts = probe_json(path, *fmt, "-show_packets", "-select_streams", "v", "-read_intervals", "%+#1")["packets"]
    return bool(pkts) and pkts[0]["flags"].startswith("K")


def decode(path: str, *fmt) -> subprocess.CompletedProcess:
    return subprocess.run(["ffmpeg", "-nostdin", "-v", "error", *fmt, "-i", path, "-f", "null", "-"],
                          capture_output=True, timeout=90)


def recorded(d) -> list[str]:
    return sorted(os.path.join(r, f) for r, _, fs in os.walk(d) for f in fs)


def test_dvr_session_flv_and_on_dvr(make_server, procs, short_flv, tmp_path, hooks):
    rec = tmp_path / "rec"
    srv = make_server(vhost_extra=dvr_block(f"{rec}/[app]/[stream].[timestamp].flv") +
                      f" http_hooks {{ enabled on; on_dvr {hooks.url('/ok')}; }}")
    procs(publish_args(short_flv, rtmp_url(srv, "/live/s?a=b"))).wait(60)
    wait_until(lambda: srv.dvr.outputs["/live/s"].stopped, 10, what="recording ended")
    files = recorded(rec)
    assert len(files) == 1 and files[0].endswith(".flv") and os.path.dirname(files[0]) == str(rec / "live")
    tags = flv_tags(open(files[0], "rb").read())
    assert tags[0][0] == 18
    name, meta = amf0.decode_all(tags[0][2])
    av = [t for t in tags if t[0] in (8, 9)]
    stamps = [t[1] for t in av]  # the last tag is not the latest: audio and video interleave
    assert name == "onMetaData" and meta["duration"] == (max(stamps) - min(stamps)) / 1000
    assert 5.5 <= meta["duration"] <= 6.5 and meta["filesize"] == os.path.getsize(files[0])
    assert first_video_is_keyframe(files[0])
    out = decode(files[0])
    assert out.returncode == 0 and out.stderr.strip() == b"", out.stderr[-2000:]
    wait_until(lambda: hooks.events("on_dvr"), 10, what="on_dvr")
    (ev,) = hooks.events("on_dvr")
    assert [k for k in ev if k != "stream_id"] == ON_DVR_FIELDS
    assert ev["file"] == files[0] and ev["stream"] == "s" and ev["param"] == "?a=b" and ev["cwd"] == os.getcwd()


def test_dvr_segment_plan_fragmented_mp4(make_server, procs, short_flv, tmp_path):
    rec = tmp_path / "rec"
    srv = make_server(vhost_extra=dvr_block(f"{rec}/[app]/[stream]-[timestamp].mp4", plan="segment", duration=2))
    procs(publish_args(short_flv, rtmp_url(srv))).wait(60)
    wait_until(lambda: srv.dvr.outputs["/live/s"].stopped, 10, what="recording ended")
    files = recorded(rec)
    # 6 s; the fixture's keyframes are at 0, 2.02 and 5.98 s: a file of 2 s, one of 4 s (and the
    # last keyframe alone, which forms no MP4 fragment: dropped)
    assert len(files) == 2 and all(f.endswith(".mp4") for f in files), files
    assert files == srv.dvr.outputs["/live/s"].files
    total = 0.0
    for f in files:
        info = probe_json(f, "-show_streams", "-show_format")
        assert sorted(s["codec_name"] for s in info["streams"]) == ["aac", "h264"]
        assert first_video_is_keyframe(f)
        out = decode(f)
        assert out.returncode == 0 and out.stderr.strip() == b"", (f, out.stderr[-2000:])
        total += float(info["format"]["duration"])
    assert 5.5 <= total <= 6.6


def test_dvr_killed_server_leaves_a_playable_tmp(procs, short_flv, tmp_path):
    rec = tmp_path / "rec"
    port = free_port()
    conf = tmp_path / "srspy.conf"
    conf.write_text(f"listen {port};\ndaemon off;\nsrs_log_tank console;\npid {tmp_path}/srspy.pid;\n"
                    f"vhost __defaultVhost__ {{ {dvr_block(f'{rec}/[app]/[stream].mp4')} }}\n")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    server = procs([sys.executable, "-m", "srspy", "-c", str(conf)], cwd=root)
    wait_until(lambda: port_open(port), 15, what="server up")
    procs(publish_args(short_flv, f"rtmp://127.0.0.1:{port}/live/s", loop=True))
    tmp = rec / "live" / "s.mp4.tmp"
    wait_until(lambda: tmp.exists() and tmp.stat().st_size > 400_000, 30, what="a few fragments recorded")
    os.kill(server.pid, signal.SIGKILL)
    server.wait(10)
    assert not (rec / "live" / "s.mp4").exists()
    out = decode(str(tmp), "-f", "mp4")
    assert out.returncode == 0, out.stderr[-2000:]
    info = probe_json(str(tmp), "-f", "mp4", "-show_streams", "-show_format")
    assert sorted(s["codec_name"] for s in info["streams"]) == ["aac", "h264"]
    assert float(info["format"]["duration"]) >= 1.0
    assert first_video_is_keyframe(str(tmp), "-f", "mp4")


def test_dvr_unwritable_path_stops_only_the_recording(make_server, procs, short_flv, tmp_path):
    blocker = tmp_path / "afile"
    blocker.write_text("a file where the recording wants a directory")
    srv = make_server(vhost_extra=dvr_block(f"{blocker}/[app]/[stream].flv"))
    procs(publish_args(short_flv, rtmp_url(srv), loop=True))
    src = wait_published(srv)
    wait_until(lambda: "/live/s" in srv.dvr.outputs and srv.dvr.outputs["/live/s"].stopped, 10,
               what="recording failed")
    out = srv.dvr.outputs["/live/s"]
    assert out.failed and out.files == []
    # the publish goes on: the stream keeps growing
    end = src.log.end
    wait_until(lambda: src.log.end > end + 50, 10, what="the publish goes on")
    assert src.publishing


def test_dvr_never_overwrites_a_recording(make_server, procs, short_flv, tmp_path):
    rec = tmp_path / "rec" / "live"
    rec.mkdir(parents=True)
    (rec / "s.flv").write_bytes(b"an older recording")
    srv = make_server(vhost_extra=dvr_block(f"{tmp_path}/rec/[app]/[stream].flv"))
    procs(publish_args(short_flv, rtmp_url(srv), loop=True))
    src = wait_published(srv)
    wait_until(lambda: "/live/s" in srv.dvr.outputs and srv.dvr.outputs["/live/s"].stopped, 10,
               what="recording refused")
    assert srv.dvr.outputs["/live/s"].failed
    assert (rec / "s.flv").read_bytes() == b"an older recording" and sorted(os.listdir(rec)) == ["s.flv"]
    end = src.log.end
    wait_until(lambda: src.log.end > end + 50, 10, what="the publish goes on")


# -- a sequence header that changes mid-publish -------------------------------------------------

@pytest.fixture(scope="module")
def two_sizes(media_dir):
    """3 s at 640x360 then 3 s at 320x240 in one FLV: a new AVC sequence header (new SPS)
    at 3.04 s; both parts' AAC headers are the same bytes."""
    parts = [make_flv(media_dir / f"av-{size}-3s.flv", 3, size=size) for size in ("640x360", "320x240")]
    return concat_flv(media_dir / "av-640x360-then-320x240.flv", parts), parts


def sizes_of(path: str) -> set[str]:
    return set(frame_sizes(path))


MP4_CONFS = {"mp4": "", "mp4-progressive": "dvr_mp4_fragmented off;"}


@pytest.mark.parametrize("kind", ["mp4", "mp4-progressive", "flv"])
def test_dvr_new_sequence_header_mid_publish(kind, make_server, procs, two_sizes, tmp_path, hooks):
    """MP4 has one sample description per track: the recording closes its file at the new
    sequence header and goes on in a new one that starts with the new configuration and a
    keyframe. FLV takes the new header in the same file; ffmpeg decodes both sizes."""
    rec = tmp_path / "rec"
    ext = kind[:3]
    srv = make_server(vhost_extra=dvr_block(f"{rec}/[app]/[stream].[timestamp].{ext}", extra=MP4_CONFS.get(kind, ""))
                      + f" http_hooks {{ enabled on; on_dvr {hooks.url('/ok')}; }}")
    procs(publish_args(two_sizes[0], rtmp_url(srv))).wait(60)
    wait_until(lambda: srv.dvr.outputs["/live/s"].stopped, 10, what="recording ended")
    files = recorded(rec)
    assert files == srv.dvr.outputs["/live/s"].files
    wait_until(lambda: len(hooks.events("on_dvr")) == len(files), 10, what="on_dvr for every file")
    assert [ev["file"] for ev in hooks.events("on_dvr")] == files
    for f in files:
        out = decode(f)
        assert out.returncode == 0 and out.stderr.strip() == b"", (f, out.stderr[-2000:])
        assert first_video_is_keyframe(f), f
    if ext == "flv":
        assert len(files) == 1, files
        sizes = frame_sizes(files[0])
        assert sizes == sorted(sizes, key=lambda s: s != "640x360")  # in order: 640x360, then 320x240
        assert {s: sizes.count(s) for s in set(sizes)} == {"640x360": 75, "320x240": 75}
        return
    assert len(files) == 2, files
    assert [sizes_of(f) for f in files] == [{"640x360"}, {"320x240"}]
    for f, size in zip(files, ((640, 360), (320, 240))):
        info = probe_json(f, "-show_streams", "-show_format")
        video = next(s for s in info["streams"] if s["codec_type"] == "video")
        assert (video["width"], video["height"]) == size
        assert sorted(s["codec_name"] for s in info["streams"]) == ["aac", "h264"]
        assert 2.7 <= float(info["format"]["duration"]) <= 3.3, (f, info["format"]["duration"])
    assert len(frame_sizes(files[0])) + len(frame_sizes(files[1])) == 150


def push_paced(url: str, tags: list, speed: float = 4.0) -> None:
    """Publish FLV tags with srspy's RTMP client, ``speed`` times faster than real time."""
    s = RtmpPushSession(url, write_timeout=10, start_timeout=10).start()
    start = time.monotonic()
    try:
        for t in tags:
            gevent.sleep(max(0.0, start + t.timestamp / 1000 / speed - time.monotonic()))
            s.write_flv_tag(t)
        s.flush()
    finally:
        s.close()


def test_dvr_same_sequence_header_again_changes_nothing(make_server, two_sizes, tmp_path, hooks):
    """A byte-equal resend of both sequence headers (mid-GOP) keeps the file; the new SPS
    starts the next one. The template names both files alike: the second takes a number."""
    rec = tmp_path / "rec"
    srv = make_server(vhost_extra=dvr_block(f"{rec}/[app]/[stream].mp4", plan="segment")
                      + f" http_hooks {{ enabled on; on_dvr {hooks.url('/ok')}; }}")
    tags = list(read_flv_file(two_sizes[0]))
    heads = [t for t in tags if t.type in (8, 9) and t.payload[1] == 0][:2]  # the first part's headers
    at = next(i for i, t in enumerate(tags) if t.type == 9 and t.timestamp >= 1500)
    resend = [t._replace(timestamp=tags[at].timestamp) for t in heads]
    push_paced(rtmp_url(srv), tags[:at] + resend + tags[at:])
    wait_until(lambda: "/live/s" in srv.dvr.outputs and srv.dvr.outputs["/live/s"].stopped, 20,
               what="recording ended")
    files = recorded(rec)
    assert files == [str(rec / "live" / "s-1.mp4"), str(rec / "live" / "s.mp4")]
    assert srv.dvr.outputs["/live/s"].files == files[::-1]
    assert [sizes_of(f) for f in files[::-1]] == [{"640x360"}, {"320x240"}]
    for f in files:
        assert first_video_is_keyframe(f)
        out = decode(f)
        assert out.returncode == 0 and out.stderr.strip() == b"", (f, out.stderr[-2000:])
    wait_until(lambda: len(hooks.events("on_dvr")) == 2, 10, what="on_dvr for both files")
    assert [ev["file"] for ev in hooks.events("on_dvr")] == files[::-1]
