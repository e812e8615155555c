"""Four HLS directives end to end (app/hls.py): ffmpeg publishes over RTMP, the test reads
the segments and playlists on disk, plays them over HTTP and asks the API.

``hls_ts_floor``: ``[timestamp]`` names from the clock; ``hls_acodec an`` /
``hls_vcodec vn``: one track left out; ``hls_dts_directly off``: audio decode times
counted from samples; ``hls_on_error``: what a failing HLS does to the publish."""

from __future__ import annotations

import json
import math
import os
import time

import m3u8
import pytest
from gevent import subprocess
from helpers.media import publish_args, wait_until
from helpers.net import rtmp_url

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(150)]


def probe_json(path: str, *extra) -> dict:
    out = subprocess.run(["ffprobe", "-v", "error", "-of", "json", *extra, path], check=True, capture_output=True,
                         timeout=60)
    return json.loads(out.stdout)


def hls_server(make_server, root, more: str, fragment: int = 2, extra: str = ""):
    return make_server(vhost_extra=f"hls {{ enabled on; hls_path {root}; hls_fragment {fragment}; hls_window 60; "
                                   f"hls_ctx off; {more} }}", extra=extra)


def listed(m3u8_path, n: int, timeout: float = 40):
    """The playlist once it lists ``n`` segments."""
    return wait_until(lambda: m3u8_path.exists() and len((p := m3u8.loads(m3u8_path.read_text())).segments) >= n
                      and p, timeout, what=f"{n} segments listed")


def plays(port: int, path: str = "/live/s.m3u8", seconds: int = 4) -> None:
    run = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", f"http://127.0.0.1:{port}{path}",
                          "-t", str(seconds), "-f", "null", "-"], capture_output=True, timeout=60)
    assert run.returncode == 0 and run.stderr.strip() == b"", run.stderr[-2000:]


# ---------------------------------------------------------------- hls_ts_floor

def test_ts_floor_names_segments_by_the_clock(make_server, procs, short_flv, tmp_path):
    root = tmp_path / "html"
    fragment = 2
    srv = hls_server(make_server, root, "hls_ts_floor on; hls_ts_file [app]/[stream]-[timestamp].ts;", fragment)
    t0 = time.time()
    procs(publish_args(short_flv, rtmp_url(srv), loop=True))
    pl = listed(root / "live" / "s.m3u8", 4)
    indexes = [int(s.uri[2:-3]) for s in pl.segments]
    assert all(s.uri == f"s-{i}.ts" for s, i in zip(pl.segments, indexes))
    # one more per segment, starting from floor(now / hls_fragment) - 1 at the first one
    assert indexes == list(range(indexes[0], indexes[0] + len(indexes)))
    assert math.floor(t0 / fragment) - 1 <= indexes[0] <= math.floor((t0 + 10) / fragment) - 1
    for s, i in zip(pl.segments, indexes):
        closed = os.stat(root / "live" / s.uri).st_mtime  # renamed when it closed
        assert abs(closed - i * fragment) <= 3 * fragment, (s.uri, closed)
    plays(srv.http_port)
