"""HLS (app/hls.py): ffmpeg publishes over RTMP; the segments and the playlist on disk are
checked with ffprobe and the m3u8 package, ffmpeg plays the live m3u8 over HTTP."""

from __future__ import annotations

import json
import socket
import os
import time

import gevent
import m3u8
import pytest
from gevent import subprocess
from helpers.flvclient import http_get
from helpers.media import publish_args, wait_published, wait_until
from helpers.net import rtmp_url

from srspy.config import ConfigError, load_config

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(150)]


def hls_block(path, fragment=2, window=6, dispose=120, cleanup="on", ctx="on") -> str:
    return (f"hls {{ enabled on; hls_path {path}; hls_fragment {fragment}; hls_window {window}; "
            f"hls_dispose {dispose}; hls_cleanup {cleanup}; hls_ctx {ctx}; }}")


def probe_json(path: str, *extra) -> dict:
    out = subprocess.run(["ffprobe", "-v", "error", "-of", "json", *extra, path], check=True, capture_output=True,
                         timeout=60)
    return json.loads(out.stdout)


class PlaylistWatch:
    """Every distinct text of a playlist file while it is written."""

    def __init__(self, path):
        self.path = path
        self.texts: list[str] = []
        self.g = gevent.spawn(self._run)

    def _run(self):
        while True:
            try:
                text = open(self.path).read()
            except FileNotFoundError:
                text = None
            if text and (not self.texts or self.texts[-1] != text):
                self.texts.append(text)
            gevent.sleep(0.1)

    def stop(self):
        self.g.kill()


def check_segment(path: str, extinf: float) -> None:
    info = probe_json(path, "-show_streams", "-show_format")
    codecs = sorted(s["codec_name"] for s in info["streams"])
    assert codecs == ["aac", "h264"], (path, codecs)
    first = probe_json(path, "-show_packets", "-select_streams", "v", "-read_intervals", "%+#1")["packets"][0]
    assert first["flags"].startswith("K"), (path, first)
    pkts = probe_json(path, "-show_packets", "-select_streams", "v")["packets"]
    span = (float(pkts[-1]["dts_time"]) - float(pkts[0]["dts_time"]))
    assert abs(span - extinf) <= 0.1, (path, span, extinf)


def test_hls_live_segments_playlist_and_http(make_server, procs, av_flv, tmp_path):
    root = tmp_path / "hlsroot"  # not http_server.dir: served by the app's mount
    srv = make_server(vhost_extra=hls_block(root), extra="http_api { enabled on; listen 0; }")
    watch = PlaylistWatch(root / "live" / "s.m3u8")
    pub = procs(publish_args(av_flv, rtmp_url(srv)))
    wait_published(srv)
    wait_until(lambda: (root / "live" / "s.m3u8").exists(), 15, what="first playlist")
    # hls_ctx: the first request opens a session and gets a master playlist pointing at it
    status, headers, body = http_get(srv.http_port, "/live/s.m3u8?k=v")
    assert status == 200 and headers["content-type"] == "application/vnd.apple.mpegurl"
    master = m3u8.loads(body.decode())
    assert master.is_variant and len(master.playlists) == 1
    variant = master.playlists[0].uri
    ctx = variant.split("hls_ctx=")[1].split("&")[0]
    assert variant == f"/live/s.m3u8?hls_ctx={ctx}&k=v" and len(ctx) == 8
    status, headers, body = http_get(srv.http_port, variant)
    assert status == 200 and headers["content-type"] == "application/vnd.apple.mpegurl"
    assert headers["cache-control"] == "no-cache"
    media = m3u8.loads(body.decode())
    assert media.segments and all(s.uri.endswith(f".ts?hls_ctx={ctx}") for s in media.segments)
    status, _, api = http_get(srv.api_port, "/api/v1/clients/")
    clients = [c for c in json.loads(api)["clients"] if c["type"] == "hls-play"]
    assert [(c["id"], c["url"], c["publish"]) for c in clients] == [(ctx, "/live/s", False)]
    status, _, api = http_get(srv.api_port, "/api/v1/vhosts/")
    assert [v["hls"] for v in json.loads(api)["vhosts"]] == [{"enabled": True, "fragment": 2.0}]
    # a session kicked through the API gets 404
    status, _, _ = http_get(srv.api_port, f"/api/v1/clients/{ctx}", method="DELETE")
    assert status == 200
    assert http_get(srv.http_port, variant)[0] == 404
    first_uri = media.segments[0].uri
    status, headers, seg = http_get(srv.http_port, f"/live/{first_uri}")
    assert status == 200 and headers["content-type"] == "video/MP2T" and headers["cache-control"].startswith("max-age=")
    assert seg[:1] == b"\x47" and len(seg) % 188 == 0
    # ffmpeg plays 6 s of the live playlist over HTTP without an error
    play = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", f"http://127.0.0.1:{srv.http_port}/live/s.m3u8",
                           "-t", "6", "-f", "null", "-"], capture_output=True, timeout=60)
    assert play.returncode == 0 and play.stderr.strip() == b"", play.stderr[-2000:]
    pub.wait(60)
    wait_until(lambda: srv.hls.streams["/live/s"].output.stopped, 10, what="hls output ended")
    watch.stop()
    # every playlist: version 3, one target duration, media sequence never going back
    pls = [m3u8.loads(t) for t in watch.texts]
    assert len(pls) >= 6
    assert {p.version for p in pls} == {3}
    assert {p.target_duration for p in pls} == {2}
    seqs = [p.media_sequence for p in pls]
    assert seqs == sorted(seqs) and seqs[-1] >= 3
    # the final playlist: the window (6 s plus one segment), files of the listed segments only
    final = m3u8.loads((root / "live" / "s.m3u8").read_text())
    total = sum(s.duration for s in final.segments)
    assert 6 < total <= 6 + 2.5
    listed = {s.uri for s in final.segments}
    on_disk = {p for p in os.listdir(root / "live") if p.endswith(".ts")}
    assert on_disk == listed, "hls_cleanup keeps exactly the listed segments"
    assert not [p for p in os.listdir(root / "live") if p.endswith(".tmp")]
    for s in final.segments:
        assert s.uri == f"s-{s.uri.split('-')[1]}" and s.uri.endswith(".ts")
        assert s.duration <= 2 + 0.05 or s is final.segments[-1]
        check_segment(str(root / "live" / s.uri), s.duration)
    # media sequences: consecutive segment numbers
    numbers = [int(s.uri[2:-3]) for s in final.segments]
    assert numbers == list(range(final.media_sequence, final.media_sequence + len(numbers)))


