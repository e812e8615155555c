"""Low-latency HLS (app/llhls.py): ffmpeg publishes over RTMP with ``hls_low_latency on``;
the playlist served from memory is parsed with the m3u8 package, blocking reloads are timed,
and the parts, after the init segment, are decoded by ffmpeg."""

from __future__ import annotations

import json
import time

import gevent
import m3u8
import pytest
from gevent import subprocess
from helpers.flvclient import http_get
from helpers.hookserver import HookServer
from helpers.media import publish_args, wait_published, wait_until
from helpers.net import rtmp_url

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


def ll_block(root, part=0.2, fragment=2, ctx="off", window=10) -> str:
    """The playlist's mechanics are tested without sessions (``hls_ctx off``); the
    sessions' tests turn them on."""
    return (f"hls {{ enabled on; hls_path {root}; hls_fragment {fragment}; hls_window {window}; "
            f"hls_low_latency on; hls_part_duration {part}; hls_ctx {ctx}; }}")


def get_playlist(port: int, query: str = "", timeout: float = 10):
    status, headers, body = http_get(port, "/live/s.m3u8" + query, timeout=timeout)
    return status, headers, body.decode(errors="replace")


@pytest.fixture
def ll_server(make_server, procs, short_flv, tmp_path):
    srv = make_server(vhost_extra=ll_block(tmp_path / "html"))
    procs(publish_args(short_flv, rtmp_url(srv), loop=True))
    wait_published(srv)
    wait_until(lambda: get_playlist(srv.http_port, timeout=2)[0] == 200, 15, what="the first playlist")
    return srv


