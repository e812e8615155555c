"""The shared-encoding path: many players of one stream get exactly what was published.

50 HTTP-FLV and 50 RTMP players of one ffmpeg-published stream each receive, from their
first keyframe on, the published tags' payloads in order, with the published timestamps
(relative to that keyframe: each player's clock starts near zero, as in SRS).
"""

import gevent
import pytest
from helpers.flvclient import FlvPlayer
from helpers.media import publish_args, wait_published
from helpers.rtmpraw import RawRtmp

from srspy.kernel.flv import iter_tags

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]
N = 50


def published(path):
    data = path.read_bytes()
    return [(t, ts, p) for t, ts, p in iter_tags(data, int.from_bytes(data[5:9], "big") + 4) if t in (8, 9)]


def from_first_keyframe(tags):
    """(type, ts relative to the first keyframe, payload) from the first non-header keyframe."""
    i = next(i for i, (t, _, p) in enumerate(tags) if t == 9 and p[:2] == b"\x17\x01")
    base = tags[i][1]
    return [(t, ts - base, p) for t, ts, p in tags[i:] if not (p[:2] in (b"\x17\x00", b"\xaf\x00"))]


def rtmp_player(port, out):
    c = RawRtmp(port, timeout=20)
    c.handshake()
    c.connect()
    c.command("createStream", 2.0, None)
    c.until_command("_result")
    c.command("play", 3.0, None, "s", stream_id=1)
    while sum(1 for m in c.msgs if m.type == 9) < 150:
        c.read()
    out.extend((m.type, m.timestamp, m.payload) for m in c.msgs if m.type in (8, 9))
    c.close()


def flv_player(port, out):
    p = FlvPlayer(port, "/live/s.flv", timeout=20)
    assert p.read_head() == 200
    p.pump(40, until=lambda q: sum(1 for t in q.tags if t[0] == 9) >= 150)
    out.extend(t for t in p.tags if t[0] in (8, 9))
    p.close()


def test_100_players_get_published_payloads_and_timestamps(make_server, procs, av_flv):
    srv = make_server()
    ref = published(av_flv)
    procs(publish_args(av_flv, f"rtmp://127.0.0.1:{srv.rtmp_ports[0]}/live/s"))
    wait_published(srv)
    gevent.sleep(1.0)
    results = [[] for _ in range(2 * N)]
    jobs = [gevent.spawn(rtmp_player, srv.rtmp_ports[0], results[i]) for i in range(N)]
    jobs += [gevent.spawn(flv_player, srv.http_port, results[N + i]) for i in range(N)]
    gevent.joinall(jobs, timeout=60, raise_error=True)
    assert all(j.successful() for j in jobs)
    ref_index = {p: i for i, (t, _, p) in enumerate(ref) if t == 9 and p[:2] == b"\x17\x01"}
    for k, got in enumerate(results):
        mine = from_first_keyframe(got)
        start = ref_index[mine[0][2]]
        expect = from_first_keyframe(ref[start:])[: len(mine)]
        kind = "rtmp" if k < N else "flv"
        assert len(mine) > 200, kind
        assert [p for _, _, p in mine] == [p for _, _, p in expect], f"{kind} player {k}: payloads differ"
        assert [ts for _, ts, _ in mine] == [ts for _, ts, _ in expect], f"{kind} player {k}: timestamps differ"
