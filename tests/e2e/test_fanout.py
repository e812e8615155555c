"""The shared-encoding path: many players of one stream get exactly what was published.

50 HTTP-FLV and 50 RTMP players of one ffmpeg-published stream each receive, from their
first keyframe on, the published tags' payloads in order, with the published timestamps
(relative to that keyframe: each player's clock starts near zero, as in SRS). Run with
the default merged writes and with min_latency (a write per message), and with a few
players that stall now and then behind a small server send buffer, so that writes done
for parked players (publisher side, never waiting) are cut short by the kernel and their
rest must go out first, in order.
"""

import time

import gevent
import pytest
from helpers.flvclient import FlvPlayer
from helpers.media import publish_args, wait_published
from helpers.net import shrink_server_sndbuf
from helpers.rtmpraw import RawRtmp

from srspy.kernel.flv import iter_tags

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]
N = 50
SLOW = 3  # of each kind
LOWLAT = "min_latency on; play { mw_latency 0; }"


def stall(started: float):
    """A slow player: 0.4 s without reading in every second."""
    if (time.monotonic() - started) % 1.0 < 0.4:
        gevent.sleep(0.4)


def published(path):
    data = path.read_bytes()
    return [(t, ts, p) for t, ts, p in iter_tags(data, int.from_bytes(data[5:9], "big") + 4) if t in (8, 9)]


def from_first_keyframe(tags):
    """(type, ts relative to the first keyframe, payload) from the first non-header keyframe."""
    i = next(i for i, (t, _, p) in enumerate(tags) if t == 9 and p[:2] == b"\x17\x01")
    base = tags[i][1]
    return [(t, ts - base, p) for t, ts, p in tags[i:] if p[:2] not in (b"\x17\x00", b"\xaf\x00")]


def rtmp_player(srv, out, slow=False):
    c = RawRtmp(srv.rtmp_ports[0], timeout=20)
    c.handshake()
    c.play("s")
    started = time.monotonic()
    if slow:
        assert shrink_server_sndbuf(srv, c.sock)
    while sum(1 for m in c.msgs if m.type == 9) < 150:
        c.read()
        if slow:
            stall(started)
    out.extend((m.type, m.timestamp, m.payload) for m in c.msgs if m.type in (8, 9))
    c.close()


def flv_player(srv, out, slow=False):
    p = FlvPlayer(srv.http_port, "/live/s.flv", timeout=20)
    assert p.read_head() == 200
    enough = lambda q: sum(1 for t in q.tags if t[0] == 9) >= 150  # noqa: E731
    if slow:
        assert shrink_server_sndbuf(srv, p.sock)
        started = time.monotonic()
        deadline = started + 40
        while not enough(p):
            assert time.monotonic() < deadline, "slow player timed out"
            p.pump(0.05)
            stall(started)
    else:
        p.pump(40, until=enough)
    out.extend(t for t in p.tags if t[0] in (8, 9))
    p.close()


@pytest.mark.parametrize("vhost_extra", ["", LOWLAT], ids=["default", "min_latency"])
def test_100_players_get_published_payloads_and_timestamps(make_server, procs, av_flv, vhost_extra):
    srv = make_server(vhost_extra=vhost_extra)
    ref = published(av_flv)
    procs(publish_args(av_flv, f"rtmp://127.0.0.1:{srv.rtmp_ports[0]}/live/s"))
    wait_published(srv)
    gevent.sleep(1.0)
    results = [[] for _ in range(2 * N)]
    jobs = [gevent.spawn(rtmp_player, srv, results[i], i < SLOW) for i in range(N)]
    jobs += [gevent.spawn(flv_player, srv, results[N + i], i < SLOW) for i in range(N)]
    gevent.joinall(jobs, timeout=80, raise_error=True)
    assert all(j.successful() for j in jobs)
    ref_index = {p: i for i, (t, _, p) in enumerate(ref) if t == 9 and p[:2] == b"\x17\x01"}
    for k, got in enumerate(results):
        mine = from_first_keyframe(got)
        start = ref_index[mine[0][2]]
        expect = from_first_keyframe(ref[start:])[: len(mine)]
        kind = ("rtmp" if k < N else "flv") + (" slow" if k % N < SLOW else "")
        assert len(mine) > 200, kind
        assert [p for _, _, p in mine] == [p for _, _, p in expect], f"{kind} player {k}: payloads differ"
        assert [ts for _, ts, _ in mine] == [ts for _, ts, _ in expect], f"{kind} player {k}: timestamps differ"