def test_llhls_playlist_tags_blocking_reload_and_parts(ll_server, tmp_path):
    port = ll_server.http_port
    status, headers, text = get_playlist(port)
    assert status == 200 and headers["content-type"] == "application/vnd.apple.mpegurl"
    assert headers["cache-control"] == "no-cache"
    pl = m3u8.loads(text)
    assert pl.version >= 6 and pl.target_duration == 2
    assert pl.server_control.can_block_reload == "YES"
    assert abs(pl.server_control.part_hold_back - 0.6) < 1e-6
    assert abs(pl.part_inf.part_target - 0.2) < 1e-6
    assert pl.segment_map and pl.segment_map[0].uri == "s-init.mp4"
    assert "#EXT-X-PROGRAM-DATE-TIME:" in text
    assert all(s.program_date_time is not None for s in pl.segments)
    assert text.count("#EXT-X-PRELOAD-HINT:") == 1
    assert pl.preload_hint.hint_type == "PART" and pl.preload_hint.uri.startswith("s.parts/")
    # parts are listed for the newest segments and the open one; each about 200 ms
    parts = [p for s in pl.segments for p in s.parts]
    assert parts, text
    # within PART-TARGET, and at least 85% of it but for a segment's last part (RFC 8216bis)
    for s in pl.segments:
        assert all(p.duration <= 0.2 for p in s.parts), [p.duration for p in s.parts]
        assert all(p.duration >= 0.17 for p in s.parts[:-1]), [p.duration for p in s.parts]
    # the open segment's parts: the last playlist entry with no URI
    msn_open = pl.media_sequence + len([s for s in pl.segments if s.uri])
    open_parts = [p for s in pl.segments if not s.uri for p in s.parts]

    # blocking reload: the next part is answered only when it exists
    want_part = len(open_parts) + 1  # one beyond the hinted one
    t0 = time.monotonic()
    status, _, text2 = get_playlist(port, f"?_HLS_msn={msn_open}&_HLS_part={want_part}")
    waited = time.monotonic() - t0
    assert status == 200, text2
    pl2 = m3u8.loads(text2)
    got_msn = pl2.media_sequence + len([s for s in pl2.segments if s.uri])
    got_open = [p for s in pl2.segments if not s.uri for p in s.parts]
    # the segment got that part, or it closed (and the next one is open)
    assert got_msn > msn_open or len(got_open) > want_part, text2
    assert 0.15 <= waited <= 2.5, waited  # about two parts of 200 ms (a segment end comes sooner)
    # a future segment too far ahead: 400; nonsense: 400
    assert get_playlist(port, f"?_HLS_msn={msn_open + 5}")[0] == 400
    assert get_playlist(port, f"?_HLS_msn={msn_open}&_HLS_part=500")[0] == 400
    assert get_playlist(port, "?_HLS_part=1")[0] == 400
    assert get_playlist(port, "?_HLS_msn=x")[0] == 400
    # an old msn is answered at once
    t0 = time.monotonic()
    assert get_playlist(port, f"?_HLS_msn={pl.media_sequence}")[0] == 200
    assert time.monotonic() - t0 < 0.5

    # the preload-hinted part: the request blocks until the part exists
    pl3 = m3u8.loads(get_playlist(port)[2])
    hint = pl3.preload_hint.uri
    t0 = time.monotonic()
    status, headers, hinted = http_get(port, "/live/" + hint, timeout=10)
    assert status == 200 and headers["content-type"] == "video/mp4" and hinted[4:8] == b"moof"
    assert time.monotonic() - t0 < 1.0
    assert http_get(port, "/live/s.parts/999999.0.m4s")[0] == 404
    assert http_get(port, "/live/s.parts/../s.m3u8")[0] in (400, 404)

    # every listed part of the closed segments, after the init segment, decodes
    status, _, init = http_get(port, "/live/s-init.mp4")
    assert status == 200 and init[4:8] == b"ftyp"
    pl4 = m3u8.loads(get_playlist(port)[2])
    closed = [s for s in pl4.segments if s.uri and s.parts]
    assert closed
    blob = bytearray(init)
    n_parts = 0
    for s in closed:
        for p in s.parts:
            status, _, data = http_get(port, "/live/" + p.uri)
            assert status == 200, p.uri
            blob += data
            n_parts += 1
    out = tmp_path / "parts.mp4"
    out.write_bytes(bytes(blob))
    dec = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(out), "-f", "null", "-"],
                         capture_output=True, timeout=60)
    assert dec.returncode == 0 and dec.stderr.strip() == b"", dec.stderr[-2000:]
    info = json.loads(subprocess.run(["ffprobe", "-v", "error", "-of", "json", "-show_streams", "-show_format",
                                      str(out)], capture_output=True, timeout=60, check=True).stdout)
    assert sorted(s["codec_name"] for s in info["streams"]) == ["aac", "h264"]
    total = sum(s.duration for s in closed)
    assert abs(float(info["format"]["duration"]) - total) < 0.3, (info["format"]["duration"], total)
    # a segment's parts are the segment on disk
    seg = closed[-1]
    on_disk = (tmp_path / "html" / "live" / seg.uri).read_bytes()
    assert on_disk == b"".join(http_get(port, "/live/" + p.uri)[2] for p in seg.parts)


def test_llhls_memory_bound_end_and_dispose(make_server, procs, short_flv, tmp_path):
    """Parts of at most PART_SEGMENTS closed segments plus the open one stay in memory; after
    the unpublish a blocking reload for the next segment gets 503 after three target
    durations; hls_dispose removes the playlist and the parts from the HTTP server."""
    from srspy.app.llhls import PART_SEGMENTS

    root = tmp_path / "html"
    srv = make_server(vhost_extra=ll_block(root).replace("hls_low_latency on;", "hls_low_latency on; hls_dispose 8;"))
    pub = procs(publish_args(short_flv, rtmp_url(srv)))
    wait_published(srv)
    ll = wait_until(lambda: (st := srv.hls.streams.get("/live/s")) and st.ll, 10, what="the stream's parts")
    sizes = []
    while pub.poll() is None:
        sizes.append(len(ll.parts))
        gevent.sleep(0.2)  # sampling while the stream runs
    assert max(sizes) <= PART_SEGMENTS + 1 and max(sizes) >= 2, sizes
    wait_until(lambda: srv.hls.streams["/live/s"].output.stopped, 10, what="hls output ended")
    status, _, text = get_playlist(srv.http_port)
    assert status == 200
    pl = m3u8.loads(text)
    after = pl.media_sequence + len([s for s in pl.segments if s.uri])
    last_part = [s for s in pl.segments if s.uri][-1].parts[-1].uri
    t0 = time.monotonic()
    assert get_playlist(srv.http_port, f"?_HLS_msn={after}&_HLS_part=1", timeout=15)[0] == 503
    assert 5.5 <= time.monotonic() - t0 <= 8, "three target durations of 2 s"
    assert http_get(srv.http_port, "/live/" + last_part)[0] == 200
    wait_until(lambda: "/live/s" not in srv.hls.streams, 12, what="disposed")
    assert get_playlist(srv.http_port)[0] == 404
    assert http_get(srv.http_port, "/live/" + last_part)[0] == 404


