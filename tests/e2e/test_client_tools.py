"""srspy-push and srspy-pull round-trip a file through srspy: every tag's payload and timestamp."""

import shutil
import signal
import sys

import gevent
import pytest
from gevent import subprocess

from helpers.media import ffprobe, publish_args, streams_by_type, wait_published, wait_until
from srspy.client.flvfile import read_flv_file

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


def tool(name: str) -> list[str]:
    """The console script when installed, else the module (same code)."""
    exe = shutil.which(f"srspy-{name}")
    return [exe] if exe else [sys.executable, "-m", "srspy.client.tools", name]


def av(path):
    """Audio/video (type, timestamp, payload); the two leading sequence headers in a fixed order,
    since a player joining after them gets them in SRS's order (audio first)."""
    tags = [(t.type, t.timestamp, t.payload) for t in read_flv_file(path) if t.type in (8, 9)]
    head = [t for t in tags[:2] if t[2][1:2] == b"\x00"]
    return sorted(head) + tags[len(head):]


def _players(srv, kind):
    return [c for c in srv.stat.clients.values() if c.type == kind]


def test_push_and_pull_rtmp_round_trip(make_server, short_flv, tmp_path, procs):
    srv = make_server()
    url = f"rtmp://127.0.0.1:{srv.rtmp_ports[0]}/live/rt"
    out = tmp_path / "out.flv"
    pull = procs(tool("pull") + [url, "-o", str(out)], stderr=subprocess.PIPE)
    wait_until(lambda: _players(srv, "rtmp-play"), 15, what="srspy-pull playing")
    push = procs(tool("push") + ["--no-pace", str(short_flv), url], stderr=subprocess.PIPE)
    _, err = push.communicate(timeout=60)
    assert push.returncode == 0, err
    assert b"tags sent" in err
    want = av(short_flv)
    wait_until(lambda: out.exists() and len(av(out)) >= len(want) - 30, 15, what="the tags in the output")
    gevent.sleep(1.5)  # the last merged write, and the tool's periodic flush
    pull.send_signal(signal.SIGINT)
    _, err = pull.communicate(timeout=15)
    assert pull.returncode == 0, err
    assert av(out) == want
    tags = list(read_flv_file(out))
    assert tags[0].type == 18 and b"onMetaData" in tags[0].payload
    st = streams_by_type(ffprobe(str(out)))
    assert st["video"]["codec_name"] == "h264" and st["audio"]["codec_name"] == "aac"


def test_paced_push_and_http_flv_pull_round_trip(make_server, short_flv, tmp_path, procs):
    srv = make_server(vhost_extra="", extra="")
    srv.config.vhost("__defaultVhost__")["http_remux"]["wait_publisher"] = 20  # play before the publish
    url = f"rtmp://127.0.0.1:{srv.rtmp_ports[0]}/live/rt"
    out = tmp_path / "out.flv"
    pull = procs(tool("pull") + [f"http://127.0.0.1:{srv.http_port}/live/rt.flv", "-o", str(out)],
                 stderr=subprocess.PIPE)
    wait_until(lambda: _players(srv, "flv-play"), 15, what="srspy-pull waiting")
    push = procs(tool("push") + [str(short_flv), url], stderr=subprocess.PIPE)
    assert push.wait(30) == 0
    # the stream is unpublished: the HTTP-FLV body ends and srspy-pull exits by itself
    _, err = pull.communicate(timeout=15)
    assert pull.returncode == 0, err
    got, want = av(out), av(short_flv)
    assert got == want[:len(got)]
    # srspy ends an HTTP-FLV body at unpublish without the last merged write (up to mw_latency)
    assert len(got) >= len(want) - 40, (len(got), len(want))


def test_pull_duration_and_sigterm_leave_valid_files(make_server, short_flv, tmp_path, procs):
    srv = make_server()
    url = f"rtmp://127.0.0.1:{srv.rtmp_ports[0]}/live/loop"
    procs(publish_args(short_flv, url, loop=True))
    wait_published(srv, "/live/loop")
    a, b = tmp_path / "a.flv", tmp_path / "b.flv"
    p1 = procs(tool("pull") + [url, "-o", str(a), "--duration", "2"])
    p2 = procs(tool("pull") + [url, "-o", str(b)])
    assert p1.wait(20) == 0
    gevent.sleep(1.0)
    p2.send_signal(signal.SIGTERM)
    assert p2.wait(15) == 0
    for f in (a, b):
        tags = list(read_flv_file(f))
        assert len(tags) > 20
        st = streams_by_type(ffprobe(str(f)))
        assert st["video"]["codec_name"] == "h264"
    assert 1.0 < float(ffprobe(str(a))["format"]["duration"]) < 4.0


def test_tool_errors(make_server, tmp_path):
    srv = make_server()
    r = subprocess.run(tool("pull") + [f"http://127.0.0.1:{srv.http_port}/live/none.flv", "-o", str(tmp_path / "x.flv")],
                       capture_output=True, timeout=30)
    assert r.returncode == 1 and b"404" in r.stderr
    r = subprocess.run(tool("push") + [str(tmp_path / "missing.flv"), "rtmp://127.0.0.1/live/s"], capture_output=True,
                       timeout=30)
    assert r.returncode == 2 and b"no such file" in r.stderr
    r = subprocess.run(tool("push") + [__file__, "rtmp://127.0.0.1/x"], capture_output=True, timeout=30)
    assert r.returncode == 2
