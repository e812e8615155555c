"""Third-party servers for the client and relay tests, and stream comparison helpers.

* nginx with Debian's libnginx-mod-rtmp: a private prefix and config on free ports;
* node-media-server 4.4.3: installed by npm into a cache directory when missing (once,
  under a file lock, since xdist workers may ask at the same time), started
  programmatically on free ports.

Every process is started through the ``procs`` fixture, which kills it at the end.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import socket
import time
from pathlib import Path

import gevent
import pytest
from gevent import subprocess

from srspy.kernel.codec import F_KEYFRAME, F_SEQUENCE_HEADER, audio_flags, video_flags

from .media import wait_until
from .net import free_port

NGINX_MODULE_DIRS = ("/usr/lib/nginx/modules", "/usr/share/nginx/modules", "/usr/lib64/nginx/modules")
NMS_VERSION = "4.4.3"
LOOP_SLACK = 3  # frames a looping ffmpeg may drop at the end of the file


def wait_port(port: int, timeout: float = 15.0, proc=None, what: str = "server"):
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            pass
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{what} exited with {proc.returncode} before listening on {port}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not listening on {port} after {timeout}s")
        gevent.sleep(0.1)


# -- nginx-rtmp ----------------------------------------------------------------------------
def nginx_module() -> str:
    for d in NGINX_MODULE_DIRS:
        p = Path(d) / "ngx_rtmp_module.so"
        if p.exists():
            return str(p)
    pytest.fail("nginx rtmp module not installed (apt-get install -y nginx libnginx-mod-rtmp)")


def start_nginx_rtmp(procs, workdir: Path) -> int:
    """nginx-rtmp with ``application live { live on; }`` on a free port; returns the RTMP port."""
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if nginx is None:
        pytest.fail("nginx not installed")
    module = nginx_module()
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "logs").mkdir(exist_ok=True)
    port = free_port()
    conf = f"""
load_module {module};
daemon off;
master_process off;
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/logs/error.log warn;
events {{ worker_connections 256; }}
rtmp {{
    server {{
        listen 127.0.0.1:{port};
        chunk_size 4096;
        application live {{ live on; record off; }}
    }}
}}
"""
    (workdir / "nginx.conf").write_text(conf)
    p = procs([nginx, "-p", str(workdir), "-e", str(workdir / "logs/error.log"), "-c", str(workdir / "nginx.conf")])
    wait_port(port, proc=p, what="nginx")
    return port


# -- node-media-server ------------------------------------------------------------------------
def nms_dir() -> Path:
    """The directory holding node_modules/node-media-server (installed on first use)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.fail("node and npm are needed for node-media-server")
    base = Path(os.environ.get("SRSPY_TEST_CACHE", Path.home() / ".cache" / "srspy-tests")) / f"nms-{NMS_VERSION}"
    base.mkdir(parents=True, exist_ok=True)
    marker = base / "node_modules" / "node-media-server" / "package.json"
    with open(base / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not marker.exists():
                r = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error",
                                    f"node-media-server@{NMS_VERSION}"], cwd=base, capture_output=True, timeout=300)
                if r.returncode != 0 or not marker.exists():
                    pytest.fail(f"npm install node-media-server@{NMS_VERSION} failed: {r.stderr.decode()[-500:]}")
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return base


NMS_START = """
const NodeMediaServer = require('node-media-server');
const cfg = JSON.parse(process.argv[2]);
const nms = new NodeMediaServer(cfg);
nms.run();
"""


def start_nms(procs, workdir: Path) -> tuple[int, int]:
    """node-media-server on free ports; returns (rtmp_port, http_port)."""
    base = nms_dir()
    workdir.mkdir(parents=True, exist_ok=True)
    script = base / "start.js"
    if not script.exists() or script.read_text() != NMS_START:
        script.write_text(NMS_START)
    rtmp, http = free_port(), free_port()
    cfg = {"bind": "127.0.0.1", "rtmp": {"port": rtmp}, "http": {"port": http}, "webadmin": {"enable": False},
           "store": {"path": str(workdir / "nms-data")}}
    p = procs(["node", str(script), json.dumps(cfg)], cwd=str(workdir))
    wait_port(rtmp, proc=p, what="node-media-server (rtmp)")
    wait_port(http, proc=p, what="node-media-server (http)")
    return rtmp, http


