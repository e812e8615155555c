"""RtmpPushSession against srspy and against nginx-rtmp (Debian's libnginx-mod-rtmp):
a 20 s FLV pushed, recorded by an ffmpeg player, checked with ffprobe."""

import gevent
import pytest

from helpers.media import ffprobe, streams_by_type, wait_until
from helpers.relay import start_nginx_rtmp
from srspy.client.rtmp import RtmpPushSession
from srspy.client.tools import push_file

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

SPEED = 2.0  # paced at twice real time: 10 s per push


def _push_and_check(url, av_flv, procs, tmp_path, player_ready):
    rec = tmp_path / "rec.flv"
    # the player ends by itself (and writes its trailer) 8 s after the data stopped
    player = procs(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-rw_timeout", "8000000", "-i", url,
                    "-c", "copy", "-f", "flv", "-y", str(rec)])
    player_ready()
    push = RtmpPushSession(url, write_timeout=10).start()
    g = gevent.spawn(push_file, push, av_flv, pace=True, speed=SPEED)
    gevent.sleep(4)
    live = streams_by_type(ffprobe(url, timeout=30))
    assert live["video"]["codec_name"] == "h264" and live["audio"]["codec_name"] == "aac"
    assert (live["video"]["width"], live["video"]["height"]) == (640, 360)
    n = g.get(timeout=60)
    assert n > 1000
    gevent.sleep(1.0)
    push.dispose()
    player.wait(30)
    info = ffprobe(str(rec))
    st = streams_by_type(info)
    assert st["video"]["codec_name"] == "h264" and st["audio"]["codec_name"] == "aac"
    assert (st["video"]["width"], st["video"]["height"]) == (640, 360)
    assert int(st["audio"]["sample_rate"]) == 44100 and st["audio"]["channels"] == 2
    src = float(ffprobe(str(av_flv))["format"]["duration"])
    assert abs(float(info["format"]["duration"]) - src) < 1.0, (info["format"]["duration"], src)


def test_push_to_srspy(make_server, av_flv, procs, tmp_path):
    srv = make_server()
    url = f"rtmp://127.0.0.1:{srv.rtmp_ports[0]}/live/pushed"

    def ready():
        wait_until(lambda: any(c.type == "rtmp-play" for c in srv.stat.clients.values()), 15, what="the ffmpeg player")

    _push_and_check(url, av_flv, procs, tmp_path, ready)


def test_push_to_nginx_rtmp(av_flv, procs, tmp_path):
    port = start_nginx_rtmp(procs, tmp_path / "nginx")
    url = f"rtmp://127.0.0.1:{port}/live/pushed"
    _push_and_check(url, av_flv, procs, tmp_path, lambda: gevent.sleep(2.0))