def test_hls_dispose_and_republish(make_server, procs, short_flv, tmp_path):
    root = tmp_path / "html"  # http_server.dir itself
    srv = make_server(vhost_extra=hls_block(root, fragment=1, window=20, dispose=2))
    m3u8_path = root / "live" / "s.m3u8"
    procs(publish_args(short_flv, rtmp_url(srv))).wait(60)
    wait_until(lambda: srv.hls.streams["/live/s"].output.stopped, 10, what="hls output ended")
    first = m3u8.loads(m3u8_path.read_text())
    n1 = len(first.segments)
    assert n1 >= 3 and first.media_sequence == 0  # 6 s, a keyframe every 2 s
    # a republish within hls_dispose continues the playlist, with a discontinuity
    procs(publish_args(short_flv, rtmp_url(srv))).wait(60)
    wait_until(lambda: srv.hls.streams["/live/s"].output.stopped, 10, what="hls output ended")
    text = m3u8_path.read_text()
    second = m3u8.loads(text)
    assert second.media_sequence == 0 and len(second.segments) > n1
    assert second.segments[n1].discontinuity and not any(s.discontinuity for s in second.segments[1:n1])
    assert second.segments[n1].uri == f"s-{n1}.ts"
    status, headers, _ = http_get(srv.http_port, "/live/s.m3u8")
    assert status == 200 and headers["cache-control"] == "no-cache"
    # hls_dispose seconds later the playlist and every segment are gone
    t0 = time.monotonic()
    wait_until(lambda: not m3u8_path.exists(), 6, what="playlist disposed")
    assert time.monotonic() - t0 >= 1.0
    wait_until(lambda: not [p for p in os.listdir(root / "live")], 3, what="segments disposed")
    # after that a publish starts at 0 again
    procs(publish_args(short_flv, rtmp_url(srv)))
    wait_until(lambda: m3u8_path.exists(), 15, what="new playlist")
    fresh = m3u8.loads(m3u8_path.read_text())
    assert fresh.media_sequence == 0 and fresh.segments[0].uri == "s-0.ts"


def test_hls_unsafe_stream_name_writes_nothing_outside(make_server, procs, short_flv, tmp_path):
    root = tmp_path / "deep" / "hls"
    srv = make_server(vhost_extra=hls_block(root))
    args = publish_args(short_flv, rtmp_url(srv, "/live"), loop=True)
    args[-1:-1] = ["-rtmp_playpath", "../../evil"]
    procs(args)
    src = wait_until(lambda: next((s for s in srv.sources.sources.values() if s.publishing), None), 10,
                     what="publish")
    assert ".." in src.req.stream
    gevent.sleep(3)  # more than a fragment: a segment would have been cut
    assert src.publishing, "the publish goes on"
    found = [os.path.join(d, f) for d, _, fs in os.walk(tmp_path) for f in fs if "evil" in f]
    assert found == []
    assert not root.exists() or not any(root.rglob("*"))


