"""RtmpPullSession and HttpFlvPullSession against srspy and node-media-server 4.4.3 while
ffmpeg publishes: the payloads received from the first keyframe on are the file's."""

import gevent
import pytest

from helpers.media import publish_args, wait_published, wait_until
from helpers.relay import assert_same_from_keyframe, start_nms, wait_frames_from_keyframe, wait_port
from srspy.client.flvfile import read_flv_file
from srspy.client.httpflv import HttpFlvPullSession
from srspy.client.rtmp import RtmpPullSession
from srspy.client.session import DISPOSED

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


def _pull_both(rtmp_url, flv_url, published):
    """Both sessions at once, until each has enough media; both match the published file."""
    got_rtmp, got_flv = [], []
    r = RtmpPullSession(rtmp_url, got_rtmp.append, read_timeout=10).start()
    h = HttpFlvPullSession(flv_url, got_flv.append, read_timeout=10).start()
    assert h.status == 200
    wait_frames_from_keyframe(got_rtmp)
    wait_frames_from_keyframe(got_flv)
    r.dispose()
    h.dispose()
    assert r.wait(2).reason == DISPOSED and h.wait(2).reason == DISPOSED
    assert_same_from_keyframe(published, got_rtmp)
    assert_same_from_keyframe(published, got_flv)
    assert any(m.type == 18 for m in got_rtmp) and any(m.type == 18 for m in got_flv)
    assert h.flv_header is not None
    return r, h


def test_pull_from_srspy(make_server, procs, short_flv):
    srv = make_server()
    procs(publish_args(short_flv, f"rtmp://127.0.0.1:{srv.rtmp_ports[0]}/live/s", loop=True))
    wait_published(srv)
    gevent.sleep(0.5)
    r, h = _pull_both(f"rtmp://127.0.0.1:{srv.rtmp_ports[0]}/live/s",
                      f"http://127.0.0.1:{srv.http_port}/live/s.flv", list(read_flv_file(short_flv)))
    assert r.get_stat().read_bytes > 100_000 and h.get_stat().read_bytes > 100_000


def test_pull_from_node_media_server(procs, short_flv, tmp_path):
    rtmp, http = start_nms(procs, tmp_path / "nms")
    procs(publish_args(short_flv, f"rtmp://127.0.0.1:{rtmp}/live/s", loop=True))
    wait_port(rtmp)

    def published():
        # the stream is up once an RTMP play gets its Play.Start and a first video message
        got = []
        try:
            s = RtmpPullSession(f"rtmp://127.0.0.1:{rtmp}/live/s", got.append, start_timeout=3).start()
        except Exception:  # noqa: BLE001 - not yet
            return False
        try:
            wait_until(lambda: any(m.type == 9 for m in got), 1.0, what="video")
        except AssertionError:
            pass
        s.dispose()
        return any(m.type == 9 for m in got)

    wait_until(published, 20, interval=0.3, what="ffmpeg publishing to node-media-server")
    _pull_both(f"rtmp://127.0.0.1:{rtmp}/live/s", f"http://127.0.0.1:{http}/live/s.flv",
               list(read_flv_file(short_flv)))
