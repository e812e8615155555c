"""HTTP-FLV end to end: ffmpeg publishes over RTMP, players pull `.flv` over HTTP."""

import hashlib
from gevent import subprocess
import time

import gevent
import pytest
from helpers.flvclient import FlvPlayer, http_get
from helpers.media import ffprobe, publish_args, streams_by_type, wait_published, wait_until
from helpers.net import rtmp_url

from srspy import SERVER

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]


def flv_url(srv, path="/live/s.flv"):
    return f"http://127.0.0.1:{srv.http_port}{path}"


def test_ffprobe_and_record_over_10s(make_server, procs, av_flv, tmp_path):
    srv = make_server()
    procs(publish_args(av_flv, rtmp_url(srv)))
    wait_published(srv)
    st = streams_by_type(ffprobe(flv_url(srv)))
    assert st["video"]["codec_name"] == "h264" and st["audio"]["codec_name"] == "aac"
    assert (st["video"]["width"], st["video"]["height"]) == (640, 360)
    out = tmp_path / "rec.flv"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-i", flv_url(srv), "-t", "12", "-c", "copy", str(out)],
                   check=True, timeout=40)
    assert float(ffprobe(str(out))["format"]["duration"]) > 10


def test_response_headers_and_mid_stream_start(make_server, procs, short_flv):
    srv = make_server()
    procs(publish_args(short_flv, rtmp_url(srv), loop=True))
    src = wait_published(srv)
    wait_until(lambda: src.log.last_ts >= 3100, 15, what="3.1 s of the stream")  # join in the middle of a GOP (2 s)
    p = FlvPlayer(srv.http_port, "/live/s.flv")
    assert p.read_head() == 200
    assert p.raw_head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert p.headers["content-type"] == "video/x-flv"
    assert p.headers["transfer-encoding"] == "chunked"
    assert p.headers["connection"].lower() == "close"
    assert p.headers["server"] == SERVER
    assert "content-length" not in p.headers
    assert "access-control-allow-origin" not in p.headers
    p.pump(10, until=lambda q: sum(1 for t in q.tags if t[0] == 9) >= 30)
    assert p.flv_flags == 5
    types = [t for t, _, _ in p.tags]
    assert types[:3] == [18, 8, 9]
    assert b"onMetaData" in p.tags[0][2]
    assert p.tags[1][2][:2] == b"\xaf\x00" and p.tags[2][2][:2] == b"\x17\x00"
    video = [(ts, pl) for t, ts, pl in p.tags if t == 9]
    assert video[1][1][:2] == b"\x17\x01"
    vts = [ts for ts, _ in video[1:]]
    assert vts == sorted(vts) and vts[0] < 100  # timestamps restart near zero for this player
    p.close()


def test_cors_headers_and_preflight(make_server, procs, short_flv):
    srv = make_server()
    procs(publish_args(short_flv, rtmp_url(srv), loop=True))
    wait_published(srv)
    p = FlvPlayer(srv.http_port, "/live/s.flv", headers={"Origin": "http://example.test"})
    assert p.read_head() == 200
    assert p.headers["access-control-allow-origin"] == "*"
    assert p.headers["access-control-allow-methods"] == "*"
    p.close()
    status, h, body = http_get(srv.http_port, "/live/s.flv", method="OPTIONS", headers={"Origin": "http://example.test"})
    assert status == 200 and h["access-control-allow-origin"] == "*" and body == b""


def test_unpublish_ends_players_with_final_chunk_then_republish(make_server, procs, short_flv):
    srv = make_server()
    pub = procs(publish_args(short_flv, rtmp_url(srv), loop=True))
    wait_published(srv)
    p = FlvPlayer(srv.http_port, "/live/s.flv")
    assert p.read_head() == 200
    p.pump(10, until=lambda q: len(q.tags) > 10)
    pub.kill()
    t0 = time.monotonic()
    p.pump(5, until=lambda q: q.ended)
    assert p.ended and time.monotonic() - t0 < 1.5
    assert p.chunks[-1] == 0
    p.close()
    status, _, _ = http_get(srv.http_port, "/live/s.flv")
    assert status == 404
    procs(publish_args(short_flv, rtmp_url(srv), loop=True))
    wait_published(srv)
    st = streams_by_type(ffprobe(flv_url(srv)))
    assert st["video"]["codec_name"] == "h264"


def test_unknown_stream_is_404_at_once(make_server):
    srv = make_server()
    t0 = time.monotonic()
    status, h, body = http_get(srv.http_port, "/live/nobody.flv")
    assert status == 404 and time.monotonic() - t0 < 1.0


