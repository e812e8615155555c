"""http_hooks end to end: ffmpeg publishes and plays, a small hook server started here answers."""

import time

import pytest
from gevent import subprocess
from helpers.flvclient import FlvPlayer, http_get
from helpers.media import publish_args, wait_published, wait_until
from helpers.net import free_port, rtmp_url

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

HEAD = ["server_id", "service_id", "action", "client_id", "ip", "vhost", "app"]


def hooks_conf(**events) -> str:
    lines = "".join(f"{k} {' '.join(v) if isinstance(v, (list, tuple)) else v}; " for k, v in events.items())
    return f"http_hooks {{ enabled on; {lines} }}"


def rtmp_play(procs, srv, seconds=3, path="/live/s"):
    return procs(["ffmpeg", "-nostdin", "-loglevel", "error", "-i", rtmp_url(srv, path), "-t", str(seconds),
                  "-c", "copy", "-f", "null", "-"])


def test_bodies_of_every_event(make_server, procs, short_flv, hooks):
    ok = hooks.url("/ok")
    srv = make_server(vhost_extra=hooks_conf(on_connect=ok, on_close=ok, on_publish=[ok, hooks.url("/okjson")],
                                             on_unpublish=ok, on_play=ok, on_stop=ok))
    pub = procs(publish_args(short_flv, rtmp_url(srv, "/live/s?token=abc")))
    wait_published(srv)
    flv = FlvPlayer(srv.http_port, "/live/s.flv?u=1", headers={"Referer": "http://page.example/p.html"})
    assert flv.read_head() == 200
    flv.pump(10, until=lambda q: len(q.tags) > 5)
    rp = rtmp_play(procs, srv, 2)
    assert rp.wait(20) == 0
    flv.close()
    pub.wait(30)
    wait_until(lambda: "on_unpublish" in hooks.actions() and len(hooks.events("on_stop")) == 2
               and len(hooks.events("on_close")) >= 2, 10, what="the last hooks")

    pub_ev = hooks.events("on_publish")
    assert [p for p, ev, _ in hooks.calls if ev["action"] == "on_publish"] == ["/ok", "/okjson"]
    e = pub_ev[0]
    assert list(e) == HEAD + ["tcUrl", "stream", "param", "stream_url", "stream_id"]
    assert e["vhost"] == "__defaultVhost__" and e["app"] == "live" and e["stream"] == "s"
    assert e["param"] == "?token=abc" and e["stream_url"] == "/live/s" and e["ip"] == "127.0.0.1"
    assert e["tcUrl"].startswith("rtmp://127.0.0.1:") and e["tcUrl"].endswith("/live")
    assert e["server_id"] == srv.stat.server_id and e["service_id"] == srv.stat.service_id
    assert len(e["client_id"]) == 8
    conn_ev = [c for c in hooks.events("on_connect") if c["client_id"] == e["client_id"]][0]
    assert list(conn_ev) == HEAD + ["stream", "param", "tcUrl", "pageUrl"]
    plays = hooks.events("on_play")
    assert len(plays) == 2
    flv_play = [p for p in plays if p["param"] == "?u=1"][0]
    assert list(flv_play) == HEAD + ["stream", "tcUrl", "param", "pageUrl", "stream_url", "stream_id"]
    assert flv_play["stream"] == "s" and flv_play["pageUrl"] == "http://page.example/p.html"
    assert flv_play["stream_id"] == e["stream_id"]
    unpub = hooks.events("on_unpublish")[0]
    assert unpub["client_id"] == e["client_id"] and unpub["stream_url"] == "/live/s"
    close = [c for c in hooks.events("on_close") if c["client_id"] == e["client_id"]][0]
    assert list(close) == HEAD + ["send_bytes", "recv_bytes"] and close["recv_bytes"] > 100_000
    # on_stop and on_unpublish come after their clients left
    t_unpub = [t for _, ev, t in hooks.calls if ev["action"] == "on_unpublish"][0]
    t_pub = [t for _, ev, t in hooks.calls if ev["action"] == "on_publish"][-1]
    assert t_unpub > t_pub + 4  # the 6 s file was published in real time


@pytest.mark.parametrize("answer", ["/one", "/code1", "/500", "/garbage", "/hang", "refused"])
def test_on_publish_refusals(make_server, procs, short_flv, hooks, answer):
    url = f"http://127.0.0.1:{free_port()}/x" if answer == "refused" else hooks.url(answer)
    srv = make_server(vhost_extra=hooks_conf(on_publish=url, on_unpublish=hooks.url("/ok"), timeout=1))
    t0 = time.monotonic()
    pub = procs(publish_args(short_flv, rtmp_url(srv), loop=True))
    assert pub.wait(20) != 0
    assert time.monotonic() - t0 < 8
    assert not any(s.publishing for s in srv.sources.sources.values())
    status, _, _ = http_get(srv.http_port, "/live/s.flv")
    assert status == 404
    assert "on_unpublish" not in hooks.actions()