# -- comparing streams ------------------------------------------------------------------------------
def av_hashes(items) -> list[tuple[int, str]]:
    """(type, md5) of every audio/video tag or message: ``(type, ts, payload)`` tuples,
    FlvTag or MediaMessage (type 8 audio, 9 video)."""
    out = []
    for it in items:
        t = it[0] if isinstance(it, tuple) else it.type
        p = it[2] if isinstance(it, tuple) else it.payload
        if t in (8, 9):
            out.append((t, hashlib.md5(p).hexdigest()))
    return out


def from_first_keyframe(items) -> list[tuple[int, bytes]]:
    """(type, payload) of audio/video from the first video keyframe (not a sequence header) on."""
    seq = []
    started = False
    for it in items:
        t = it[0] if isinstance(it, tuple) else it.type
        p = bytes(it[2] if isinstance(it, tuple) else it.payload)
        if t not in (8, 9):
            continue
        if not started:
            if t == 9 and is_keyframe(p):
                started = True
            else:
                continue
        seq.append((t, p))
    return seq


def wait_frames_from_keyframe(received: list, n: int = 120, timeout: float = 20.0) -> None:
    """Until ``received`` (a list a player fills) holds ``n`` audio/video frames from its
    first keyframe on: enough for assert_same_from_keyframe."""
    wait_until(lambda: len(from_first_keyframe(received)) >= n, timeout, what=f"{n} audio/video frames from a keyframe")


def is_keyframe(p: bytes) -> bool:
    """A coded video keyframe of either RTMP layout (legacy AVC/HEVC NALUs, or an enhanced
    RTMP CodedFrames tag whose track 0 is a keyframe); sequence headers are not."""
    if len(p) < 2:
        return False
    if not p[0] & 0x80:
        return p[0] >> 4 == 1 and p[1] == 1
    flags = video_flags(p)
    return bool(flags & F_KEYFRAME) and not flags & F_SEQUENCE_HEADER


def is_sequence_header(t: int, p: bytes) -> bool:
    """An AVC/HEVC/AV1 or AAC sequence header, or an enhanced RTMP SequenceStart."""
    return bool((video_flags(p) if t == 9 else audio_flags(p)) & F_SEQUENCE_HEADER)


def assert_same_from_keyframe(published, received, min_tags: int = 50):
    """Every received audio/video frame from the first keyframe on is, per type and in
    order, the published one (sequence headers aside): video from that keyframe on, audio
    from where the received audio starts in the published sequence. A looping publisher
    repeats its frames, which the comparison follows."""
    rec = [(t, p) for t, p in from_first_keyframe(received) if not is_sequence_header(t, p)]
    assert len(rec) >= min_tags, f"only {len(rec)} audio/video frames received from the first keyframe"
    pub = []
    for it in published:
        t, p = (it[0], it[2]) if isinstance(it, tuple) else (it.type, it.payload)
        if t in (8, 9) and not is_sequence_header(t, bytes(p)):
            pub.append((t, bytes(p)))
    for kind in (9, 8):
        name = "video" if kind == 9 else "audio"
        r = [hashlib.md5(p).digest() for t, p in rec if t == kind]
        s = [hashlib.md5(p).digest() for t, p in pub if t == kind]
        assert_follows(s, r, name)


def assert_follows(s: list, r: list, name: str) -> None:
    """The received hashes ``r`` are the published ``s`` in order from wherever ``r[0]``
    is, following a looping publisher round the end of ``s``."""
    assert r, f"no {name} received"
    starts = [i for i, h in enumerate(s) if h == r[0]]
    assert starts, f"the first received {name} frame was never published"
    errors = [_walk(s, i, r) for i in starts]
    if None not in errors:
        raise AssertionError(f"{name} frames differ from the published ones ({len(r)} received): {errors[0]}")


def _walk(s: list, i: int, r: list):
    """None when ``r`` follows ``s`` from ``i`` on, going round at the end of ``s``; a looping
    ffmpeg (-stream_loop) may leave out the file's last frames when it starts over."""
    n = len(s)
    for k, h in enumerate(r):
        if s[i % n] == h:
            i += 1
            continue
        if h == s[0] and n - (i % n) <= LOOP_SLACK:
            i = 1
            continue
        where = [j for j, x in enumerate(s) if x == h]
        return f"received #{k} is published #{where} instead of #{i % n} (of {n})"
    return None
