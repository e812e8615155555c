"""RTMP publish and play end to end with real clients: ffmpeg, ffprobe, rtmpdump."""

from gevent import subprocess

import pytest
from helpers.media import ffprobe, flv_tags, publish_args, streams_by_type, wait_published, wait_until
from helpers.net import rtmp_url

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]


def test_publish_20s_then_ffmpeg_rtmpdump_ffprobe_play(make_server, procs, av_flv, tmp_path):
    srv = make_server()
    pub = procs(publish_args(av_flv, rtmp_url(srv)))
    wait_published(srv)
    # ffmpeg decodes every frame it gets, reporting no errors
    dec = procs(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-i", rtmp_url(srv), "-f", "null", "-"],
                stderr=subprocess.PIPE)
    # rtmpdump records a few seconds into a file
    dump = tmp_path / "dump.flv"
    rd = procs(["rtmpdump", "-q", "-r", rtmp_url(srv), "--live", "-B", "10", "-o", str(dump)])
    info = ffprobe(rtmp_url(srv))
    st = streams_by_type(info)
    assert st["video"]["codec_name"] == "h264" and st["audio"]["codec_name"] == "aac"
    assert (st["video"]["width"], st["video"]["height"]) == (640, 360)
    assert int(st["audio"]["sample_rate"]) == 44100
    assert pub.wait(40) == 0
    _, err = dec.communicate(timeout=20)
    assert dec.returncode == 0, err
    assert err.strip() == b"", err
    rd.wait(20)
    data = dump.read_bytes()
    tags = flv_tags(data)
    assert len(tags) > 100
    dinfo = streams_by_type(ffprobe(str(dump)))
    assert dinfo["video"]["codec_name"] == "h264" and dinfo["audio"]["codec_name"] == "aac"
    assert float(ffprobe(str(dump))["format"]["duration"]) > 10


def test_mid_stream_player_gets_metadata_headers_then_keyframe(make_server, procs, short_flv, tmp_path):
    srv = make_server()
    procs(publish_args(short_flv, rtmp_url(srv), loop=True))
    src = wait_published(srv)
    wait_until(lambda: src.log.last_ts >= 3100, 15, what="3.1 s of the stream")  # join in the middle of a GOP (2 s)
    dump = tmp_path / "mid.flv"
    rd = procs(["rtmpdump", "-q", "-r", rtmp_url(srv), "--live", "-B", "3", "--stop", "3", "-o", str(dump)])
    rd.wait(30)
    tags = flv_tags(dump.read_bytes())
    types = [t for t, _, _ in tags]
    assert types[:3] == [18, 8, 9] and b"onMetaData" in tags[0][2]
    first_audio = next(p for t, _, p in tags if t == 8)
    first_video = next(p for t, _, p in tags if t == 9)
    assert first_audio[:2] == b"\xaf\x00"  # AAC sequence header first
    assert first_video[:2] == b"\x17\x00"  # AVC sequence header first
    video = [p for t, _, p in tags if t == 9]
    assert video[1][:2] == b"\x17\x01"  # the first frame is a keyframe


@pytest.mark.parametrize("kind", ["audio", "video"])
def test_audio_only_and_video_only_play(make_server, procs, audio_flv, video_flv, kind):
    srv = make_server()
    src = audio_flv if kind == "audio" else video_flv
    procs(publish_args(src, rtmp_url(srv), loop=True))
    wait_until(lambda: (s := srv.sources.sources.get("/live/s")) is not None and s.publishing and s.recv_bytes > 0)
    st = streams_by_type(ffprobe(rtmp_url(srv)))
    assert set(st) == {kind}
    assert st[kind]["codec_name"] == ("aac" if kind == "audio" else "h264")


def test_second_publisher_refused_first_carries_on(make_server, procs, short_flv):
    srv = make_server()
    procs(publish_args(short_flv, rtmp_url(srv), loop=True))
    src = wait_published(srv)
    second = procs(publish_args(short_flv, rtmp_url(srv), loop=True), stderr=subprocess.PIPE)
    assert second.wait(15) != 0
    s = srv.sources.sources["/live/s"]
    before = s.recv_bytes
    wait_until(lambda: s.recv_bytes > before, 5, what="more media from the first publisher")
    assert s.publishing
    st = streams_by_type(ffprobe(rtmp_url(srv)))
    assert st["video"]["codec_name"] == "h264"
    assert src


def test_republish_same_name_plays_again(make_server, procs, short_flv):
    srv = make_server()
    first = procs(publish_args(short_flv, rtmp_url(srv)))
    wait_published(srv)
    assert first.wait(30) == 0
    wait_until(lambda: not srv.sources.sources.get("/live/s") or not srv.sources.sources["/live/s"].publishing)
    procs(publish_args(short_flv, rtmp_url(srv), loop=True))
    wait_published(srv)
    st = streams_by_type(ffprobe(rtmp_url(srv)))
    assert st["video"]["codec_name"] == "h264" and st["audio"]["codec_name"] == "aac"


def test_stream_with_token_query(make_server, procs, short_flv):
    srv = make_server()
    procs(publish_args(short_flv, rtmp_url(srv, "/live/s?token=x"), loop=True))
    wait_published(srv)
    st = streams_by_type(ffprobe(rtmp_url(srv, "/live/s?token=y")))
    assert st["video"]["codec_name"] == "h264"


def test_two_vhosts_stay_apart(make_server, procs, media_dir):
    from helpers.media import make_flv

    small = make_flv(media_dir / "small.flv", 6, size="320x180")
    big = make_flv(media_dir / "big.flv", 6, size="640x360")
    srv = make_server(extra="vhost v1.test { } vhost v2.test { }")
    procs(publish_args(small, rtmp_url(srv, "/live/s?vhost=v1.test"), loop=True))
    procs(publish_args(big, rtmp_url(srv, "/live/s?vhost=v2.test"), loop=True))
    wait_published(srv, "v1.test/live/s")
    wait_published(srv, "v2.test/live/s")
    v1 = streams_by_type(ffprobe(rtmp_url(srv, "/live/s?vhost=v1.test")))["video"]
    v2 = streams_by_type(ffprobe(rtmp_url(srv, "/live/s?vhost=v2.test")))["video"]
    assert (v1["width"], v2["width"]) == (320, 640)
    assert "/live/s" not in srv.sources.sources or not srv.sources.sources["/live/s"].publishing