def test_wait_for_publisher_setting(make_server, procs, short_flv):
    srv = make_server(remux="http_remux { enabled on; wait_publisher 8; }")
    p = FlvPlayer(srv.http_port, "/live/later.flv")
    gevent.sleep(1.0)
    assert p.buf == b"" and p.status is None  # nothing sent before the stream starts
    procs(publish_args(short_flv, rtmp_url(srv, "/live/later"), loop=True))
    assert p.read_head() == 200
    p.pump(10, until=lambda q: any(t == 9 and pl[:2] == b"\x17\x01" for t, _, pl in q.tags))
    p.close()
    t0 = time.monotonic()
    srv2 = make_server(remux="http_remux { enabled on; wait_publisher 1; }")
    status, _, _ = http_get(srv2.http_port, "/live/never.flv", timeout=5)
    assert status == 404 and 0.9 < time.monotonic() - t0 < 3


@pytest.mark.parametrize("kind, flags", [("audio", 4), ("video", 1)])
def test_audio_only_video_only_flags(make_server, procs, audio_flv, video_flv, kind, flags):
    srv = make_server()
    procs(publish_args(audio_flv if kind == "audio" else video_flv, rtmp_url(srv), loop=True))
    src = wait_published(srv)
    wait_until(lambda: len(src.log) >= 10, 10, what="frames in the source")  # the player guesses from them
    p = FlvPlayer(srv.http_port, "/live/s.flv")
    assert p.read_head() == 200
    p.pump(10, until=lambda q: len(q.tags) > 20)
    assert p.flv_flags == flags
    assert {t for t, _, _ in p.tags} - {18} == {8 if kind == "audio" else 9}
    p.close()


def test_100_players_receive_identical_payloads(make_server, procs, short_flv):
    srv = make_server()
    procs(publish_args(short_flv, rtmp_url(srv), loop=True))
    wait_published(srv)
    players = [FlvPlayer(srv.http_port, "/live/s.flv") for _ in range(100)]
    for p in players:
        assert p.read_head() == 200

    def pump(p):
        p.pump(20, until=lambda q: sum(1 for t in q.tags if t[0] == 9) >= 120)

    gevent.joinall([gevent.spawn(pump, p) for p in players], timeout=40, raise_error=True)

    def from_keyframe(p):
        tags = [(t, pl) for t, _, pl in p.tags if t in (8, 9)]
        i = next(i for i, (t, pl) in enumerate(tags) if t == 9 and pl[:2] == b"\x17\x01")
        return [hashlib.sha1(pl).hexdigest() for t, pl in tags[i:] if t == 9]

    seqs = [from_keyframe(p) for p in players]
    shortest = min(len(s) for s in seqs)
    assert shortest >= 60
    # every player's video sequence is a contiguous run of the same published sequence
    ref = max(seqs, key=len)
    for s in seqs:
        start = ref.index(s[0])
        assert ref[start : start + len(s)] == s[: len(ref) - start]
    for p in players:
        p.close()


def test_wsgi_app_under_prefix_while_streaming(make_server, procs, short_flv):
    from srspy.http.wsgi import WsgiHandler

    def app(environ, start_response):
        body = f"admin {environ['PATH_INFO']} {environ['SCRIPT_NAME']}".encode()
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]

    srv = make_server()
    srv.http.mux.handle("/admin/", WsgiHandler(app, prefix="/admin"))
    procs(publish_args(short_flv, rtmp_url(srv), loop=True))
    wait_published(srv)
    p = FlvPlayer(srv.http_port, "/live/s.flv")
    assert p.read_head() == 200
    status, h, body = http_get(srv.http_port, "/admin/users?x=1")
    assert status == 200 and body == b"admin /users /admin"
    n = len(p.tags)
    p.pump(5, until=lambda q: len(q.tags) > n + 10)
    p.close()


def test_static_files_and_escapes(make_server, tmp_path):
    srv = make_server()
    (tmp_path / "html" / "index.html").write_text("<h1>srspy</h1>")
    (tmp_path / "secret.txt").write_text("TOP-SECRET-CONTENT")
    status, h, body = http_get(srv.http_port, "/index.html")
    assert status == 200 and body == b"<h1>srspy</h1>" and h["content-type"].startswith("text/html")
    for path in ("/../secret.txt", "/%2e%2e/secret.txt", "/a/..%2f..%2fsecret.txt", "/%2E%2E/%2E%2E/etc/passwd"):
        status, h, body = http_get(srv.http_port, path)
        assert status in (400, 403, 404), path
        assert b"TOP-SECRET-CONTENT" not in body and b"root:" not in body


def test_vhost_stream_mounted_through_host_header(make_server, procs, short_flv):
    srv = make_server(extra="vhost v1.test { http_remux { enabled on; mount [vhost]/[app]/[stream].flv; } }")
    procs(publish_args(short_flv, rtmp_url(srv, "/live/s?vhost=v1.test"), loop=True))
    wait_published(srv, "v1.test/live/s")
    assert http_get(srv.http_port, "/live/s.flv")[0] == 404  # not the default vhost's stream
    p = FlvPlayer(srv.http_port, "/live/s.flv", host="v1.test")
    assert p.read_head() == 200
    p.pump(10, until=lambda q: len(q.tags) > 5)
    assert p.flv_flags == 5
    p.close()