def test_hls_with_http_ts_is_a_config_error():
    text = ("listen 1935;\nvhost v {\n    hls { enabled on; }\n"
            "    http_remux { enabled on; mount [vhost]/[app]/[stream].ts; }\n}\n")
    with pytest.raises(ConfigError) as e:
        load_config(text=text, name="x.conf", env={})
    assert str(e.value) == ('x.conf:4: vhost "v": hls and the http_remux mount "[vhost]/[app]/[stream].ts" (HTTP-TS) '
                            'cannot be enabled together; turn one of them off')
    # either one alone is fine
    load_config(text=text.replace("hls { enabled on; }", "hls { enabled off; }"), name="x.conf", env={})
    load_config(text=text.replace(".ts;", ".flv;"), name="x.conf", env={})


ON_HLS_FIELDS = ["server_id", "service_id", "action", "client_id", "ip", "vhost", "app", "tcUrl", "stream", "param",
                 "duration", "cwd", "file", "url", "m3u8", "m3u8_url", "seq_no", "stream_url", "stream_id"]


def test_on_hls_hook_per_listed_segment(make_server, procs, short_flv, tmp_path, hooks):
    root = tmp_path / "html"
    notify = hooks.url("/notify/[server_id]/[app]/[stream]?ts=[ts_url]&p=[param]")
    srv = make_server(vhost_extra=hls_block(root, fragment=1, window=20) +
                      f' http_hooks {{ enabled on; on_hls {hooks.url("/ok")}; on_hls_notify "{notify}"; }}')
    procs(publish_args(short_flv, rtmp_url(srv, "/live/s?k=v"))).wait(60)
    wait_until(lambda: srv.hls.streams["/live/s"].output.stopped, 10, what="hls output ended")
    final = m3u8.loads((root / "live" / "s.m3u8").read_text())
    wait_until(lambda: len(hooks.events("on_hls")) == len(final.segments), 10, what="an on_hls per segment")
    evs = hooks.events("on_hls")
    for ev, seg in zip(evs, final.segments):
        # stream_id while the stream is in the statistics (the last segment closes after unpublish)
        assert list(ev) in (ON_HLS_FIELDS, ON_HLS_FIELDS[:-1])
        assert ev["action"] == "on_hls" and ev["app"] == "live" and ev["stream"] == "s" and ev["param"] == "?k=v"
        assert ev["vhost"] == "__defaultVhost__" and ev["client_id"] and ev["stream_url"] == "/live/s"
        assert ev["url"] == f"live/{seg.uri}" and ev["m3u8_url"] == "live/s.m3u8"
        assert ev["file"] == os.path.join(str(root), "live", seg.uri) and os.path.isfile(ev["file"])
        assert ev["m3u8"] == os.path.join(str(root), "live", "s.m3u8") and ev["cwd"] == os.getcwd()
        assert ev["seq_no"] == int(seg.uri[2:-3]) and abs(ev["duration"] - seg.duration) < 0.0015
    assert [ev["seq_no"] for ev in evs] == list(range(len(evs)))
    assert len({ev["client_id"] for ev in evs}) == 1
    assert list(evs[0]) == ON_HLS_FIELDS
    # on_hls_notify: a GET per segment, the template's variables filled
    wait_until(lambda: len(hooks.gets) == len(final.segments), 10, what="an on_hls_notify per segment")
    sid = evs[0]["server_id"]
    assert sorted(hooks.gets) == sorted(f"/notify/{sid}/live/s?ts=live/{s.uri}&p=?k=v" for s in final.segments)


def looping_hls(make_server, procs, flv, root, fragment: int, segments: int, more: str):
    """A server whose HLS (``more`` directives added, no hls_ctx) has listed ``segments``
    segments of ``flv`` published in a loop."""
    srv = make_server(vhost_extra=hls_block(root, fragment=fragment, window=60, ctx="off").replace(
        "enabled on;", f"enabled on; {more}"))
    procs(publish_args(flv, rtmp_url(srv), loop=True))
    m3u8_path = root / "live" / "s.m3u8"
    wait_until(lambda: m3u8_path.exists() and len(m3u8.loads(m3u8_path.read_text()).segments) >= segments, 30,
               what=f"{segments} segments")
    return srv, m3u8_path


