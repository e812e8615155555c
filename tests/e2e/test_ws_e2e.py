"""WS-FLV (beyond SRS): every mounted .flv answers a WebSocket upgrade with the same
stream, one unmasked binary message per write; the handshake is checked, pings and closes
are answered, permessage-deflate is declined."""

import gevent
import pytest
from helpers.flvclient import FlvPlayer
from helpers.media import publish_args, wait_published, wait_until
from helpers.net import rtmp_url
from helpers.relay import assert_same_from_keyframe
from helpers.wsclient import WsPlayer, accept_key

from srspy.client import read_flv_file

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]


def test_ws_flv_carries_the_published_stream(make_server, procs, short_flv):
    srv = make_server()
    procs(publish_args(short_flv, rtmp_url(srv), loop=True))
    wait_published(srv)
    p = WsPlayer(srv.http_port, "/live/s.flv", headers={"Sec-WebSocket-Extensions": "permessage-deflate"})
    assert p.read_head() == 101
    assert p.headers["upgrade"].lower() == "websocket" and p.headers["connection"].lower() == "upgrade"
    assert p.headers["sec-websocket-accept"] == accept_key(p.key)
    assert "sec-websocket-extensions" not in p.headers  # permessage-deflate declined
    p.pump(15, until=lambda q: sum(1 for t in q.tags if t[0] == 9) >= 120)
    assert bytes(p.body[:3]) == b"FLV" and p.flv_flags == 5
    assert [t for t, _, _ in p.tags[:3]] == [18, 8, 9]
    assert all(fin == 1 and op == 2 and not masked for fin, op, _, masked in p.frames)
    assert_same_from_keyframe(list(read_flv_file(short_flv)), p.tags)
    # the same stream over plain HTTP on the same mount, and statistics count both as flv-play
    h = FlvPlayer(srv.http_port, "/live/s.flv")
    assert h.read_head() == 200 and h.headers["content-type"] == "video/x-flv"
    wait_until(lambda: sum(1 for c in srv.stat.clients.values() if c.type == "flv-play") == 2, 5, what="two flv-play")
    h.close()
    p.close()


def test_ws_ping_pong_and_close(make_server, procs, short_flv):
    srv = make_server()
    procs(publish_args(short_flv, rtmp_url(srv), loop=True))
    wait_published(srv)
    p = WsPlayer(srv.http_port, "/live/s.flv")
    assert p.read_head() == 101
    p.pump(10, until=lambda q: len(q.tags) >= 20)
    for i in range(5):  # pings while media flows: each answered with its payload, frames intact
        p.send_frame(0x9, b"ping-%d" % i)
    p.send_frame(0x1, b"hello, ignored")
    p.pump(10, until=lambda q: sum(1 for op, _ in q.controls if op == 0xA) >= 5)
    assert [pl for op, pl in p.controls if op == 0xA] == [b"ping-%d" % i for i in range(5)]
    n = len(p.tags)
    p.pump(10, until=lambda q: len(q.tags) >= n + 20)  # media goes on
    p.send_frame(0x8, b"\x03\xe8")
    p.pump(10, until=lambda q: q.ended or q.eof)
    assert p.controls[-1] == (0x8, b"\x03\xe8")  # close answered, normal closure
    wait_until(lambda: not any(c.type == "flv-play" for c in srv.stat.clients.values()), 5, what="player gone")
    p.close()


def test_ws_player_gets_a_close_frame_at_unpublish(make_server, procs, short_flv):
    srv = make_server()
    pub = procs(publish_args(short_flv, rtmp_url(srv), loop=True))
    wait_published(srv)
    p = WsPlayer(srv.http_port, "/live/s.flv")
    assert p.read_head() == 101
    p.pump(10, until=lambda q: len(q.tags) >= 10)
    pub.kill()
    p.pump(10, until=lambda q: q.ended)
    assert p.controls[-1] == (0x8, b"\x03\xe8")


@pytest.mark.parametrize("drop, value", [
    ("Sec-WebSocket-Key", None), ("Sec-WebSocket-Version", None), ("Sec-WebSocket-Version", "8"),
])
def test_bad_handshake_gets_400(make_server, procs, short_flv, drop, value):
    srv = make_server()
    procs(publish_args(short_flv, rtmp_url(srv), loop=True))
    wait_published(srv)
    p = WsPlayer(srv.http_port, "/live/s.flv", headers={drop: value})
    assert p.read_head() == 400
    assert not any(c.type == "flv-play" for c in srv.stat.clients.values())
    p.close()
    gevent.sleep(0)


def test_ws_and_unchunked_http_players_side_by_side(make_server, procs, short_flv):
    """A WebSocket player and an HTTP/1.0 player (raw body, no chunks) at the same position
    frame the same tags differently: each gets its own framing, both streams intact."""
    srv = make_server()
    procs(publish_args(short_flv, rtmp_url(srv), loop=True))
    wait_published(srv)
    w = WsPlayer(srv.http_port, "/live/s.flv")
    h = FlvPlayer(srv.http_port, "/live/s.flv", version="1.0")
    assert w.read_head() == 101 and h.read_head() == 200 and not h.chunked
    for p in (w, h):
        p.pump(15, until=lambda q: sum(1 for t in q.tags if t[0] == 9) >= 100)
    for p in (w, h):
        assert_same_from_keyframe(list(read_flv_file(short_flv)), p.tags)
    w.close()
    h.close()
