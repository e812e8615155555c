#!/usr/bin/env python3
"""Live-streaming benchmark: srspy against node-media-server and nginx-rtmp.

    python3 bench/run.py                       # 1000 players, 30 s, all servers and modes
    python3 bench/run.py --players 100,1000 --duration 20 --servers nms,nginx
    python3 bench/run.py --players 3000 --modes flv
    python3 bench/run.py --repeat 5            # each point 5 times (default 3), medians reported
    python3 bench/run.py --quick               # smoke test: srspy, 20 players, 5 s, flv+rtmp+ts+wsflv, once
    python3 bench/run.py --compare ../old-tree # hot path: srspy of another tree against this one

Each point (server x mode x players) starts a fresh server pinned to one core, publishes the
test stream with ffmpeg, runs bench/.build/loadgen on the other core and samples the server's
CPU time and RSS from /proc. Every point is measured --repeat times, the repeats interleaved
across servers (repeat 1 of every point and server, then repeat 2, ...), and the report gives
the median of each figure, the CPU spread and per-repeat ratios.
Results: bench/results/latest.json (every sample) and latest.md.
Standard library only. Everything started here is stopped by pid before exit.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CACHE = os.path.join(HERE, ".cache")
BUILD = os.path.join(HERE, ".build")
RESULTS = os.path.join(HERE, "results")
LOADGEN_SRC = os.path.join(HERE, "loadgen.c")
LOADGEN = os.path.join(BUILD, "loadgen")
MEDIA = os.path.join(CACHE, "bench-720p30-2m-60s.flv")
NMS_VERSION = "4.4.3"
NMS_DIR = os.path.join(CACHE, "nms")
NGINX_MODULE = "/usr/lib/nginx/modules/ngx_rtmp_module.so"
CLK_TCK = os.sysconf("SC_CLK_TCK")

ALL_SERVERS = ("srspy", "nms", "nginx")  # the default --servers
# srspy run from the tree given to --compare (the code before a change): its hot path against this tree's
BASE = "srspy-base"
SERVERS = ALL_SERVERS + (BASE,)
SRSPY_TREES = {"srspy": ROOT, BASE: None}  # --srspy-tree and --compare set them
ALL_MODES = ("flv", "rtmp", "lowlat", "ingest", "ts", "wsflv")
QUICK_MODES = ("flv", "rtmp", "ts", "wsflv")
COMPARE_MODES = ("flv", "rtmp")
# which (variant, protocol) each server uses for each mode; None = not supported
SRSPY_PLAN = {"flv": ("default", "flv"), "rtmp": ("default", "rtmp"), "lowlat": ("lowlat", "flv"),
              "ingest": ("default", "ingest"), "ts": ("ts", "ts"), "wsflv": ("default", "wsflv")}
MODE_PLAN = {
    "srspy": SRSPY_PLAN,
    BASE: SRSPY_PLAN,
    "nms": {"flv": ("default", "flv"), "rtmp": ("default", "rtmp"), "lowlat": ("default", "flv"),
            "ingest": ("default", "ingest"), "ts": None, "wsflv": None},
    "nginx": {"flv": None, "rtmp": ("default", "rtmp"), "lowlat": None, "ingest": ("default", "ingest"),
              "ts": None, "wsflv": None},
}
WHY_SKIP = {("nginx", "flv"): "nginx-rtmp has no HTTP-FLV", ("nginx", "lowlat"): "nginx-rtmp has no HTTP-FLV",
            ("nms", "ts"): "measured for srspy only", ("nms", "wsflv"): "measured for srspy only",
            ("nginx", "ts"): "measured for srspy only", ("nginx", "wsflv"): "measured for srspy only"}
# srspy's other outputs against its own HTTP-FLV, same run: CPU at most this many times HTTP-FLV's
OUTPUT_TARGETS = {"ts": 1.3, "wsflv": 1.1}
HOT_PATH_TOLERANCE = 0.05  # --compare: this tree's CPU within 5 % of the compared tree's


def log(msg: str) -> None:
    print(msg, flush=True)


class BenchError(Exception):
    pass


class Deadline(BaseException):
    pass


# --------------------------------------------------------------------------- processes

class Procs:
    """Every process this run starts, stopped by pid (and its descendants, by pid)."""

    def __init__(self) -> None:
        self.live: list[subprocess.Popen] = []

    def start(self, argv: list[str], *, log_path: str, cwd: str | None = None,
              env: dict | None = None) -> subprocess.Popen:
        out = open(log_path, "ab")
        try:
            p = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                 stderr=subprocess.STDOUT)
        finally:
            out.close()
        self.live.append(p)
        return p

    def stop(self, p: subprocess.Popen, grace: float = 3.0) -> None:
        if p not in self.live:
            return
        self.live.remove(p)
        if p.poll() is not None:
            return
        tree = descendants(p.pid)
        try:
            p.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            try:
                p.kill()
            except ProcessLookupError:
                pass
            p.wait(timeout=5)
        for pid in tree:  # children that outlived their parent
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def stop_all(self) -> None:
        for p in reversed(list(self.live)):
            try:
                self.stop(p, grace=2.0)
            except Exception as e:  # keep stopping the others
                log(f"warning: could not stop pid {p.pid}: {e}")


PROCS = Procs()


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat", "rb") as f:
                s = f.read()
        except OSError:
            continue
        ppid = int(s[s.rindex(b")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def proc_cpu_ticks(pid: int, with_reaped: bool) -> int:
    with open(f"/proc/{pid}/stat", "rb") as f:
        s = f.read()
    fields = s[s.rindex(b")") + 2:].split()
    # fields[0] is state (field 3); utime=14, stime=15, cutime=16, cstime=17
    t = int(fields[11]) + int(fields[12])
    if with_reaped:
        t += int(fields[13]) + int(fields[14])
    return t


def proc_rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def tree_sample(pid: int) -> tuple[int, int, int]:
    """(cpu ticks, rss kB, process count) of pid and its live descendants."""
    ticks = rss = n = 0
    for i, p in enumerate([pid] + descendants(pid)):
        try:
            ticks += proc_cpu_ticks(p, with_reaped=(i == 0))
            rss += proc_rss_kb(p)
            n += 1
        except (OSError, ValueError, IndexError):
            pass
    return ticks, rss, n


def core_times(cpu: int | None) -> tuple[int, int]:
    """(busy, total) jiffies of one core from /proc/stat (all cores if cpu is None)."""
    name = "cpu" if cpu is None else f"cpu{cpu}"
    with open("/proc/stat") as f:
        for line in f:
            parts = line.split()
            if parts[0] == name:
                v = [int(x) for x in parts[1:9]]
                total = sum(v)
                return total - v[3] - v[4], total  # minus idle, iowait
    return 0, 0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise BenchError(f"server exited with code {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise BenchError(f"nothing listening on 127.0.0.1:{port} after {timeout:.0f} s")


def taskset(cpu: int | None, argv: list[str]) -> list[str]:
    return argv if cpu is None else ["taskset", "-c", str(cpu)] + argv


# --------------------------------------------------------------------------- build and media

def build_loadgen(src: str = LOADGEN_SRC, out: str = LOADGEN) -> None:
    """Compile a load generator (bench/loadgen.c by default) unless its binary is newer than
    its source and bench/lgcommon.h."""
    os.makedirs(BUILD, exist_ok=True)
    sources = (src, os.path.join(os.path.dirname(src), "lgcommon.h"))  # the header both include
    if os.path.exists(out) and all(os.path.getmtime(out) >= os.path.getmtime(s) for s in sources):
        return
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        raise BenchError("no C compiler (cc): apt-get install -y gcc")
    log(f"building {os.path.relpath(out, ROOT)}")
    # built under a name of its own, then renamed: runs that build at once (parallel tests)
    # never execute a half-written binary
    tmp = f"{out}.{os.getpid()}.tmp"
    subprocess.run([cc, "-O2", "-o", tmp, src], check=True)
    os.replace(tmp, out)


def make_media() -> None:
    if os.path.exists(MEDIA):
        return
    if not shutil.which("ffmpeg"):
        raise BenchError("ffmpeg is needed: apt-get install -y ffmpeg")
    os.makedirs(CACHE, exist_ok=True)
    log("making the test stream (1280x720 30 fps H.264 2 Mbit/s GOP 60 + AAC 128 kbit/s, 60 s)")
    tmp = MEDIA + ".tmp.flv"
    subprocess.run([
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30,noise=alls=8:allf=t",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
        "-t", "60",
        "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "high", "-pix_fmt", "yuv420p",
        "-b:v", "2M", "-maxrate", "2M", "-bufsize", "4M", "-g", "60", "-keyint_min", "60",
        "-sc_threshold", "0",
        "-c:a", "aac", "-b:a", "128k", "-ar", "44100", "-ac", "2",
        "-f", "flv", tmp], check=True, timeout=600)
    os.replace(tmp, MEDIA)


def media_info(path: str) -> dict:
    """Bitrates of the FLV file: media payload (what RTMP delivers) and FLV stream bytes."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:3] != b"FLV":
        raise BenchError(f"{path}: not FLV")
    off = struct.unpack(">I", data[5:9])[0] + 4
    payload = flv_bytes = 0
    vts: list[int] = []
    keys = 0
    while off + 11 <= len(data):
        t = data[off] & 0x1F
        size = int.from_bytes(data[off + 1:off + 4], "big")
        ts = int.from_bytes(data[off + 4:off + 7], "big") | data[off + 7] << 24
        if off + 11 + size > len(data):
            break
        if t in (8, 9):
            payload += size
        if t in (8, 9, 18):
            flv_bytes += 11 + size + 4
        if t == 9:
            vts.append(ts)
            if data[off + 11] >> 4 == 1 and data[off + 12] == 1:
                keys += 1
        off += 11 + size + 4
    dur = (vts[-1] - vts[0] + (vts[-1] - vts[-2])) / 1000.0
    return {"file": os.path.relpath(path, ROOT), "duration_s": round(dur, 3),
            "payload_mbps": payload * 8 / dur / 1e6, "flv_mbps": flv_bytes * 8 / dur / 1e6,
            "ts_mbps": ts_size(data) * 8 / dur / 1e6, "video_frames": len(vts), "keyframes": keys}