def test_hls_fmp4_segments(make_server, procs, short_flv, tmp_path):
    root = tmp_path / "html"
    srv, _ = looping_hls(make_server, procs, short_flv, root, 2, 2, "hls_use_fmp4 on;")
    status, headers, body = http_get(srv.http_port, "/live/s.m3u8")
    assert status == 200
    pl = m3u8.loads(body.decode())
    assert pl.version == 6 and pl.target_duration == 2
    assert [m.uri for m in pl.segment_map] == ["s-init.mp4"]
    assert "#EXT-X-MAP:URI=\"s-init.mp4\"" in body.decode()
    init = (root / "live" / "s-init.mp4").read_bytes()
    assert init[4:8] == b"ftyp"
    for i, s in enumerate(pl.segments):
        assert s.uri == f"s-{i}.m4s"
        data = (root / "live" / s.uri).read_bytes()
        assert data[4:8] == b"moof"
        whole = tmp_path / f"whole-{i}.mp4"
        whole.write_bytes(init + data)
        check_segment(str(whole), s.duration)
    status, headers, _ = http_get(srv.http_port, f"/live/{pl.segments[0].uri}")
    assert status == 200 and headers["content-type"] == "video/iso.segment" and headers["cache-control"].startswith("max-age=")
    play = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", f"http://127.0.0.1:{srv.http_port}/live/s.m3u8",
                           "-t", "4", "-f", "null", "-"], capture_output=True, timeout=60)
    assert play.returncode == 0 and play.stderr.strip() == b"", play.stderr[-2000:]


def test_hls_ctx_sessions_refused_and_idle(make_server, procs, short_flv, tmp_path, hooks):
    root = tmp_path / "html"
    srv = make_server(vhost_extra=hls_block(root, fragment=1, window=1) +
                      f" http_hooks {{ enabled on; on_play {hooks.url('/ok')}; on_stop {hooks.url('/ok')}; }}")
    srv.hooks.register("on_play", lambda ev: "deny" not in ev["param"])
    procs(publish_args(short_flv, rtmp_url(srv), loop=True))
    wait_until(lambda: (root / "live" / "s.m3u8").exists(), 15, what="first playlist")
    status, _, body = http_get(srv.http_port, "/live/s.m3u8?deny=1")
    assert status == 403 and b"refused" in body
    assert not [c for c in srv.stat.dumps_clients(0, 100) if c["type"] == "hls-play"]
    status, _, body = http_get(srv.http_port, "/live/s.m3u8")
    assert status == 200
    ctx = body.decode().split("hls_ctx=")[1].split()[0]
    (play,) = hooks.events("on_play")
    assert play["client_id"] == ctx and play["stream"] == "s" and play["app"] == "live"
    assert [c["id"] for c in srv.stat.dumps_clients(0, 100) if c["type"] == "hls-play"] == [ctx]
    # idle for more than 2 * hls_window: the session ends, with on_stop
    wait_until(lambda: not srv.stat.find_client(ctx), 15, what="idle session ended")
    wait_until(lambda: hooks.events("on_stop"), 5, what="on_stop")
    assert [ev["client_id"] for ev in hooks.events("on_stop")] == [ctx]
    # an unknown id is taken as the session's id (a player that comes back)
    status, _, body = http_get(srv.http_port, f"/live/s.m3u8?hls_ctx={ctx}")
    assert status == 200 and f"hls_ctx={ctx}" in body.decode() and srv.stat.find_client(ctx)


def test_hls_unwritable_path_stops_only_hls(make_server, procs, short_flv, tmp_path):
    """hls_on_error ignore (tests/e2e/test_hls_directives_e2e.py has the other modes)."""
    blocker = tmp_path / "afile"
    blocker.write_text("a file where HLS wants a directory")
    srv = make_server(vhost_extra=hls_block(blocker, fragment=1).replace("enabled on;", "enabled on; hls_on_error ignore;"))
    procs(publish_args(short_flv, rtmp_url(srv), loop=True))
    src = wait_published(srv)
    wait_until(lambda: "/live/s" in srv.hls.streams and srv.hls.streams["/live/s"].output.stopped, 10,
               what="hls failed")
    assert srv.hls.streams["/live/s"].output.failed
    end = src.log.end
    wait_until(lambda: src.log.end > end + 50, 10, what="the publish goes on")
    assert src.publishing and blocker.read_text().startswith("a file")


