"""Four HLS directives end to end (app/hls.py): ffmpeg publishes over RTMP, the test reads
the segments and playlists on disk, plays them over HTTP and asks the API.

``hls_ts_floor``: ``[timestamp]`` names from the clock; ``hls_acodec an`` /
``hls_vcodec vn``: one track left out; ``hls_dts_directly off``: audio decode times
counted from samples; ``hls_on_error``: what a failing HLS does to the publish."""

from __future__ import annotations

import json
import math
import os
import time

import gevent
import m3u8
import pytest
from gevent import subprocess
from helpers.flvclient import http_get
from helpers.media import publish_args, wait_published, wait_until
from helpers.net import rtmp_url
from helpers.rtmpraw import RawRtmp
from helpers.tsparse import packets, section

from srspy.client import HttpFlvPullSession
from srspy.kernel import amf0
from srspy.kernel.message import AMF0_DATA, AUDIO, VIDEO, MediaMessage

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(150)]


def probe_json(path: str, *extra) -> dict:
    out = subprocess.run(["ffprobe", "-v", "error", "-of", "json", *extra, path], check=True, capture_output=True,
                         timeout=60)
    return json.loads(out.stdout)


def hls_server(make_server, root, more: str, fragment: int = 2, extra: str = ""):
    return make_server(vhost_extra=f"hls {{ enabled on; hls_path {root}; hls_fragment {fragment}; hls_window 60; "
                                   f"hls_ctx off; {more} }}", extra=extra)


def listed(m3u8_path, n: int, timeout: float = 40):
    """The playlist once it lists ``n`` segments."""
    return wait_until(lambda: m3u8_path.exists() and len((p := m3u8.loads(m3u8_path.read_text())).segments) >= n
                      and p, timeout, what=f"{n} segments listed")


def plays(port: int, path: str = "/live/s.m3u8", seconds: int = 4) -> None:
    run = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", f"http://127.0.0.1:{port}{path}",
                          "-t", str(seconds), "-f", "null", "-"], capture_output=True, timeout=60)
    assert run.returncode == 0 and run.stderr.strip() == b"", run.stderr[-2000:]


# ---------------------------------------------------------------- hls_ts_floor

def test_ts_floor_names_segments_by_the_clock(make_server, procs, short_flv, tmp_path):
    root = tmp_path / "html"
    fragment = 2
    srv = hls_server(make_server, root, "hls_ts_floor on; hls_ts_file [app]/[stream]-[timestamp].ts;", fragment)
    t0 = time.time()
    procs(publish_args(short_flv, rtmp_url(srv), loop=True))
    pl = listed(root / "live" / "s.m3u8", 4)
    indexes = [int(s.uri[2:-3]) for s in pl.segments]
    assert all(s.uri == f"s-{i}.ts" for s, i in zip(pl.segments, indexes))
    # one more per segment, starting from floor(now / hls_fragment) - 1 at the first one
    assert indexes == list(range(indexes[0], indexes[0] + len(indexes)))
    assert math.floor(t0 / fragment) - 1 <= indexes[0] <= math.floor((t0 + 10) / fragment) - 1
    for s, i in zip(pl.segments, indexes):
        closed = os.stat(root / "live" / s.uri).st_mtime  # renamed when it closed
        assert abs(closed - i * fragment) <= 3 * fragment, (s.uri, closed)
    plays(srv.http_port)


# ---------------------------------------------------------------- hls_acodec an / hls_vcodec vn

@pytest.mark.parametrize("left_out, form", [("video", "ts"), ("audio", "ts"), ("video", "fmp4")])
def test_a_track_left_out_of_an_av_publish(make_server, procs, short_flv, tmp_path, left_out, form):
    root = tmp_path / "html"
    more = "hls_vcodec vn;" if left_out == "video" else "hls_acodec an;"
    if form == "fmp4":
        more += " hls_use_fmp4 on;"
    srv = hls_server(make_server, root, more)
    procs(publish_args(short_flv, rtmp_url(srv), loop=True))
    pl = listed(root / "live" / "s.m3u8", 3)
    kept = "aac" if left_out == "video" else "h264"
    for s in pl.segments:
        path = root / "live" / s.uri
        if form == "fmp4":
            whole = tmp_path / f"whole-{s.uri}.mp4"
            whole.write_bytes((root / "live" / "s-init.mp4").read_bytes() + path.read_bytes())
            path = whole
        info = probe_json(str(path), "-show_streams", "-show_programs")
        assert [st["codec_name"] for st in info["streams"]] == [kept], (s.uri, info["streams"])
        if form == "ts":
            pids = {st["id"] for p in info["programs"] for st in p["streams"]}
            assert pids == ({"0x101"} if left_out == "video" else {"0x100"})
        # cut at the video's keyframes (every 2 s) even when the video is left out
        assert abs(s.duration - 2.0) < 0.1 or s is pl.segments[-1], (s.uri, s.duration)
    plays(srv.http_port)