@pytest.mark.parametrize("answer", ["/ok", "/okjson"])
def test_on_publish_allows(make_server, procs, short_flv, hooks, answer):
    srv = make_server(vhost_extra=hooks_conf(on_publish=hooks.url(answer)))
    procs(publish_args(short_flv, rtmp_url(srv), loop=True))
    wait_published(srv)
    assert hooks.actions() == ["on_publish"]


def test_first_refusing_url_stops_the_chain(make_server, procs, short_flv, hooks):
    srv = make_server(vhost_extra=hooks_conf(on_publish=[hooks.url("/ok"), hooks.url("/one"), hooks.url("/okjson")]))
    pub = procs(publish_args(short_flv, rtmp_url(srv), loop=True))
    assert pub.wait(20) != 0
    assert [p for p, _, _ in hooks.calls] == ["/ok", "/one"]


def test_on_play_refusal_for_flv_and_rtmp(make_server, procs, short_flv, hooks):
    srv = make_server(vhost_extra=hooks_conf(on_play=hooks.url("/code1")))
    procs(publish_args(short_flv, rtmp_url(srv), loop=True))
    wait_published(srv)
    status, _, body = http_get(srv.http_port, "/live/s.flv")
    assert status == 403 and b"on_play" in body
    rp = rtmp_play(procs, srv, 2)
    assert rp.wait(20) != 0
    assert hooks.actions() == ["on_play", "on_play"]


def test_on_connect_refusal(make_server, procs, short_flv, hooks):
    srv = make_server(vhost_extra=hooks_conf(on_connect=hooks.url("/500")))
    pub = procs(publish_args(short_flv, rtmp_url(srv), loop=True))
    assert pub.wait(20) != 0
    assert hooks.actions() == ["on_connect"]
    assert not srv.sources.sources


def test_a_slow_on_stop_delays_nobody(make_server, procs, short_flv, hooks):
    srv = make_server(vhost_extra=hooks_conf(on_play=hooks.url("/ok"), on_stop=hooks.url("/hang"),
                                             on_unpublish=hooks.url("/hang"), timeout=10))
    procs(publish_args(short_flv, rtmp_url(srv), loop=True))
    wait_published(srv)
    a = FlvPlayer(srv.http_port, "/live/s.flv")
    assert a.read_head() == 200
    a.pump(10, until=lambda q: len(q.tags) > 5)
    a.close()
    wait_until(lambda: "on_stop" in hooks.actions(), 5, what="on_stop of the first player")
    # the hook server now holds that on_stop; a new player starts at once all the same
    t0 = time.monotonic()
    b = FlvPlayer(srv.http_port, "/live/s.flv")
    assert b.read_head() == 200
    b.pump(10, until=lambda q: len(q.tags) > 5)
    assert time.monotonic() - t0 < 3
    # and its own end is not held back either: its connection is gone at once
    cid = [ev["client_id"] for ev in hooks.events("on_play")][-1]
    b.close()
    wait_until(lambda: cid not in srv.conns, 2, what="the second player's connection closed")
    b2 = rtmp_play(procs, srv, 1)
    assert b2.wait(20) == 0


def test_in_process_callables_without_a_hook_server(make_server, procs, short_flv):
    srv = make_server()
    seen = []
    srv.hooks.register("on_publish", lambda ev: seen.append(ev) or ev["param"] == "?key=good")
    srv.hooks.register("on_unpublish", seen.append)
    bad = procs(publish_args(short_flv, rtmp_url(srv, "/live/s?key=bad"), loop=True))
    assert bad.wait(20) != 0
    procs(publish_args(short_flv, rtmp_url(srv, "/live/s?key=good"), loop=True))
    wait_published(srv)
    assert [e["param"] for e in seen] == ["?key=bad", "?key=good"]
    player = FlvPlayer(srv.http_port, "/live/s.flv")
    assert player.read_head() == 200
    player.close()


def test_https_hook_url_refused_cleanly(make_server, procs, short_flv, hooks):
    # an https URL to a plain-HTTP server: the TLS handshake fails, the publish is refused
    srv = make_server(vhost_extra=hooks_conf(on_publish=f"https://127.0.0.1:{hooks.port}/ok", timeout=2))
    pub = procs(publish_args(short_flv, rtmp_url(srv), loop=True))
    assert pub.wait(20) != 0
    assert not any(s.publishing for s in srv.sources.sources.values())


def test_ffmpeg_players_counted_by_play_hooks_only_once(make_server, procs, short_flv, hooks):
    srv = make_server(vhost_extra=hooks_conf(on_play=hooks.url("/ok"), on_stop=hooks.url("/ok")))
    procs(publish_args(short_flv, rtmp_url(srv), loop=True))
    wait_published(srv)
    out = subprocess.run(["ffprobe", "-v", "error", "-show_streams", "-of", "json",
                          f"http://127.0.0.1:{srv.http_port}/live/s.flv"], capture_output=True, timeout=30)
    assert out.returncode == 0
    wait_until(lambda: len(hooks.events("on_stop")) == 1, 5, what="on_stop")
    assert len(hooks.events("on_play")) == 1