def test_hls_keys_aes128(make_server, procs, short_flv, tmp_path):
    from srspy.hls.crypto import decrypt_segment

    root = tmp_path / "html"
    srv, m3u8_path = looping_hls(make_server, procs, short_flv, root, 1, 3, "hls_keys on; hls_fragments_per_key 2;")
    pl = m3u8.loads(m3u8_path.read_text())
    keys = [(s.key.uri, s.key.iv) if s.key else None for s in pl.segments]
    assert keys[0] == ("s-0.key", keys[0][1]) and keys[2][0] == "s-2.key"
    assert keys[1] == keys[0] and keys[0][1] != keys[2][1]  # seg 1 goes on with key 0; a new IV with key 2
    assert m3u8_path.read_text().count("#EXT-X-KEY:METHOD=AES-128") == len({k for k in keys})
    for s in pl.segments[:3]:
        key = (root / "live" / s.key.uri).read_bytes()
        assert len(key) == 16
        data = (root / "live" / s.uri).read_bytes()
        assert len(data) % 16 == 0
        plain = decrypt_segment(data, key, bytes.fromhex(s.key.iv[2:]))
        assert plain[:1] == b"\x47" and len(plain) % 188 == 0 and plain[:188] != data[:188]
        clear = tmp_path / f"clear-{s.uri}"
        clear.write_bytes(plain)
        check_segment(str(clear), s.duration)
    play = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-allowed_extensions", "ALL",
                           "-i", f"http://127.0.0.1:{srv.http_port}/live/s.m3u8", "-t", "3", "-f", "null", "-"],
                          capture_output=True, timeout=60)
    assert play.returncode == 0 and play.stderr.strip() == b"", play.stderr[-2000:]


def _response(sock, buf: bytearray, head_only: bool = False):
    """One HTTP response read off ``sock`` (Content-Length framed): status, headers, body."""
    while b"\r\n\r\n" not in buf:
        data = sock.recv(65536)
        assert data, "closed before a response"
        buf += data
    head, _, rest = bytes(buf).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v for k, _, v in (line.partition(": ") for line in lines[1:])}
    size = 0 if head_only else int(headers["content-length"])
    while len(rest) < size:
        data = sock.recv(65536)
        assert data, "closed in the middle of a body"
        rest += data
    buf[:] = rest[size:]
    return int(lines[0].split()[1]), headers, rest[:size]


def test_hls_playlist_and_segments_over_one_keep_alive_connection(make_server, procs, short_flv, tmp_path):
    """Playlists and segments go over one connection, and no response says Connection: close
    (a browser would open a new connection for the next request); with hls_ctx off the
    playlist is the one the segmenter last wrote, answered from memory."""
    root = tmp_path / "html"
    srv, m3u8_path = looping_hls(make_server, procs, short_flv, root, 1, 2, "")
    state = srv.hls.streams["/live/s"]
    sock = socket.create_connection(("127.0.0.1", srv.http_port), timeout=10)
    buf = bytearray()
    seen = []
    for _ in range(3):  # the segmenter may list a segment between the answer and the look
        sock.sendall(b"GET /live/s.m3u8 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        status, headers, body = _response(sock, buf)
        seen.append(headers)
        assert status == 200 and headers["content-type"] == "application/vnd.apple.mpegurl"
        assert headers["cache-control"] == "no-cache" and headers["content-length"] == str(len(body))
        if body == state.m3u8_bytes:
            break
    assert body == state.m3u8_bytes
    uri = m3u8.loads(body.decode()).segments[-1].uri
    sock.sendall(f"GET /live/{uri} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    status, headers, seg = _response(sock, buf)
    seen.append(headers)
    assert status == 200 and headers["content-type"] == "video/MP2T" and seg == (root / "live" / uri).read_bytes()
    sock.sendall(b"HEAD /live/s.m3u8 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    status, headers, _ = _response(sock, buf, head_only=True)
    seen.append(headers)
    assert status == 200 and int(headers["content-length"]) > 0
    # a range of the playlist is the file's (the static file server answers it)
    sock.sendall(b"GET /live/s.m3u8 HTTP/1.1\r\nHost: 127.0.0.1\r\nRange: bytes=0-6\r\n\r\n")
    status, headers, body = _response(sock, buf)
    seen.append(headers)
    assert (status, body) == (206, b"#EXTM3U")
    # HTTP/1.0 with keep-alive is told Keep-Alive, and kept
    sock.sendall(f"GET /live/{uri} HTTP/1.0\r\nConnection: keep-alive\r\n\r\n".encode())
    status, headers, seg10 = _response(sock, buf)
    seen.append(headers)
    assert status == 200 and seg10 == seg
    assert [h["connection"] for h in seen] == ["Keep-Alive"] * len(seen)
    http_conns = [c for c in srv.conns.values() if type(c).__name__ == "HttpConn"]
    assert len(http_conns) == 1 and http_conns[0].requests == len(seen)
    sock.close()