# -- hls_ctx play sessions ----------------------------------------------------------------------

API = "http_api { enabled on; listen 0; }"


@pytest.fixture
def hooks():
    hs = HookServer()
    yield hs
    hs.close()


def hls_clients(srv) -> list[dict]:
    status, _, body = http_get(srv.api_port, "/api/v1/clients/")
    assert status == 200
    return [c for c in json.loads(body)["clients"] if c["type"] == "hls-play"]


def open_msn(pl) -> int:
    """The media sequence number of the open segment (the entry with parts and no URI)."""
    return pl.media_sequence + len([s for s in pl.segments if s.uri])


def test_llhls_ctx_sessions_redirect_api_hooks_and_kick(make_server, procs, short_flv, tmp_path, hooks):
    root = tmp_path / "html"
    srv = make_server(vhost_extra=ll_block(root, ctx="on", window=2)
                      + f" http_hooks {{ enabled on; on_play {hooks.url('/ok')}; on_stop {hooks.url('/ok')}; }}",
                      extra=API)
    procs(publish_args(short_flv, rtmp_url(srv), loop=True))
    wait_published(srv)
    wait_until(lambda: (root / "live" / "s.m3u8").exists(), 15, what="the first segment")
    port = srv.http_port
    # no session named: a new one, and a redirect to it keeping the query
    status, headers, _ = get_playlist(port, "?token=a")
    assert status == 302, headers
    location = headers["location"]
    ctx = location.split("hls_ctx=")[1].split("&")[0]
    assert location == f"/live/s.m3u8?hls_ctx={ctx}&token=a" and len(ctx) == 8
    assert [(c["id"], c["url"], c["publish"]) for c in hls_clients(srv)] == [(ctx, "/live/s", False)]
    wait_until(lambda: hooks.events("on_play"), 5, what="on_play")
    (play,) = hooks.events("on_play")
    assert play["client_id"] == ctx and play["stream"] == "s" and play["app"] == "live"
    # the session's URL: the low-latency playlist, its segment and part URIs with the id
    status, headers, text = get_playlist(port, location[len("/live/s.m3u8"):])
    assert status == 200 and headers["content-type"] == "application/vnd.apple.mpegurl", text
    pl = m3u8.loads(text)
    assert pl.server_control.can_block_reload == "YES"
    parts = [p for s in pl.segments for p in s.parts]
    assert parts and all(p.uri.endswith(f".m4s?hls_ctx={ctx}") for p in parts), text
    assert all(s.uri.endswith(f".m4s?hls_ctx={ctx}") for s in pl.segments if s.uri), text
    assert pl.preload_hint.uri.endswith(f".m4s?hls_ctx={ctx}")
    assert pl.segment_map[0].uri == "s-init.mp4"
    # a part request counts for its session
    sent = hls_clients(srv)[0]["send_bytes"]
    status, _, data = http_get(port, "/live/" + parts[-1].uri)
    assert status == 200 and data[4:8] == b"moof"
    assert hls_clients(srv)[0]["send_bytes"] >= sent + len(data)
    # a blocking reload with the session: answered when the next part exists
    msn, n_open = open_msn(pl), len([p for s in pl.segments if not s.uri for p in s.parts])
    t0 = time.monotonic()
    status, _, text2 = get_playlist(port, f"?hls_ctx={ctx}&_HLS_msn={msn}&_HLS_part={n_open + 1}")
    waited = time.monotonic() - t0
    assert status == 200, text2
    pl2 = m3u8.loads(text2)
    assert open_msn(pl2) > msn or len([p for s in pl2.segments if not s.uri for p in s.parts]) > n_open + 1
    assert 0.1 <= waited <= 2.5, waited
    # a blocking reload that names no session: redirected with _HLS_msn/_HLS_part kept, and
    # the redirect's target blocks as the original would have
    msn2, n_open2 = open_msn(pl2), len([p for s in pl2.segments if not s.uri for p in s.parts])
    query = f"?_HLS_msn={msn2}&_HLS_part={n_open2 + 1}"
    status, headers, _ = get_playlist(port, query)
    assert status == 302
    ctx2 = headers["location"].split("hls_ctx=")[1].split("&")[0]
    assert headers["location"] == f"/live/s.m3u8?hls_ctx={ctx2}&{query[1:]}" and ctx2 != ctx
    t0 = time.monotonic()
    status, _, text3 = get_playlist(port, headers["location"][len("/live/s.m3u8"):])
    assert status == 200 and 0.1 <= time.monotonic() - t0 <= 2.5, text3
    pl3 = m3u8.loads(text3)
    assert open_msn(pl3) > msn2 or len([p for s in pl3.segments if not s.uri for p in s.parts]) > n_open2 + 1
    assert sorted(c["id"] for c in hls_clients(srv)) == sorted([ctx, ctx2])
    # an unknown id (a player coming back): a session of that id, answered at once
    status, _, text4 = get_playlist(port, "?hls_ctx=back1234")
    assert status == 200 and "hls_ctx=back1234" in text4 and m3u8.loads(text4).segments
    assert "back1234" in [c["id"] for c in hls_clients(srv)]
    # kicked through the API: its playlist and parts get 404
    assert http_get(srv.api_port, f"/api/v1/clients/{ctx}", method="DELETE")[0] == 200
    assert get_playlist(port, f"?hls_ctx={ctx}")[0] == 404
    assert get_playlist(port, f"?hls_ctx={ctx}&_HLS_msn={msn}")[0] == 404
    assert http_get(port, "/live/" + parts[-1].uri)[0] == 404
    # sessions idle for 2 x hls_window end with on_stop; the one kept alive does not
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and len(hooks.events("on_stop")) < 2:
        assert get_playlist(port, f"?hls_ctx={ctx2}")[0] == 200
        gevent.sleep(0.5)
    gevent.sleep(1)
    assert sorted(ev["client_id"] for ev in hooks.events("on_stop")) == sorted([ctx, "back1234"])
    assert [c["id"] for c in hls_clients(srv)] == [ctx2]


def test_llhls_ctx_ffmpeg_plays_through_the_redirect(make_server, procs, short_flv, tmp_path):
    """ffmpeg's HLS reader follows the redirect to its session and reloads the session's
    URL: one hls-play client, whose segment URIs it fetched with the id."""
    root = tmp_path / "html"
    srv = make_server(vhost_extra=ll_block(root, ctx="on"), extra=API)
    procs(publish_args(short_flv, rtmp_url(srv), loop=True))
    wait_published(srv)
    wait_until(lambda: (root / "live" / "s.m3u8").exists(), 15, what="the first segment")
    play = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", f"http://127.0.0.1:{srv.http_port}/live/s.m3u8",
                           "-t", "5", "-f", "null", "-"], capture_output=True, timeout=60)
    assert play.returncode == 0 and play.stderr.strip() == b"", play.stderr[-2000:]
    (client,) = hls_clients(srv)
    assert client["url"] == "/live/s" and client["send_bytes"] > 0