# An H.264 sequence header (4-byte SPS and PPS stand-ins), frames, and MP3 frames: enough
# for the TS muxer, sent by a raw RTMP publisher so that the order of the first frames is
# known (MP3 has no sequence header: its codec shows with its first frame).
AVC_SH = bytes([0x17, 0, 0, 0, 0]) + bytes.fromhex("0164001effe10004" "6764001e" "010004" "68ebecb2")


def raw_publish(port: int, audio: bool, audiocodecid: float = 2.0) -> None:
    """onMetaData announcing H.264 video and audio, then 3 s: video every 40 ms (a keyframe
    every second) and, when ``audio``, MP3 from 100 ms on; then the publisher leaves."""
    c = RawRtmp(port)
    c.handshake()
    c.publish("s")
    meta = {"videocodecid": 7.0, "audiocodecid": audiocodecid, "width": 64.0, "height": 64.0}
    c.send(MediaMessage(AMF0_DATA, 0, 1, amf0.encode_all("@setDataFrame", "onMetaData", meta)), 5)
    c.send(MediaMessage(VIDEO, 0, 1, AVC_SH), 6)
    msgs = [(t, VIDEO, bytes([0x17 if t % 1000 == 0 else 0x27, 1, 0, 0, 0, 0, 0, 0, 2, 0x65 if t % 1000 == 0 else 0x41,
                              0x88])) for t in range(0, 3000, 40)]
    if audio:
        msgs += [(t, AUDIO, bytes([0x2F, 0xFF, 0xFB, 0x90, 0x64]) + bytes(200)) for t in range(100, 3000, 26)]
    for t, kind, payload in sorted(msgs, key=lambda x: (x[0], x[1] == AUDIO)):
        c.send(MediaMessage(kind, t, 1, payload), 6 if kind == VIDEO else 4)
    gevent.sleep(0.5)
    c.close()


def segment_pmts(path) -> list[list[tuple[int, int]]]:
    """The distinct PMTs of a TS file, each as [(stream_type, pid)]."""
    out = []
    for p in packets(path.read_bytes()):
        if p.pid == 0x1001:
            sec = section(p)
            es, pos, end = [], 12 + (((sec[10] & 0x0F) << 8) | sec[11]), len(sec) - 4
            while pos < end:
                es.append((sec[pos], ((sec[pos + 1] & 0x1F) << 8) | sec[pos + 2]))
                pos += 5 + (((sec[pos + 3] & 0x0F) << 8) | sec[pos + 4])
            if not out or out[-1] != es:
                out.append(es)
    return out


MP3_H264 = [(0x03, 0x102), (0x1B, 0x100)]


@pytest.mark.parametrize("acodec, audio, expected", [
    # hls_acodec mp3: the PMT lists MP3 from the first packet, before the first MP3 frame
    ("mp3", True, [[MP3_H264], [MP3_H264], [MP3_H264]]),
    # the default, aac: AAC until the first MP3 frame, as SRS
    ("aac", True, [[[(0x0F, 0x101), (0x1B, 0x100)], MP3_H264], [MP3_H264], [MP3_H264]]),
    # audio announced but never sent: listed in the first segment only
    ("aac", False, [[[(0x0F, 0x101), (0x1B, 0x100)]], [[(0x1B, 0x100)]], [[(0x1B, 0x100)]]]),
])
def test_expected_codecs_before_the_stream_shows_them(make_server, tmp_path, acodec, audio, expected):
    root = tmp_path / "html"
    srv = hls_server(make_server, root, f"hls_acodec {acodec};", fragment=1)
    raw_publish(srv.rtmp_ports[0], audio)
    wait_until(lambda: "/live/s" in srv.hls.streams and srv.hls.streams["/live/s"].output.stopped, 15,
               what="hls output ended")
    pl = m3u8.loads((root / "live" / "s.m3u8").read_text())
    assert [s.uri for s in pl.segments] == ["s-0.ts", "s-1.ts", "s-2.ts"]
    assert [segment_pmts(root / "live" / s.uri) for s in pl.segments] == expected


# ---------------------------------------------------------------- hls_dts_directly off