def ts_packets(pes_size: int, first_room: int) -> int:
    """188-byte packets of one PES whose first packet has first_room payload bytes."""
    return 1 + max(0, -(-(pes_size - first_room) // 184))


def ts_size(data: bytes) -> int:
    """Bytes of the MPEG-TS that srspy makes of this FLV (H.264 + AAC), counted as
    srspy/kernel/ts.py builds it: an AUD and Annex-B start codes per access unit, SPS/PPS
    before keyframes that lack them, ADTS headers, PES headers with PTS (and DTS when they
    differ), the PCR in the first video packet, PAT+PMT before every keyframe and every
    500 ms, a PCR-only packet when audio comes 70 ms after the last PCR. The expected rate
    of the ts mode; the players' measured rate checks it (about 6 % above the FLV's)."""
    off = struct.unpack(">I", data[5:9])[0] + 4
    length_size, param_sets = 4, 0
    last_psi = last_pcr = None
    packets = 0
    while off + 11 <= len(data):
        t = data[off] & 0x1F
        size = int.from_bytes(data[off + 1:off + 4], "big")
        ms = int.from_bytes(data[off + 4:off + 7], "big") | data[off + 7] << 24
        body = data[off + 11:off + 11 + size]
        off += 11 + size + 4
        if len(body) < size or size < 2:
            continue
        key = False
        if t == 9 and body[0] & 0x0F == 7:
            if body[1] == 0:  # avcC: NALU length size, SPS and PPS
                rec = body[5:]
                length_size = (rec[4] & 3) + 1
                pos, param_sets = 5, 0
                for mask in (0x1F, 0xFF):
                    for _ in range(rec[pos] & mask):
                        n = int.from_bytes(rec[pos + 1:pos + 3], "big")
                        param_sets += 4 + n
                        pos += 2 + n
                    pos += 1
                continue
            if body[1] != 1:
                continue
            key = body[0] >> 4 == 1
            cts = int.from_bytes(body[2:5], "big", signed=True)
            es, pos, types = 0, 5, []
            while pos + length_size <= size:
                n = int.from_bytes(body[pos:pos + length_size], "big")
                pos += length_size
                if n:
                    types.append(body[pos] & 0x1F)
                    es += 4 + n
                pos += n
            if not types:
                continue
            es += (6 if types[0] != 9 else 0) + (param_sets if key and 7 not in types else 0)
            pes, room = 9 + (5 if cts == 0 else 10) + es, 176  # the first packet's AF: flags + PCR
        elif t == 8 and body[0] >> 4 == 10:
            if body[1] != 1:
                continue
            pes, room = 9 + 5 + 7 + size - 2, 184
        else:
            continue
        if key or last_psi is None or ms - last_psi >= 500:
            packets += 2
            last_psi = ms
        if t == 8 and (last_pcr is None or ms - last_pcr >= 70):
            packets += 1
            last_pcr = ms
        if t == 9:
            last_pcr = ms if last_pcr is None else max(ms, last_pcr)
        packets += ts_packets(pes, room)
    return packets * 188


# --------------------------------------------------------------------------- servers

def srspy_env(tree: str) -> dict:
    return dict(os.environ, PYTHONPATH=tree + os.pathsep + os.environ.get("PYTHONPATH", ""))


def srspy_checker(name: str):
    def available() -> tuple[bool, str]:
        tree = SRSPY_TREES[name]
        if not tree or not os.path.isdir(os.path.join(tree, "srspy")):
            return False, f"no srspy package in {tree}"
        r = subprocess.run([sys.executable, "-c", "import srspy.cli, sys; print(srspy.__file__)"], cwd=tree,
                           env=srspy_env(tree), capture_output=True, text=True)
        if r.returncode != 0:
            last = (r.stderr.strip().splitlines() or ["?"])[-1]
            return False, f"srspy is not importable from {tree} ({last})"
        got = os.path.realpath(r.stdout.strip())
        if not got.startswith(os.path.realpath(tree) + os.sep):
            return False, f"srspy from {tree} imports {got} instead"
        return True, ""
    return available


def tree_commit(tree: str) -> str:
    """Short commit of a git tree, with "+changes" when it has uncommitted ones ("" when unknown)."""
    try:
        head = subprocess.run(["git", "-C", tree, "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", tree, "status", "--porcelain", "--untracked-files=no", "--", "srspy"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    return head + ("+changes" if head and dirty else "")


def nms_available() -> tuple[bool, str]:
    if not shutil.which("node") or not shutil.which("npm"):
        return False, "node/npm not found (apt-get install -y nodejs npm)"
    pkg = os.path.join(NMS_DIR, "node_modules", "node-media-server", "package.json")
    try:
        with open(pkg) as f:
            if json.load(f).get("version") == NMS_VERSION:
                return True, ""
    except (OSError, ValueError):
        pass
    log(f"installing node-media-server@{NMS_VERSION} into bench/.cache/nms")
    os.makedirs(NMS_DIR, exist_ok=True)
    pj = os.path.join(NMS_DIR, "package.json")
    if not os.path.exists(pj):
        with open(pj, "w") as f:
            json.dump({"name": "bench-nms", "private": True}, f)
    r = subprocess.run(["npm", "install", "--no-audit", "--no-fund", f"node-media-server@{NMS_VERSION}"],
                       cwd=NMS_DIR, capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        return False, "npm install failed: " + (r.stderr.strip().splitlines() or ["?"])[-1]
    return True, ""


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.path.exists(p)), None)


def nginx_available() -> tuple[bool, str]:
    if nginx_binary() and os.path.exists(NGINX_MODULE):
        return True, ""
    if os.geteuid() == 0 and shutil.which("apt-get"):
        log("installing nginx and libnginx-mod-rtmp with apt-get")
        r = subprocess.run(["apt-get", "install", "-y", "nginx", "libnginx-mod-rtmp"],
                           env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"),
                           capture_output=True, text=True, timeout=900)
        if r.returncode == 0 and nginx_binary() and os.path.exists(NGINX_MODULE):
            return True, ""
        return False, "apt-get install nginx libnginx-mod-rtmp failed"
    return False, "nginx with libnginx-mod-rtmp not installed (apt-get install -y nginx libnginx-mod-rtmp)"


AVAILABLE = {"srspy": srspy_checker("srspy"), BASE: srspy_checker(BASE), "nms": nms_available,
             "nginx": nginx_available}

SRSPY_CONF = """\
listen {rtmp};
max_connections 10000;
daemon off;
srs_log_tank console;
srs_log_level warn;
http_server {{
    enabled on;
    listen {http};
}}
vhost __defaultVhost__ {{
{extra}    http_remux {{
        enabled on;
        mount {mounts};
    }}
}}
"""
SRSPY_MOUNTS = {"default": "[vhost]/[app]/[stream].flv", "lowlat": "[vhost]/[app]/[stream].flv",
                "ts": "[vhost]/[app]/[stream].flv [vhost]/[app]/[stream].ts"}
SRSPY_LOWLAT = """\
    min_latency on;
    play {
        mw_latency 0;
        gop_cache on;
    }
"""

NMS_START = """\
// started by bench/run.py: node start.js RTMP_PORT HTTP_PORT STORE_DIR
const NodeMediaServer = require('node-media-server');
const nms = new NodeMediaServer({
  bind: '127.0.0.1',
  rtmp: { port: Number(process.argv[2]) },
  http: { port: Number(process.argv[3]) },
  webadmin: { enable: false },
  store: { path: process.argv[4] }
});
nms.run();
"""

NGINX_CONF = """\
load_module {module};
daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile 65536;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{
    worker_connections 16384;
}}
rtmp {{
    server {{
        listen 127.0.0.1:{rtmp};
        chunk_size 4096;
        application live {{
            live on;
            record off;
        }}
    }}
}}
"""


def start_server(name: str, variant: str, workdir: str, cpu: int | None) -> tuple[subprocess.Popen, int, int]:
    rtmp, http = free_port(), free_port()
    logf = os.path.join(workdir, "server.log")
    if name in SRSPY_TREES:
        conf = os.path.join(workdir, "srspy.conf")
        with open(conf, "w") as f:
            f.write(SRSPY_CONF.format(rtmp=rtmp, http=http, mounts=SRSPY_MOUNTS[variant],
                                      extra=SRSPY_LOWLAT if variant == "lowlat" else ""))
        tree = SRSPY_TREES[name]
        p = PROCS.start(taskset(cpu, [sys.executable, "-m", "srspy", "-c", conf]), log_path=logf, cwd=tree,
                        env=srspy_env(tree))
        ports = (rtmp, http)
    elif name == "nms":
        script = os.path.join(NMS_DIR, "start.js")
        with open(script, "w") as f:
            f.write(NMS_START)
        store = os.path.join(workdir, "nms-data")
        p = PROCS.start(taskset(cpu, ["node", script, str(rtmp), str(http), store]), log_path=logf, cwd=NMS_DIR)
        ports = (rtmp, http)
    elif name == "nginx":
        conf = os.path.join(workdir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(module=NGINX_MODULE, dir=workdir, rtmp=rtmp))
        p = PROCS.start(taskset(cpu, [nginx_binary(), "-p", workdir, "-c", conf, "-e", os.path.join(workdir, "error.log")]),
                        log_path=logf, cwd=workdir)
        ports = (rtmp,)
        http = 0
    else:
        raise BenchError(f"unknown server {name}")
    for port in ports:
        wait_port(port, p)
    return p, rtmp, http


def server_version(name: str) -> str:
    try:
        if name in SRSPY_TREES:
            tree = SRSPY_TREES[name]
            r = subprocess.run([sys.executable, "-m", "srspy", "-v"], cwd=tree, env=srspy_env(tree),
                               capture_output=True, text=True, timeout=30)
            v = "srspy " + (r.stdout.strip() or r.stderr.strip().splitlines()[-1])
            commit = tree_commit(tree)
            label = "" if name == "srspy" else f"{name}: "
            where = "this tree" if tree == ROOT else tree
            return f"{label}{v} ({where}" + (f", commit {commit})" if commit else ")")
        if name == "nms":
            node = subprocess.run(["node", "-v"], capture_output=True, text=True).stdout.strip()
            return f"node-media-server {NMS_VERSION} (node {node})"
        if name == "nginx":
            r = subprocess.run([nginx_binary(), "-v"], capture_output=True, text=True)
            return r.stderr.strip().replace("nginx version: ", "") + " + libnginx-mod-rtmp"
    except Exception as e:  # informational only
        return f"{name} (version unknown: {e})"
    return name


# --------------------------------------------------------------------------- one point

def run_loadgen(argv: list[str], cpu: int | None, timeout: float) -> dict:
    out = argv[argv.index("-o") + 1]
    r = subprocess.run(taskset(cpu, [LOADGEN] + argv), capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise BenchError(f"loadgen failed ({r.returncode}): {r.stderr.strip()[-300:]}")
    with open(out) as f:
        return json.load(f)


def wait_stream(proto: str, url: str, workdir: str, cpu: int | None, tries: int = 5) -> None:
    """Until one player gets media: the publisher is up and the server relays it."""
    for _ in range(tries):
        rep = run_loadgen([proto, "-u", url, "-n", "1", "-d", "3", "-o", os.path.join(workdir, "probe.json")],
                          cpu, timeout=30)
        if rep["ok"] == 1:
            return
        time.sleep(1)
    raise BenchError(f"no media from {url} after {tries} probes ({rep['fail_reasons'] or 'no media'})")


def run_point(server: str, mode: str, variant: str, proto: str, n: int, args, media: dict, rep: int = 1) -> dict:
    tag = f"{server}-{mode}-{n}-r{rep}"
    workdir = os.path.join(CACHE, "run", tag)
    shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(workdir)
    point = {"server": server, "mode": mode, "variant": variant, "protocol": proto, "players": n,
             "publishers": 0, "repeat": rep, "error": None}
    srv = pub = None
    try:
        srv, rtmp, http = start_server(server, variant, workdir, args.server_cpu)
        point["pid"] = srv.pid
        warmup = args.warmup
        if proto == "ingest":
            count = args.publishers
            point["players"] = 0
            point["publishers"] = count
            lg_args = ["publish", "-u", f"rtmp://127.0.0.1:{rtmp}/live/ingest", "-f", MEDIA, "-n", str(count),
                       "--ramp", str(args.pub_ramp)]
            warmup = max(warmup, count / args.pub_ramp * 0.1 + 3)
            expected = count * media["payload_mbps"]
        else:
            pub = PROCS.start(taskset(args.client_cpu, [
                "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-stream_loop", "-1",
                "-i", MEDIA, "-c", "copy", "-f", "flv", f"rtmp://127.0.0.1:{rtmp}/live/bench"]),
                log_path=os.path.join(workdir, "ffmpeg.log"))
            url = {"flv": f"http://127.0.0.1:{http}/live/bench.flv", "ts": f"http://127.0.0.1:{http}/live/bench.ts",
                   "wsflv": f"ws://127.0.0.1:{http}/live/bench.flv"}.get(proto, f"rtmp://127.0.0.1:{rtmp}/live/bench")
            wait_stream(proto, url, workdir, args.client_cpu)
            lg_args = [proto, "-u", url, "-n", str(n), "--ramp", str(args.ramp), "--poll-ms", str(args.poll_ms)]
            warmup = max(warmup, n / args.ramp * 0.1 + 3)
            # what players receive: FLV (also as WebSocket payload), TS, or RTMP message payload
            rate = {"flv": "flv_mbps", "wsflv": "flv_mbps", "ts": "ts_mbps"}.get(proto, "payload_mbps")
            expected = n * media[rate]
        total = warmup + args.duration
        report = os.path.join(workdir, "loadgen.json")
        lg_argv = lg_args + ["-d", f"{total:.3f}", "--warmup", f"{warmup:.3f}", "-o", report]
        point["loadgen_argv"] = ["bench/.build/loadgen"] + lg_argv

        lg = PROCS.start(taskset(args.client_cpu, [LOADGEN] + lg_argv), log_path=os.path.join(workdir, "loadgen.log"))
        t0 = time.monotonic()
        t_w, t_e = t0 + warmup, t0 + total
        s0 = s1 = None
        rss_max = nprocs = 0
        while True:
            now = time.monotonic()
            if srv.poll() is not None:
                raise BenchError(f"server exited with code {srv.returncode} during the run")
            if s0 is None and now >= t_w:
                ticks, rss, nprocs = tree_sample(srv.pid)
                s0 = (now, ticks)
                c0 = (core_times(args.server_cpu), core_times(args.client_cpu))
                rss_max = rss
            elif s0 is not None and s1 is None:
                ticks, rss, k = tree_sample(srv.pid)
                rss_max = max(rss_max, rss)
                nprocs = max(nprocs, k)
                if now >= t_e:
                    s1 = (now, ticks)
                    c1 = (core_times(args.server_cpu), core_times(args.client_cpu))
            if s1 is not None and lg.poll() is not None:
                break
            if now > t_e + 30:
                raise BenchError("loadgen did not stop")
            nxt = t_w if s0 is None else t_e if s1 is None else now + 0.05
            time.sleep(max(0.01, min(0.5, nxt - now)))
        PROCS.stop(lg)
        if lg.returncode != 0:
            raise BenchError(f"loadgen exited with {lg.returncode}")
        with open(report) as f:
            rep = json.load(f)
        cpu_pct = (s1[1] - s0[1]) / CLK_TCK / (s1[0] - s0[0]) * 100
        busy = [round(100 * (b1[0] - b0[0]) / max(1, b1[1] - b0[1]), 1) for b0, b1 in zip(c0, c1)]
        if pub is not None and pub.poll() is not None:
            point["error"] = f"publisher ffmpeg exited ({pub.returncode}) during the run"
        mbps = rep["mbps_total"] or 0.0
        point.update({
            "server_cpu_pct": round(cpu_pct, 1),
            "server_rss_mb": round(rss_max / 1024, 1),
            "server_processes": nprocs,
            "core_busy_pct": {"server_core": busy[0], "client_core": busy[1]},
            "mbps": round(mbps, 1),
            "expected_mbps": round(expected, 1),
            "delivered_pct": round(100 * mbps / expected, 1) if expected else None,
            "ok": rep["ok"], "failed": rep["failed"], "no_media": rep["no_media"],
            "not_started": rep["not_started"], "fail_reasons": rep["fail_reasons"],
            "realtime": pick(rep.get("realtime"), ("min", "p50"), 3),
            "lag_ms": pick(rep.get("lag_ms") or rep.get("send_lag_ms")),
            "ttfb_ms": pick(rep["ttfb_ms"]),
            "first_key_ms": pick(rep["first_key_ms"]),
            "mbps_per_conn": pick(rep["mbps_per_conn"], ("min", "p50", "mean")),
            "loadgen_cpu_pct": rep["loadgen_cpu"]["window_pct"],
            "loadgen_cpu_s": rep["loadgen_cpu"]["total_s"],
            "window_s": rep["window_s"],
            "warmup_s": round(warmup, 3),
        })
        if proto == "ingest":
            point["publish_start_ms"] = pick(rep["publish_start_ms"])
    except BenchError as e:
        point["error"] = str(e)
    except subprocess.TimeoutExpired as e:
        point["error"] = f"timeout: {e}"
    finally:
        if pub is not None:
            PROCS.stop(pub)
        if srv is not None:
            PROCS.stop(srv)
    point["logs"] = os.path.relpath(workdir, ROOT)
    return point


def contended(p: dict) -> str:
    """Other work on the server's core makes the CPU figure unreliable."""
    b = p.get("core_busy_pct")
    if not b or "server_cpu_pct" not in p:
        return ""
    extra = b["server_core"] - p["server_cpu_pct"]
    if extra > 15:
        return (f"server core {b['server_core']}% busy while the server used {p['server_cpu_pct']}%: "
                "other processes (or interrupt work) shared the core")
    if b["client_core"] > 90:
        return f"client core {b['client_core']}% busy: the loadgen/publisher core was saturated"
    if p.get("loadgen_cpu_pct", 0) > 60:
        return (f"loadgen used {p['loadgen_cpu_pct']}% of its core: close to being the bottleneck "
                "(split the players over more client cores or machines)")
    return ""


def pick(d: dict | None, keys=("p50", "p99"), nd: int = 1) -> dict | None:
    if not d or not d.get("n"):
        return None
    return {k: (round(d[k], nd) if d[k] is not None else None) for k in keys}


# --------------------------------------------------------------------------- repeats

# Per point, the figures of the K samples (one fresh server each) are reduced to their median;
# ok/fail comes from the worst sample; every sample stays in the JSON under "samples".
IDENTITY = ("server", "mode", "variant", "protocol", "players", "publishers")
MEDIAN_FIELDS = ("server_cpu_pct", "server_rss_mb", "server_processes", "mbps", "expected_mbps", "delivered_pct",
                 "loadgen_cpu_pct", "loadgen_cpu_s", "window_s", "warmup_s")
MEDIAN_DICTS = ("core_busy_pct", "realtime", "lag_ms", "ttfb_ms", "first_key_ms", "mbps_per_conn",
                "publish_start_ms")
WORST_FIELDS = ("ok", "failed", "no_media", "not_started", "fail_reasons")


def measured(p: dict) -> bool:
    return "server_cpu_pct" in p


def median(values) -> float | None:
    """Median of the values that are not None (mean of the middle two for an even count)."""
    v = [x for x in values if x is not None]
    return round(statistics.median(v), 3) if v else None


def spread(values) -> list | None:
    """[min, max] of the values that are not None."""
    v = [x for x in values if x is not None]
    return [min(v), max(v)] if v else None


def median_dict(dicts) -> dict | None:
    """Key by key median of dicts such as {"p50": .., "p99": ..}; None when no sample has one."""
    ds = [d for d in dicts if d]
    if not ds:
        return None
    keys = list(dict.fromkeys(k for d in ds for k in d))
    return {k: median(d.get(k) for d in ds) for k in keys}


def failures(p: dict) -> int:
    """Connections of one measured sample that failed, got no media or were not started."""
    return p["failed"] + p["no_media"] + p["not_started"]


def aggregate(samples: list[dict]) -> dict:
    """One report point from the samples (run_point results, each with "repeat") of one point."""
    good = [s for s in samples if measured(s)]
    first = (good or samples)[0]
    p = {k: first.get(k) for k in IDENTITY}
    p["repeats"] = len(samples)
    p["measured"] = len(good)
    errs = [s for s in samples if s.get("error")]
    if not errs:
        p["error"] = None
    elif len(samples) == 1:
        p["error"] = errs[0]["error"]
    else:
        p["error"] = "; ".join(f"repeat {s.get('repeat')}: {s['error']}" for s in errs)
    # a point counts as failed when any of its samples failed (error, or any connection failed)
    p["failed_repeats"] = [s.get("repeat") for s in samples
                           if s.get("error") or not measured(s) or failures(s)]
    if samples and all(s.get("reused_from") for s in samples):
        p["reused_from"] = samples[0]["reused_from"]
    if good:
        for k in MEDIAN_FIELDS:
            if any(k in s for s in good):
                p[k] = median(s.get(k) for s in good)
        for k in MEDIAN_DICTS:
            if any(k in s for s in good):
                p[k] = median_dict(s.get(k) for s in good)
        p["server_cpu_pct_range"] = spread(s["server_cpu_pct"] for s in good)
        p["server_rss_mb_range"] = spread(s["server_rss_mb"] for s in good)
        worst = max(good, key=failures)  # the first of equally bad samples
        for k in WORST_FIELDS:
            p[k] = worst[k]
        p["worst_repeat"] = worst.get("repeat")
    p["samples"] = samples
    return p


# --------------------------------------------------------------------------- report

def fmt_pair(d: dict | None, a="p50", b="p99") -> str:
    if not d:
        return "-"
    f = lambda v: "-" if v is None else f"{v:.0f}"  # noqa: E731
    return f"{f(d.get(a))}/{f(d.get(b))}"


def fmt(v, spec: str = ".1f") -> str:
    return "-" if v is None else format(v, spec)


COLS = ["server", "mode", "conns", "runs", "ok/fail", "CPU %", "CPU % (min-max)", "RSS MB", "Mbit/s", "expected",
        "deliv %", "realtime min/p50", "lag p50/p99 ms", "TTFB p50/p99 ms", "1st key p50/p99 ms", "loadgen CPU %"]


def row(p: dict) -> list[str]:
    conns = p["publishers"] or p["players"]
    runs = str(p["measured"]) if p["measured"] == p["repeats"] else f"{p['measured']}/{p['repeats']}"
    if not measured(p):
        return [p["server"], p["mode"], str(conns), runs, "ERROR", (p["error"] or "?")[:60]] + [""] * (len(COLS) - 6)
    okf = f"{p['ok']}/{failures(p)}"
    if p["mode"] == "ingest":
        okf += " pub"
    n_err = sum(1 for s in p["samples"] if s.get("error"))
    if n_err:
        okf += f" {n_err} err"
    lo, hi = p["server_cpu_pct_range"]
    rt = p.get("realtime")
    return [p["server"], p["mode"], str(conns), runs, okf, fmt(p["server_cpu_pct"]), f"{lo:.1f}-{hi:.1f}",
            fmt(p["server_rss_mb"], ".0f"), fmt(p["mbps"], ".0f"), fmt(p["expected_mbps"], ".0f"),
            fmt(p["delivered_pct"]),
            "-" if not rt else f"{fmt(rt.get('min'), '.2f')}/{fmt(rt.get('p50'), '.2f')}",
            fmt_pair(p["lag_ms"]), fmt_pair(p["ttfb_ms"]),
            "-" if p["mode"] == "ingest" else fmt_pair(p["first_key_ms"]), fmt(p["loadgen_cpu_pct"])]


def text_table(points: list[dict]) -> str:
    rows = [COLS] + [row(p) for p in points]
    w = [max(len(r[i]) for r in rows) for i in range(len(COLS))]
    lines = ["  ".join(c.rjust(w[i]) if i >= 2 else c.ljust(w[i]) for i, c in enumerate(r)) for r in rows]
    lines.insert(1, "  ".join("-" * x for x in w))
    return "\n".join(lines)


def md_table(points: list[dict]) -> str:
    out = ["| " + " | ".join(COLS) + " |", "|" + "|".join("---" for _ in COLS) + "|"]
    out += ["| " + " | ".join(row(p)) + " |" for p in points]
    return "\n".join(out)


def ratio(a, b) -> float | None:
    return round(a / b, 2) if a is not None and b else None


def paired(p: dict, q: dict) -> dict:
    """p / q: from the medians, and pairwise per repeat (p's sample r against q's sample r, for
    the repeats both have)."""
    mine = {s.get("repeat"): s for s in p["samples"] if measured(s)}
    theirs = {s.get("repeat"): s for s in q["samples"] if measured(s)}
    reps = sorted(set(mine) & set(theirs))
    cpu = [ratio(mine[r]["server_cpu_pct"], theirs[r]["server_cpu_pct"]) for r in reps]
    rss = [ratio(mine[r]["server_rss_mb"], theirs[r]["server_rss_mb"]) for r in reps]
    low = [r for r in reps if any(d is not None and d < 95 for d in
                                  (mine[r]["delivered_pct"], theirs[r]["delivered_pct"]))]
    return {"cpu_ratio": ratio(p["server_cpu_pct"], q["server_cpu_pct"]),
            "rss_ratio": ratio(p["server_rss_mb"], q["server_rss_mb"]),
            "delivered_pct": [p["delivered_pct"], q["delivered_pct"]],
            "repeats": reps, "repeats_requested": max(p["repeats"], q["repeats"]),
            "cpu_ratio_per_repeat": cpu, "rss_ratio_per_repeat": rss,
            "cpu_ratio_range": spread(cpu), "rss_ratio_range": spread(rss),
            "below_95_repeats": low}


def by_point(points: list[dict]) -> dict:
    return {(p["server"], p["mode"], p["players"] or p["publishers"]): p for p in points if measured(p)}


def ratios(points: list[dict]) -> list[dict]:
    """srspy / peer for the same mode and count (the peers, and srspy-base of --compare)."""
    good = by_point(points)
    out = []
    for (srv, mode, n), p in good.items():
        if srv != "srspy":
            continue
        for other in ("nms", "nginx", BASE):
            q = good.get((other, mode, n))
            if q:
                out.append({"mode": mode, "conns": n, "vs": other, **paired(p, q)})
    return out


def output_ratios(points: list[dict]) -> list[dict]:
    """srspy's other outputs (OUTPUT_TARGETS) / its HTTP-FLV, same count and run."""
    good = by_point(points)
    out = []
    for (srv, mode, n), p in good.items():
        q = good.get((srv, "flv", n))
        if srv == "srspy" and mode in OUTPUT_TARGETS and q:
            r = {"mode": mode, "conns": n, "vs": "flv", "target": OUTPUT_TARGETS[mode], **paired(p, q)}
            r["met"] = r["cpu_ratio"] is not None and r["cpu_ratio"] <= r["target"]
            out.append(r)
    return out


def per_repeat(r: dict) -> str:
    """" (per repeat a-b)" for a ratio with more than one repeat."""
    rng = r.get("cpu_ratio_range")
    reps = r.get("repeats") or []
    if not rng or len(reps) < 2:
        return ""
    per = f" (per repeat {rng[0]:.2f}-{rng[1]:.2f}"
    if len(reps) < r.get("repeats_requested", len(reps)):
        per += f", {len(reps)} of {r['repeats_requested']} repeats"
    return per + ")"


def output_lines(rs: list[dict]) -> list[str]:
    return [f"srspy {r['mode']}/flv {r['conns']}: CPU x{fmt(r['cpu_ratio'], '.2f')}{per_repeat(r)}, "
            f"RSS x{fmt(r['rss_ratio'], '.2f')}; target CPU <= {r['target']}x: "
            + ("met" if r["met"] else "MISSED") for r in rs]


def hot_path_lines(points: list[dict], rs: list[dict]) -> list[str]:
    """The --compare verdict per mode: this tree's (new) CPU against srspy-base's (old)."""
    good = by_point(points)
    out = []
    for r in rs:
        if r["vs"] != BASE:
            continue
        new, old = good[("srspy", r["mode"], r["conns"])], good[(BASE, r["mode"], r["conns"])]
        x = new["server_cpu_pct"] / old["server_cpu_pct"] if old["server_cpu_pct"] else None
        if x is None:
            verdict = "no CPU figure for the old code"
        elif x <= 1 + HOT_PATH_TOLERANCE:
            verdict = f"within {HOT_PATH_TOLERANCE:.0%} (met)"
        else:
            verdict = f"MISSED: {x - 1:+.1%} over the old code"
        spread_of = lambda p: "{:.1f}-{:.1f}".format(*p["server_cpu_pct_range"])  # noqa: E731
        out.append(f"{r['mode']} {r['conns']}: new/old CPU x{x:.3f}{per_repeat(r)}; old {old['server_cpu_pct']:.1f} % "
                   f"({spread_of(old)}, {old['measured']} runs), new {new['server_cpu_pct']:.1f} % "
                   f"({spread_of(new)}, {new['measured']} runs); RSS {old['server_rss_mb']:.0f} -> "
                   f"{new['server_rss_mb']:.0f} MB: {verdict}")
    return out


def ratio_lines(rs: list[dict]) -> list[str]:
    lines = []
    for r in rs:
        per = per_repeat(r)
        note = ""
        if any(d is not None and d < 95 for d in r["delivered_pct"]):
            note = f"  (not comparable: delivered {r['delivered_pct'][0]}% vs {r['delivered_pct'][1]}%)"
        elif r.get("below_95_repeats"):
            note = "  (delivered below 95 % in repeat " + ", ".join(map(str, r["below_95_repeats"])) + ")"
        lines.append(f"srspy/{r['vs']} {r['mode']} {r['conns']}: CPU x{fmt(r['cpu_ratio'], '.2f')}{per}, "
                     f"RSS x{fmt(r['rss_ratio'], '.2f')}{note}")
    return lines


def sample_notes(points: list[dict], what) -> list[str]:
    """One line per sample for which what(sample) says something."""
    out = []
    for p in points:
        for s in p["samples"]:
            msg = what(s)
            if msg:
                rep = f" (repeat {s.get('repeat')})" if p["repeats"] > 1 else ""
                out.append(f"{p['server']} {p['mode']} {p['players'] or p['publishers']}{rep}: {msg}")
    return out


def write_results(meta: dict, points: list[dict], rs: list[dict]) -> None:
    os.makedirs(RESULTS, exist_ok=True)
    outs = output_ratios(points)
    hot = hot_path_lines(points, rs)
    with open(os.path.join(RESULTS, "latest.json"), "w") as f:
        json.dump({"meta": meta, "points": points, "ratios": rs, "output_ratios": outs, "hot_path": hot}, f,
                  indent=2)
    k = meta["repeat"]
    md = [f"# Benchmark results ({meta['date']})", "",
          f"Host: {meta['cpu']}, {meta['cores']} cores, {meta['kernel']}. Server on core {meta['server_cpu']}, "
          f"publisher and loadgen on core {meta['client_cpu']}.",
          f"Stream: {meta['media']['file']}, {meta['media']['payload_mbps']:.2f} Mbit/s media payload "
          f"({meta['media']['flv_mbps']:.2f} Mbit/s as FLV, {meta['media'].get('ts_mbps', 0):.2f} as TS). Window {meta['duration_s']} s after warmup.",
          (f"Each point measured {k} times (a fresh server each time, "
           + ("old and new alternating" if meta.get("compare") else "repeats interleaved across servers")
           + "); figures are medians, CPU % (min-max) the range over the repeats, ok/fail the worst repeat."
           if k > 1 else "Each point measured once."),
          "Servers: " + "; ".join(meta["versions"].values()), "",
          "Command: `" + meta["command"] + "`", "", md_table(points), ""]
    if rs:
        md += ["## srspy ratios (same mode and connection count)", ""]
        if k > 1:
            md += ["From the medians; \"per repeat\" is the range, over the repeats, of srspy's sample r "
                   "divided by the peer's sample r.", ""]
        md += [f"- {x}" for x in ratio_lines(rs)] + [""]
    if hot:
        md += [f"## Hot path: this tree (srspy, new) against {BASE} (old, {meta.get('compare')})", "",
               f"Samples alternate old, new, old, new, ... (a fresh server each); figures are medians, in "
               f"brackets the per-repeat ratios (new sample r / old sample r) and the CPU ranges. Target: new CPU "
               f"within {HOT_PATH_TOLERANCE:.0%} of the old.", ""]
        md += [f"- {x}" for x in hot] + [""]
    if outs:
        md += ["## srspy's outputs against its own HTTP-FLV (same run, same player count)", ""]
        md += [f"- {x}" for x in output_lines(outs)] + [""]
    skipped = meta.get("skipped") or []
    if skipped:
        md += ["## Skipped", ""] + [f"- {s}" for s in skipped] + [""]
    warns = sample_notes(points, contended)
    if warns:
        md += ["## Warnings", ""] + [f"- {w}" for w in warns] + [""]
    errs = sample_notes(points, lambda s: s.get("error"))
    if errs:
        md += ["## Errors", ""] + [f"- {e}" for e in errs] + [""]
    md += ["CPU % is of one core (server process tree, /proc utime+stime over the window); RSS is the "
           "maximum VmRSS sum over the window; lag is how far a player fell behind real time during its "
           "session; see bench/README.md.", ""]
    with open(os.path.join(RESULTS, "latest.md"), "w") as f:
        f.write("\n".join(md))


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


# --------------------------------------------------------------------------- main

def parse_args(argv=None):
    ap = argparse.ArgumentParser(description="Benchmark srspy against node-media-server and nginx-rtmp.")
    ap.add_argument("--players", default=None, help="player counts, comma separated (default 1000)")
    ap.add_argument("--duration", type=float, default=None, help="measurement window per point, s (default 30)")
    ap.add_argument("--warmup", type=float, default=None,
                    help="seconds before the window (default 5; at least ramp time + 3)")
    ap.add_argument("--servers", default=None,
                    help=f"comma list of srspy,nms,nginx (default all), and {BASE} with --compare")
    ap.add_argument("--modes", default=None, help="comma list of " + ",".join(ALL_MODES) + " (default all)")
    ap.add_argument("--srspy-tree", default=None, metavar="DIR",
                    help="run the srspy server from this source tree (default: this repository)")
    ap.add_argument("--compare", default=None, metavar="DIR",
                    help=f"hot-path comparison: srspy from DIR (as {BASE}) against this tree's srspy, "
                         f"strictly alternating ({BASE}, srspy) for every point and repeat; default servers "
                         f"{BASE},srspy and modes " + ",".join(COMPARE_MODES))
    ap.add_argument("--publishers", type=int, default=100, help="publishers in the ingest mode (100)")
    ap.add_argument("--ramp", type=int, default=200, help="players started per 100 ms (200)")
    ap.add_argument("--pub-ramp", type=int, default=20, help="publishers started per 100 ms (20)")
    ap.add_argument("--poll-ms", type=int, default=2,
                    help="loadgen event-loop period for players, ms (2): larger = cheaper reads, coarser times")
    ap.add_argument("--server-cpu", type=int, default=0, help="core for the server (0)")
    ap.add_argument("--client-cpu", type=int, default=1, help="core for ffmpeg and the loadgen (1)")
    ap.add_argument("--repeat", type=int, default=None, metavar="K",
                    help="measure each point K times, a fresh server each time, repeats interleaved across "
                         "servers; the report gives medians (default 3; 1 with --quick)")
    ap.add_argument("--time-limit", type=float, default=None, help="hard bound for the whole run, s")
    ap.add_argument("--results", default=None, help="folder for latest.json and latest.md (bench/results)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke test: srspy, 20 players, 5 s, " + "+".join(QUICK_MODES) + ", once; exit 1 on any failure")
    a = ap.parse_args(argv)
    if a.results:
        global RESULTS
        RESULTS = os.path.abspath(a.results)
    q = a.quick
    a.players = list(dict.fromkeys(int(x) for x in (a.players or ("20" if q else "1000")).split(",") if x))
    a.repeat = a.repeat if a.repeat is not None else (1 if q else 3)
    a.duration = a.duration if a.duration is not None else (5.0 if q else 30.0)
    a.warmup = a.warmup if a.warmup is not None else (2.0 if q else 5.0)
    if a.srspy_tree:
        SRSPY_TREES["srspy"] = os.path.abspath(a.srspy_tree)
    if a.compare:
        SRSPY_TREES[BASE] = os.path.abspath(a.compare)
    servers = "srspy" if q else f"{BASE},srspy" if a.compare else ",".join(ALL_SERVERS)
    modes = QUICK_MODES if q else COMPARE_MODES if a.compare else ALL_MODES
    a.servers = [x for x in (a.servers or servers).split(",") if x]
    a.modes = [x for x in (a.modes or ",".join(modes)).split(",") if x]
    for s in a.servers:
        if s not in SERVERS:
            ap.error(f"unknown server {s}")
        if s == BASE and not a.compare:
            ap.error(f"{BASE} needs --compare DIR")
    for m in a.modes:
        if m not in ALL_MODES:
            ap.error(f"unknown mode {m}")
    if any(n < 1 or n > 15000 for n in a.players) or a.duration <= 0 or a.warmup < 0:
        ap.error("bad players/duration/warmup")
    if a.repeat < 1:
        ap.error("--repeat must be at least 1")
    ncpu = os.cpu_count() or 1
    if ncpu < 2:
        a.server_cpu = a.client_cpu = None
    return a


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.client_cpu is not None:
        os.sched_setaffinity(0, {args.client_cpu})  # keep this harness off the server's core

    def counts(m: str) -> list[int]:
        return [args.publishers] if m == "ingest" else args.players

    def cost(n: int) -> float:  # seconds one sample takes at most, roughly
        return args.duration + max(args.warmup, (n / args.ramp) * 0.1 + 3) + 25

    plan = []  # (server, mode, variant, proto, n): the points, in report order
    for s in args.servers:
        for m in args.modes:
            spec = MODE_PLAN[s][m]
            if spec is None:
                continue
            for n in counts(m):
                plan.append((s, m, spec[0], spec[1], n))
    # Measurement order: repeat by repeat; within one, point by point (mode, count), and for each
    # point every server, their order rotated by one per repeat. Slow drifts of the machine then
    # touch all servers alike, and no server's samples are taken back to back. --compare keeps
    # the order as given (srspy-base, srspy): old, new, old, new, ... over the whole run.
    k_rep = args.repeat
    schedule = []  # (repeat, server, mode, variant, proto, n)
    for r in range(1, k_rep + 1):
        rot = 0 if args.compare else (r - 1) % len(args.servers)
        order = args.servers[rot:] + args.servers[:rot]
        for m in args.modes:
            for n in counts(m):
                for s in order:
                    spec = MODE_PLAN[s][m]
                    if spec is not None:
                        schedule.append((r, s, m, spec[0], spec[1], n))
    est = sum(cost(n) for *_, n in schedule) + 120
    limit = args.time_limit or max(600.0, 1.5 * est)
    deadline = time.monotonic() + limit

    def on_alarm(signum, frame):
        raise Deadline()

    def on_term(signum, frame):
        raise KeyboardInterrupt()

    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started with SIGINT ignored
    signal.alarm(int(limit) + 60)
    samples: dict[tuple, list[dict]] = {}  # (server, mode, n) -> run_point results
    skipped: list[str] = []
    versions: dict[str, str] = {}
    rc = 0
    try:
        build_loadgen()
        make_media()
        media = media_info(MEDIA)
        log(f"stream: {media['payload_mbps']:.2f} Mbit/s media payload, {media['flv_mbps']:.2f} Mbit/s FLV, "
            f"{media['duration_s']} s; {len(plan)} points x {k_rep} repeats, estimated {est:.0f} s, "
            f"time limit {limit:.0f} s")
        avail = {}
        for s in args.servers:
            ok, why = AVAILABLE[s]()
            avail[s] = ok
            if not ok:
                msg = f"{s}: skipped: {why}"
                skipped.append(msg)
                log(msg)
        for s in args.servers:
            for m in args.modes:
                if MODE_PLAN[s][m] is None and (s, m) in WHY_SKIP:
                    skipped.append(f"{s} {m}: {WHY_SKIP[(s, m)]}")
        versions = {s: server_version(s) for s in args.servers if avail[s]}
        done: dict[tuple, dict] = {}
        for (r, s, m, variant, proto, n) in schedule:
            if not avail[s]:
                continue
            key = (r, s, variant, proto, n)
            if key in done:  # the same server configuration was measured in this repeat (nms lowlat == flv)
                p = dict(done[key], mode=m, reused_from=done[key]["mode"])
                log(f"[{r}/{k_rep}] {s} {m} {n}: same configuration as {done[key]['mode']}, result reused")
            elif time.monotonic() + cost(n) > deadline:
                skipped.append(f"{s} {m} {n} repeat {r}: out of time (--time-limit)")
                log(skipped[-1])
                continue
            else:
                log(f"--- [{r}/{k_rep}] {s} {m} ({variant} config, {proto}) x {n}")
                p = run_point(s, m, variant, proto, n, args, media, rep=r)
                done[key] = p
            samples.setdefault((s, m, n), []).append(p)
            if p.get("error"):
                log(f"    error: {p['error']}")
            if "server_cpu_pct" in p:
                log(f"    server CPU {p['server_cpu_pct']}%  RSS {p['server_rss_mb']} MB  "
                    f"{p['mbps']}/{p['expected_mbps']} Mbit/s  ok {p['ok']} failed {p['failed']} "
                    f"no media {p['no_media']}  lag {fmt_pair(p['lag_ms'])} ms  loadgen CPU {p['loadgen_cpu_pct']}%  "
                    f"cores busy {p['core_busy_pct']['server_core']}%/{p['core_busy_pct']['client_core']}%")
                if contended(p):
                    log("    warning: " + contended(p))
    except KeyboardInterrupt:
        log("interrupted")
        rc = 130
    except Deadline:
        log(f"time limit of {limit:.0f} s reached")
        rc = 124
    except BenchError as e:
        log(f"error: {e}")
        rc = 2
    finally:
        signal.alarm(0)
        PROCS.stop_all()

    points = [aggregate(samples[(s, m, n)]) for (s, m, _, _, n) in plan if (s, m, n) in samples]
    if points or skipped:
        rs = ratios(points)
        meta = {
            "date": time.strftime("%Y-%m-%d %H:%M:%S %z"), "command": "python3 bench/run.py " + " ".join(
                sys.argv[1:] if argv is None else argv),
            "cpu": cpu_model(), "cores": os.cpu_count(), "kernel": platform.release(),
            "server_cpu": args.server_cpu, "client_cpu": args.client_cpu,
            "duration_s": args.duration, "warmup_s": args.warmup, "repeat": args.repeat,
            "order": ("for each repeat, for each mode and count, every server in the given order (--compare: "
                      "old, new, old, new, ...)" if args.compare else
                      "repeats interleaved: for each repeat, for each mode and count, every server "
                      "(server order rotated by one per repeat)"),
            "srspy_trees": {k: v for k, v in SRSPY_TREES.items() if v and k in args.servers},
            "compare": args.compare,
            "media": media_info(MEDIA) if os.path.exists(MEDIA) else {},
            "versions": versions, "skipped": skipped,
        }
        log("")
        log(text_table(points))
        for s in skipped:
            log("skipped: " + s)
        if rs:
            log("")
            log("srspy relative to the others (same mode and connection count; <1 = srspy uses less; "
                + ("from the medians, per repeat = range of sample r / sample r):" if args.repeat > 1 else "):"))
            for line in ratio_lines(rs):
                log("  " + line)
        elif "srspy" in args.servers and len(args.servers) > 1:
            log("no srspy ratios: srspy was not measured")
        hot = hot_path_lines(points, rs)
        if hot:
            log("")
            log(f"hot path, new/old (this tree against {args.compare}; target: within {HOT_PATH_TOLERANCE:.0%}):")
            for line in hot:
                log("  " + line)
        outs = output_ratios(points)
        if outs:
            log("")
            log("srspy's outputs against its HTTP-FLV (same run):")
            for line in output_lines(outs):
                log("  " + line)
        write_results(meta, points, rs)
        shown = os.path.relpath(RESULTS, ROOT) if RESULTS.startswith(ROOT + os.sep) else RESULTS
        log(f"\nwrote {shown}/latest.json and latest.md")

    if args.quick:
        bad = [p for p in points if p.get("error") or p.get("failed_repeats")
               or p.get("ok", 0) < (p["players"] or p["publishers"])]
        if not points or bad or rc:
            log("quick: FAILED" + ("" if points else " (nothing was measured)"))
            return rc or 1
        log("quick: all players received media")
        return 0
    if rc:
        return rc
    return 1 if any(p.get("error") for p in points) else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        PROCS.stop_all()
