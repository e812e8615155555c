"""Edge (cluster mode remote): srspy edge in front of an srspy origin and of node-media-server.

ffmpeg publishes to the origin; players on the edge (HTTP-FLV and RTMP) make the edge pull
from the origin; the pull stops a few seconds after the last edge player left.
"""

import time

import gevent
import pytest
from gevent import subprocess

from helpers.flvclient import FlvPlayer
from helpers.media import ffprobe, publish_args, streams_by_type, wait_published, wait_until
from helpers.relay import assert_same_from_keyframe, start_nms, wait_frames_from_keyframe
from srspy.client.flvfile import read_flv_file
from srspy.client.rtmp import RtmpPullSession
from srspy.app.relay import EDGE_FORWARD, EDGE_PULL

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


def edge_conf(origin: str, protocol: str = "rtmp") -> str:
    return f"cluster {{ mode remote; origin {origin}; protocol {protocol}; }}"


def clients(srv, kind=None):
    return [c for c in srv.stat.clients.values() if kind is None or c.type == kind]


def origin_players(origin, url="/live/s"):
    return [c for c in origin.stat.clients.values() if c.type in ("rtmp-play", "flv-play") and c.stream.url == url]


def play_flv(port, path, seconds):
    p = FlvPlayer(port, path)
    assert p.read_head() == 200
    p.pump(seconds)
    return p


def test_edge_pulls_on_first_player_and_stops_after_the_last(make_server, procs, short_flv):
    origin = make_server()
    edge = make_server(vhost_extra=edge_conf(f"127.0.0.1:{origin.rtmp_ports[0]}"))
    procs(publish_args(short_flv, f"rtmp://127.0.0.1:{origin.rtmp_ports[0]}/live/s", loop=True))
    wait_published(origin)
    assert not origin_players(origin)
    # the first player on the edge: HTTP-FLV, nothing published on the edge yet
    p = play_flv(edge.http_port, "/live/s.flv", 4.0)
    assert p.headers["content-type"] == "video/x-flv"
    assert_same_from_keyframe(list(read_flv_file(short_flv)), p.tags)
    assert [t for t, _, _ in p.tags[:3]] == [18, 8, 9]
    # the edge's pull is a client of the origin, and an edge-pull client of the edge
    assert len(origin_players(origin)) == 1
    assert len(clients(edge, EDGE_PULL)) == 1
    # a second player (RTMP, ffprobe) shares the pull
    info = streams_by_type(ffprobe(f"rtmp://127.0.0.1:{edge.rtmp_ports[0]}/live/s"))
    assert info["video"]["codec_name"] == "h264" and info["audio"]["codec_name"] == "aac"
    assert len(origin_players(origin)) == 1
    p.close()
    left = time.monotonic()
    # a few seconds later the pull is gone from the origin
    wait_until(lambda: not origin_players(origin), 15, what="the edge pull gone from the origin")
    assert time.monotonic() - left >= edge.edge.edge_stop_delay - 0.5
    wait_until(lambda: not clients(edge, EDGE_PULL), 5, what="no edge-pull on the edge")
    wait_until(lambda: "/live/s" not in edge.sources.sources, 10, what="the edge source collected")


def test_a_player_coming_back_keeps_the_pull(make_server, procs, short_flv):
    origin = make_server()
    edge = make_server(vhost_extra=edge_conf(f"127.0.0.1:{origin.rtmp_ports[0]}"))
    procs(publish_args(short_flv, f"rtmp://127.0.0.1:{origin.rtmp_ports[0]}/live/s", loop=True))
    wait_published(origin)
    play_flv(edge.http_port, "/live/s.flv", 1.5).close()
    ing = edge.edge.ingesters["/live/s"]
    gevent.sleep(0.5)
    got = []
    r = RtmpPullSession(f"rtmp://127.0.0.1:{edge.rtmp_ports[0]}/live/s", got.append).start()
    gevent.sleep(edge.edge.edge_stop_delay + 1.0)
    assert edge.edge.ingesters.get("/live/s") is ing and not ing.stopped and ing.connects == 1
    assert len(origin_players(origin)) == 1
    r.dispose()
    assert_same_from_keyframe(list(read_flv_file(short_flv)), got)
    wait_until(lambda: not origin_players(origin), 15, what="the edge pull gone")