AAC_FRAME_90K = 90000 * 1024 / 44100  # 2089.8 ticks: one 1024-sample frame at 44.1 kHz


@pytest.mark.parametrize("directly", ["on", "off"])
def test_audio_dts_directly_or_counted(make_server, procs, short_flv, tmp_path, directly):
    """ffmpeg's FLV stamps 44.1 kHz AAC frames 23 or 24 ms apart. ``on``: the segments'
    audio PTS are those milliseconds x 90 (steps of 2070 and 2160); ``off``: the 1024-sample
    grid (steps of 2089 and 2090). Video keeps the FLV timestamps either way."""
    root = tmp_path / "html"
    srv = hls_server(make_server, root, f"hls_dts_directly {directly};")
    procs(publish_args(short_flv, rtmp_url(srv))).wait(60)
    wait_until(lambda: srv.hls.streams["/live/s"].output.stopped, 15, what="hls output ended")
    pl = m3u8.loads((root / "live" / "s.m3u8").read_text())
    assert len(pl.segments) >= 3
    steps = set()
    for s in pl.segments:
        path = str(root / "live" / s.uri)
        audio = [int(p["pts"]) for p in probe_json(path, "-show_packets", "-select_streams", "a")["packets"]]
        video = [int(p["dts"]) for p in probe_json(path, "-show_packets", "-select_streams", "v")["packets"]]
        assert len(audio) > 40 and all(d % 90 == 0 for d in video)
        steps |= {b - a for a, b in zip(audio, audio[1:])}
        if directly == "off":  # on the grid from the first frame of the publish
            n = [round((pts - audio[0]) / AAC_FRAME_90K) for pts in audio]
            assert n == list(range(len(audio)))
            assert all(abs(pts - audio[0] - k * AAC_FRAME_90K) < 1.01 for k, pts in zip(n, audio))
        run = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", path, "-f", "null", "-"], capture_output=True,
                             timeout=60)
        assert run.returncode == 0 and run.stderr.strip() == b"", run.stderr[-2000:]
    assert steps == ({2070, 2160} if directly == "on" else {2089, 2090}), steps


# ---------------------------------------------------------------- hls_on_error

API = "http_api { enabled on; listen 0; }"


def stream_active(srv, url: str = "/live/s") -> bool:
    """Whether /api/v1/streams/ lists ``url`` as published."""
    status, _, body = http_get(srv.api_port, "/api/v1/streams/")
    assert status == 200
    return any(s["url"] == url and s["publish"]["active"] for s in json.loads(body)["streams"])


def flv_player(srv) -> tuple[HttpFlvPullSession, list]:
    """An HTTP-FLV player of /live/s and the video messages it got, fed by a greenlet."""
    flv = HttpFlvPullSession(f"http://127.0.0.1:{srv.http_port}/live/s.flv", read_timeout=30).start()
    got: list = []
    gevent.spawn(lambda: [got.append(m) for m in flv if m.type == VIDEO])
    return flv, got


@pytest.mark.parametrize("mode", ["ignore", "continue", "disconnect"])
def test_hls_on_error_when_the_disk_fails(make_server, procs, short_flv, tmp_path, capfd, mode):
    """``hls_path`` names a file where HLS needs a directory: its first segment cannot be
    opened. ``ignore``: HLS stops with one error line, the publish and its HTTP-FLV player go
    on; ``continue`` (a disk error is no decode error) and ``disconnect``: the publisher's
    RTMP connection is closed (ffmpeg exits) and the API no longer lists the stream."""
    blocker = tmp_path / "afile"
    blocker.write_text("a file where HLS wants a directory")
    srv = hls_server(make_server, blocker, f"hls_on_error {mode};", fragment=1, extra=API)
    ffmpeg = procs(publish_args(short_flv, rtmp_url(srv), loop=True))
    src = wait_published(srv)
    flv, got = flv_player(srv)
    wait_until(lambda: "/live/s" in srv.hls.streams and srv.hls.streams["/live/s"].output.stopped, 15,
               what="hls failed")
    assert srv.hls.streams["/live/s"].output.failed
    if mode == "ignore":
        n = len(got)
        wait_until(lambda: len(got) > n + 50, 15, what="video to the HTTP-FLV player after HLS failed")
        assert ffmpeg.poll() is None and src.publishing and stream_active(srv)
        assert flv.ended is None
    else:
        ffmpeg.wait(15)  # the server closed its RTMP connection: ffmpeg fails to write and exits
        assert ffmpeg.returncode != 0
        assert flv.wait(10) is not None  # the player's body ended with the publish
        wait_until(lambda: not stream_active(srv), 10, what="the stream gone from the API")
        assert not src.publishing
    flv.dispose()
    errors = [line for line in capfd.readouterr().err.splitlines() if "[ERROR]" in line and "hls" in line]
    assert len(errors) == 1, errors
    expected = "the publish goes on" if mode == "ignore" else "the publisher is disconnected"
    assert expected in errors[0] and f"hls_on_error {mode}" in errors[0] and "Not a directory" in errors[0]
    assert blocker.read_text().startswith("a file")


