"""Forward: a stream published on srspy A is pushed to srspy B (and C), and comes back on
B after B restarts."""

import gevent
import pytest

from helpers.flvclient import FlvPlayer
from helpers.media import ffprobe, publish_args, streams_by_type, wait_published, wait_until
from helpers.relay import assert_same_from_keyframe
from srspy.client.flvfile import read_flv_file
from srspy.app.relay import RTMP_FORWARD

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


def conf(tmp_path, listen="0", vhost_extra="") -> str:
    return f"""
listen {listen};
daemon off;
srs_log_level warn;
http_server {{ enabled on; listen 0; dir {tmp_path}/html; }}
vhost __defaultVhost__ {{
    http_remux {{ enabled on; mount [vhost]/[app]/[stream].flv; }}
    {vhost_extra}
}}
"""


def forwarders(srv):
    return [c for c in srv.stat.clients.values() if c.type == RTMP_FORWARD]


def check_plays(srv, short_flv, path="/live/s"):
    p = FlvPlayer(srv.http_port, f"{path}.flv")
    assert p.read_head() == 200
    p.pump(3.0)
    p.close()
    assert_same_from_keyframe(list(read_flv_file(short_flv)), p.tags)


def test_forward_to_two_servers_and_back_after_a_restart(make_server, procs, short_flv, tmp_path):
    (tmp_path / "html").mkdir(exist_ok=True)
    b = make_server(text=conf(tmp_path))
    c = make_server(text=conf(tmp_path))
    b_port = b.rtmp_ports[0]
    a = make_server(text=conf(tmp_path, vhost_extra=f"forward {{ enabled on; destination 127.0.0.1:{b_port} "
                                                     f"127.0.0.1:{c.rtmp_ports[0]}; }}"))
    pub = procs(publish_args(short_flv, f"rtmp://127.0.0.1:{a.rtmp_ports[0]}/live/s?token=x", loop=True))
    wait_published(a)
    wait_published(b, timeout=15)
    wait_published(c, timeout=15)
    assert len(forwarders(a)) == 2
    assert all(f.send_bytes > 0 for f in forwarders(a))
    assert b.stat.streams["/live/s"].active
    check_plays(b, short_flv)
    info = streams_by_type(ffprobe(f"rtmp://127.0.0.1:{c.rtmp_ports[0]}/live/s"))
    assert info["video"]["codec_name"] == "h264" and (info["video"]["width"], info["video"]["height"]) == (640, 360)

    # B goes away and comes back on the same port: the forward reconnects and B plays again
    b.stop()
    gevent.sleep(1.5)
    b2 = make_server(text=conf(tmp_path, listen=str(b_port)))
    wait_published(b2, timeout=20)
    check_plays(b2, short_flv)
    assert len(forwarders(a)) == 2  # the same forwarders, reconnected

    # the publisher leaves: the forwards stop, B's and C's streams end
    pub.kill()
    wait_until(lambda: not forwarders(a), 10, what="forwarders stopped")
    wait_until(lambda: not b2.sources.sources.get("/live/s") or not b2.sources.sources["/live/s"].publishing, 10,
               what="unpublished on B")
    wait_until(lambda: not c.sources.sources.get("/live/s") or not c.sources.sources["/live/s"].publishing, 10,
               what="unpublished on C")
    assert not any(src.origin_hub.outputs for src in a.sources.sources.values())


def test_forward_keeps_trying_while_the_destination_is_down(make_server, procs, short_flv, tmp_path):
    (tmp_path / "html").mkdir(exist_ok=True)
    down = make_server(text=conf(tmp_path))
    port = down.rtmp_ports[0]
    down.stop()
    a = make_server(text=conf(tmp_path, vhost_extra=f"forward {{ enabled on; destination 127.0.0.1:{port}; }}"))
    procs(publish_args(short_flv, f"rtmp://127.0.0.1:{a.rtmp_ports[0]}/live/s", loop=True))
    wait_published(a)
    gevent.sleep(2.5)
    assert len(forwarders(a)) == 1  # listed while it retries
    b = make_server(text=conf(tmp_path, listen=str(port)))
    wait_published(b, timeout=20)
    check_plays(b, short_flv)