def test_edge_over_http_flv_and_origin_failover(make_server, procs, short_flv):
    origin = make_server()
    # the first origin refuses connections: the edge goes on to the next one
    dead = make_server()
    dead_port = dead.http_port
    dead.stop()
    edge = make_server(vhost_extra=f"cluster {{ mode remote; origin 127.0.0.1:{dead_port} 127.0.0.1:{origin.http_port}; "
                                    f"protocol flv; }}")
    procs(publish_args(short_flv, f"rtmp://127.0.0.1:{origin.rtmp_ports[0]}/live/s", loop=True))
    wait_published(origin)
    got = []
    r = RtmpPullSession(f"rtmp://127.0.0.1:{edge.rtmp_ports[0]}/live/s", got.append).start()
    wait_until(lambda: origin_players(origin), 15, what="the edge pulling from the second origin")
    assert origin_players(origin)[0].type == "flv-play"
    wait_frames_from_keyframe(got)
    r.dispose()
    assert_same_from_keyframe(list(read_flv_file(short_flv)), got)


def test_publisher_on_the_edge_is_forwarded_to_the_origin(make_server, procs, short_flv):
    origin = make_server()
    edge = make_server(vhost_extra=edge_conf(f"127.0.0.1:{origin.rtmp_ports[0]}"))
    pub = procs(publish_args(short_flv, f"rtmp://127.0.0.1:{edge.rtmp_ports[0]}/live/e", loop=True))
    wait_published(edge, "/live/e")
    wait_published(origin, "/live/e", timeout=15)
    assert len(clients(edge, EDGE_FORWARD)) == 1
    p = play_flv(origin.http_port, "/live/e.flv", 3.0)
    assert_same_from_keyframe(list(read_flv_file(short_flv)), p.tags)
    p.close()
    pub.kill()
    wait_until(lambda: not clients(edge, EDGE_FORWARD), 10, what="the edge forwarder stopped")
    wait_until(lambda: "/live/e" not in origin.streams.entries, 10, what="unpublished on the origin")


def test_edge_in_front_of_node_media_server(make_server, procs, short_flv, tmp_path):
    rtmp, http = start_nms(procs, tmp_path / "nms")
    procs(publish_args(short_flv, f"rtmp://127.0.0.1:{rtmp}/live/s", loop=True))
    edge = make_server(vhost_extra=edge_conf(f"127.0.0.1:{rtmp}"))
    # node-media-server has the stream once ffmpeg is connected: play on the edge until media comes
    deadline = time.monotonic() + 30
    while True:
        p = FlvPlayer(edge.http_port, "/live/s.flv")
        assert p.read_head() == 200
        p.pump(3.0)
        if len([t for t in p.tags if t[0] == 9]) > 30 or time.monotonic() > deadline:
            break
        p.close()
    assert_same_from_keyframe(list(read_flv_file(short_flv)), p.tags)
    # an independent player through the edge
    dec = subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-t", "2",
                          "-i", f"http://127.0.0.1:{edge.http_port}/live/s.flv", "-f", "null", "-"],
                         capture_output=True, timeout=60)
    assert dec.returncode == 0, dec.stderr
    p.close()
    # the HTTP-FLV protocol to node-media-server works too
    edge2 = make_server(vhost_extra=edge_conf(f"127.0.0.1:{http}", "flv"))
    got = []
    r = RtmpPullSession(f"rtmp://127.0.0.1:{edge2.rtmp_ports[0]}/live/s", got.append).start()
    wait_frames_from_keyframe(got)
    r.dispose()
    assert_same_from_keyframe(list(read_flv_file(short_flv)), got)


def test_edge_as_a_separate_process(make_server, procs, short_flv, tmp_path):
    """``python -m srspy -c edge.conf``: the same edge from a config file, in its own process."""
    import sys

    from helpers.net import free_port
    from helpers.relay import wait_port

    origin = make_server()
    rtmp, http = free_port(), free_port()
    conf = tmp_path / "edge.conf"
    conf.write_text(f"""
listen {rtmp};
daemon off;
srs_log_tank console;
srs_log_level warn;
pid {tmp_path}/edge.pid;
http_server {{ enabled on; listen {http}; dir {tmp_path}; }}
vhost __defaultVhost__ {{
    http_remux {{ enabled on; mount [vhost]/[app]/[stream].flv; }}
    cluster {{ mode remote; origin 127.0.0.1:{origin.rtmp_ports[0]}; }}
}}
""")
    edge = procs([sys.executable, "-m", "srspy", "-c", str(conf)])
    wait_port(rtmp, proc=edge, what="srspy edge")
    wait_port(http, proc=edge, what="srspy edge http")
    procs(publish_args(short_flv, f"rtmp://127.0.0.1:{origin.rtmp_ports[0]}/live/s", loop=True))
    wait_published(origin)
    p = play_flv(http, "/live/s.flv", 3.0)
    assert_same_from_keyframe(list(read_flv_file(short_flv)), p.tags)
    assert len(origin_players(origin)) == 1
    p.close()
    wait_until(lambda: not origin_players(origin), 15, what="the edge pull gone from the origin")