def test_dvr_errors_never_disconnect(make_server, procs, short_flv, tmp_path):
    """DVR failing under ``hls_on_error disconnect``: only DVR stops; HLS and the publish go on."""
    blocker = tmp_path / "afile"
    blocker.write_text("a file where the recording wants a directory")
    srv = make_server(vhost_extra=f"dvr {{ enabled on; dvr_path {blocker}/[app]/[stream].flv; }} "
                                  f"hls {{ enabled on; hls_path {tmp_path}/html; hls_fragment 1; hls_ctx off; "
                                  f"hls_on_error disconnect; }}")
    ffmpeg = procs(publish_args(short_flv, rtmp_url(srv), loop=True))
    src = wait_published(srv)
    wait_until(lambda: "/live/s" in srv.dvr.outputs and srv.dvr.outputs["/live/s"].stopped, 10, what="DVR failed")
    assert srv.dvr.outputs["/live/s"].failed
    listed(tmp_path / "html" / "live" / "s.m3u8", 3)
    assert ffmpeg.poll() is None and src.publishing and not srv.hls.streams["/live/s"].output.failed


def raw_frames(c: RawRtmp, start: int, seconds: float) -> int:
    """Valid-looking H.264 frames (a keyframe every 500 ms) every 40 ms from ``start`` ms, paced."""
    t = start
    while t < start + seconds * 1000:
        key = t % 500 == 0
        c.send(MediaMessage(VIDEO, t, 1, bytes([0x17 if key else 0x27, 1, 0, 0, 0, 0, 0, 0, 2,
                                                0x65 if key else 0x41, 0x88])), 6)
        t += 40
        gevent.sleep(0.005)
    return t


@pytest.mark.parametrize("mode, bad, kicked", [
    ("continue", "sequence header", False),  # swallowed: it is as large as the sequence header
    ("continue", "garbage", True),
    ("disconnect", "sequence header", True),
    ("ignore", "garbage", False),
])
def test_hls_on_error_when_a_frame_does_not_decode(make_server, tmp_path, mode, bad, kicked):
    """A raw publisher sends H.264 frames, then one HLS cannot decode: the sequence header
    again flagged as a frame (as large as the sequence header), or garbage of another size;
    then more frames."""
    root = tmp_path / "html"
    srv = hls_server(make_server, root, f"hls_on_error {mode};", fragment=1, extra=API)
    c = RawRtmp(srv.rtmp_ports[0])
    c.handshake()
    c.publish("s")
    c.send(MediaMessage(VIDEO, 0, 1, AVC_SH), 6)
    t = raw_frames(c, 0, 2.5)
    payload = AVC_SH[:1] + b"\x01" + AVC_SH[2:] if bad == "sequence header" else bytes([0x27, 1, 0, 0, 0]) + b"x" * 100
    c.send(MediaMessage(VIDEO, t, 1, payload), 6)
    closed = False
    try:
        raw_frames(c, t + 40, 2.5)
    except OSError:
        closed = True
    closed = closed or c.closed_within(3)
    out = srv.hls.streams["/live/s"].output
    assert closed == kicked
    if kicked:
        wait_until(lambda: not stream_active(srv), 10, what="the stream gone from the API")
    else:
        assert stream_active(srv)
    if mode == "ignore":
        wait_until(lambda: out.stopped, 10, what="hls stopped")
        assert out.failed and srv.sources.sources["/live/s"].publishing
    # the segments before the bad frame are listed (kicked or stopped: the open one is closed)
    wait_until(lambda: (root / "live" / "s.m3u8").exists(), 10, what="a playlist")
    before = m3u8.loads((root / "live" / "s.m3u8").read_text())
    assert sum(s.duration for s in before.segments) >= 2.0
    if not kicked and mode == "continue":  # HLS went on past the skipped frame
        assert not out.stopped and out.skipped == 1
        c.close()
        wait_until(lambda: out.stopped, 10, what="hls ended")
        final = m3u8.loads((root / "live" / "s.m3u8").read_text())
        assert sum(s.duration for s in final.segments) >= 4.5 and not out.failed
    c.close()
