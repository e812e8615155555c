"""Socket probes of the hardening issue's holes against an in-process server (loopback).

    python tools/hardening_probe.py                 # every probe
    python tools/hardening_probe.py stalls          # only the stall, lockout and fd-limit probes
    python tools/hardening_probe.py fd              # only the fd-limit probe
    SRSPY_TREE=/path/to/old/checkout python tools/hardening_probe.py stalls

Prints one line per hole with what srspy does now: time taken, memory held (the
process's RSS before and after, and the decoder's own counters), and whether the
connection was dropped. README.md (Hardening) quotes a run. ``SRSPY_TREE`` runs the
stall probes against another srspy tree (the folder holding its ``srspy`` package,
e.g. ``git archive OLD srspy | tar -x -C DIR``), for the "before" column; a config
block that tree does not know (``limits``) is left out.
"""

from __future__ import annotations

import os
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))
if os.environ.get("SRSPY_TREE"):
    sys.path.insert(0, os.path.abspath(os.environ["SRSPY_TREE"]))

from gevent import monkey  # noqa: E402

monkey.patch_all()

import base64  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import gevent  # noqa: E402
from helpers.flvclient import http_get  # noqa: E402
from helpers.rtmpraw import RawRtmp, conn_of, read_time_with_unfinished, unfinished_heads  # noqa: E402

from srspy import log  # noqa: E402
from srspy.kernel.message import AMF0_DATA, VIDEO, MediaMessage  # noqa: E402
from srspy.server import Server  # noqa: E402

MiB = 1024 * 1024


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def closed(client, seconds=5.0) -> bool:
    return client.closed_within(seconds)


def probe_amf0(srv, port):
    levels = 32
    arrays = [b"\x0a\x00\x00\x00\x00"]
    for i in range(1, levels):
        arrays.append(b"\x0a\x00\x00\x00\x02" + (b"\x07" + (i + 1).to_bytes(2, "big")) * 2)
    from srspy.kernel import amf0

    data = (amf0.encode_all("@setDataFrame", "onMetaData") + b"\x08\x00\x00\x00\x01\x00\x01x"
            + b"\x0a" + levels.to_bytes(4, "big") + b"".join(arrays) + b"\x00\x00\x09")
    c = RawRtmp(port)
    c.handshake()
    c.publish("evil")
    r0 = rss_mb()
    t0 = time.monotonic()
    c.send(MediaMessage(AMF0_DATA, 0, 1, data), 4)
    c.send(MediaMessage(VIDEO, 0, 1, bytes([0x17, 0, 0, 0, 0]) + b"k" * 100), 6)
    src = srv.sources.sources["/live/evil"]
    while src.meta.video_sh is None:  # the sequence header sent after the metadata is in
        gevent.sleep(0.001)
    took = time.monotonic() - t0
    meta = src.meta.metadata
    print(f"amf0 references: {len(data)} bytes, {levels} levels: handled in {took * 1000:.0f} ms, "
          f"RSS +{rss_mb() - r0:.1f} MB, metadata cached: {0 if meta is None else len(meta.payload)} bytes, "
          f"publish goes on: {src.publishing}")
    c.close()


def probe_chunk_streams(srv, port):
    c = RawRtmp(port)
    c.handshake()
    conn = conn_of(srv, c)
    data = b"".join(bytes((0x01, (cs - 64) & 0xFF, (cs - 64) >> 8)) + bytes(3) + b"\x00\x00\x01\x08" + bytes(4) + b"a"
                    for cs in range(400, 65599))
    r0 = rss_mb()
    sent = 0
    try:
        for i in range(0, len(data), 4096):
            c.sock.sendall(data[i:i + 4096])
            sent += 4096
    except OSError:
        pass
    dropped = closed(c)
    print(f"chunk stream ids: {len(data) // 1024} KB offered, dropped={dropped} after at most {sent // 1024} KB sent, "
          f"ids held {conn.rtmp.proto.decoder.chunk_streams}, RSS +{rss_mb() - r0:.1f} MB")


def probe_pending(srv, port):
    c = RawRtmp(port)
    c.handshake()
    c.publish("evil2")
    conn = conn_of(srv, c)
    heads = unfinished_heads(range(10, 42), 8 * MiB)
    body = b"".join(bytes((0xC0, cs)) + b"b" * 128 for cs in range(10, 42))
    r0 = rss_mb()
    t0 = time.monotonic()
    try:
        c.sock.sendall(heads)
        for _ in range(64 * 1024):  # 256 MB offered
            c.sock.sendall(body)
    except OSError:
        pass
    dropped = closed(c)
    print(f"unfinished messages: 32 x 8 MiB offered, dropped={dropped} in {time.monotonic() - t0:.2f}s "
          f"holding {conn.rtmp.proto.decoder.pending_bytes / MiB:.1f} MiB at the drop, RSS +{rss_mb() - r0:.1f} MB "
          f"(freed with the connection)")


def _consume(srv, port, unfinished: int, api_port: int):
    lat = []

    def api():
        while True:
            t = time.monotonic()
            http_get(api_port, "/api/v1/versions")
            lat.append(time.monotonic() - t)
            gevent.sleep(0.01)

    g = gevent.spawn(api)
    took = read_time_with_unfinished(srv, port, unfinished, 4 * MiB)
    g.kill()
    return took, statistics.median(lat) if lat else 0.0


def probe_linear(srv, port, api_port):
    few, lat_few = _consume(srv, port, 1, api_port)
    many, lat_many = _consume(srv, port, 60, api_port)
    print(f"per-read cost: 4 MiB in 4 KiB writes read in {few:.2f}s with 1 unfinished message, {many:.2f}s with 60 "
          f"({many / few:.2f}x); API median {lat_few * 1000:.1f} ms / {lat_many * 1000:.1f} ms")


def probe_api(srv, api_port):
    st, h, body = http_get(api_port, "/api/v1/versions?callback=%3Cscript%3E")
    _, _, body2 = http_get(api_port, "/api/v1/clients/nobody?callback=cb&method=DELETE")
    print(f"JSONP: callback=<script> -> {st}, nosniff={h.get('x-content-type-options')}; "
          f"?method=DELETE on a GET answered as {'GET' if b'2049' in body2 else '?'} (override off)")


def probe_auth(port_auth, exporter_port):
    good = {"Authorization": "Basic " + base64.b64encode(b"admin:p:a:ss").decode()}
    print(f"Basic auth: password with ':' -> {http_get(port_auth, '/api/v1/versions', headers=good)[0]}; "
          f"/metrics without credentials -> {http_get(port_auth, '/metrics')[0]}, exporter port -> "
          f"{http_get(exporter_port, '/metrics')[0]}")


# ------------------------------------------------------------------ stalls and lockouts

def _stall_server(limits: str, extra: str = "", max_connections: int = 1000):
    """An in-process server with HTTP-FLV and the API on its own port; ``limits`` left out
    when the tree under test does not know the block."""
    base = (f"listen 127.0.0.1:0; max_connections {max_connections}; daemon off; srs_log_tank console; "
            "srs_log_level error; http_server { enabled on; listen 127.0.0.1:0; dir /nonexistent; } "
            "http_api { enabled on; listen 127.0.0.1:0; } "
            "vhost __defaultVhost__ { http_remux { enabled on; mount [vhost]/[app]/[stream].flv; } } " + extra)
    try:
        srv = Server.from_text(base + limits)
    except Exception:  # noqa: BLE001 - an older tree without the limits block
        srv = Server.from_text(base)
    srv.start()
    return srv


class _FastPublisher:
    """/live/ok at about 500 KB/s of synthetic video, enough to fill a stuck player's buffers."""

    def __init__(self, port):
        from helpers.rtmpraw import AVC_SH

        self.c = RawRtmp(port)
        self.c.handshake()
        self.c.publish("ok")
        self.c.send(MediaMessage(VIDEO, 0, 1, AVC_SH), 6)
        self.g = gevent.spawn(self.run)

    def run(self):
        ts = 0
        try:
            while True:
                ts += 40
                key = ts % 1000 == 0
                self.c.send(MediaMessage(VIDEO, ts, 1, bytes([0x17 if key else 0x27, 1, 0, 0, 0]) + b"x" * 20000), 6)
                gevent.sleep(0.04)
        except OSError:
            pass

    def close(self):
        self.g.kill()
        self.c.close()


def _http_players(srv) -> int:
    return sum(1 for c in list(srv.stat.clients.values()) if getattr(c, "type", "") == "flv-play")


def probe_stuck_http_player(watch: float = 40.0):
    import socket

    srv = _stall_server("limits { send_timeout 5; }")
    pub = _FastPublisher(srv.rtmp_ports[0])
    try:
        rss0 = rss_mb()
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", srv.http_port))
        s.sendall(b"GET /live/ok.flv HTTP/1.1\r\nHost: x\r\n\r\n")
        t0 = time.monotonic()
        while not _http_players(srv) and time.monotonic() - t0 < 5:
            gevent.sleep(0.05)
        while _http_players(srv) and time.monotonic() - t0 < watch:
            gevent.sleep(0.1)
        took = time.monotonic() - t0
        held = _http_players(srv)
        print("stuck HTTP-FLV player (never reads, 500 KB/s stream, send_timeout 5 where known): "
              + (f"still connected after {watch:.0f}s" if held else f"dropped after {took:.1f}s")
              + f", RSS +{rss_mb() - rss0:.1f} MB")
        s.close()
    finally:
        pub.close()
        srv.stop()


def probe_lockout():
    srv = _stall_server("limits { api_reserve 2; idle_timeout 3; }", max_connections=4)
    try:
        idle = [RawRtmp(srv.rtmp_ports[0]) for _ in range(4)]  # every slot, silent
        gevent.sleep(0.3)
        t0 = time.monotonic()
        try:
            st = http_get(srv.api_port, "/api/v1/summaries", timeout=3)[0]
        except OSError as e:
            st = f"no answer ({e.__class__.__name__})"
        api = f"API with every slot held by silent sockets -> {st} in {time.monotonic() - t0:.2f}s"
        t0 = time.monotonic()
        dropped = [c.closed_within(max(0.1, 15 - (time.monotonic() - t0))) for c in idle]
        took = time.monotonic() - t0
        print(f"max_connections 4: {api}; silent sockets "
              + (f"all dropped after {took:.1f}s" if all(dropped) else f"{dropped.count(False)} of 4 still open after 15s"))
        for c in idle:
            c.close()
    finally:
        srv.stop()
    srv = _stall_server("limits { connections_per_ip 3; idle_timeout 30; }")
    try:
        conns = [RawRtmp(srv.rtmp_ports[0]) for _ in range(10)]
        gevent.sleep(0.3)
        refused = sum(1 for c in conns if c.closed_within(0.5))
        print(f"connections_per_ip 3: {10 - refused} of 10 connections from one address kept, {refused} refused")
        for c in conns:
            c.close()
    finally:
        srv.stop()


FD_LAUNCHER = """
import resource, runpy, sys
resource.setrlimit(resource.RLIMIT_NOFILE, ({n}, {n}))
sys.argv = ["srspy", "-c", {conf!r}]
runpy.run_module("srspy", run_name="__main__")
"""


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def probe_fd_limit(limit: int = 64, hold: float = 10.0):
    """A server process with RLIMIT_NOFILE ``limit``: connections beyond it held ``hold``
    seconds, then closed; its CPU meanwhile, its error output, and the time to serve again."""
    import socket
    import subprocess
    import tempfile

    from helpers.net import free_port

    tree = os.path.abspath(os.environ.get("SRSPY_TREE") or ROOT)
    work = tempfile.mkdtemp(prefix="srspy-fd-")
    rtmp, api = free_port(), free_port()
    conf = os.path.join(work, "srs.conf")
    with open(os.path.join(tree, "srspy", "config", "configspec.ini")) as f:
        knows_limits = "[limits]" in f.read()
    limits = f"limits {{ idle_timeout {hold + 30:g}; }}" if knows_limits else ""  # no early drop of the held ones
    with open(conf, "w") as f:
        f.write(f"listen 127.0.0.1:{rtmp}; daemon off; srs_log_tank console; srs_log_level warn; {limits} "
                f"http_api {{ enabled on; listen 127.0.0.1:{api}; }} vhost __defaultVhost__ {{ }}")
    err_path = os.path.join(work, "stderr.txt")
    with open(err_path, "wb") as err:
        proc = subprocess.Popen([sys.executable, "-c", FD_LAUNCHER.format(n=limit, conf=conf)], cwd=tree,
                                stdout=err, stderr=err, env={**os.environ, "PYTHONPATH": tree})
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", api), timeout=1).close()
                break
            except OSError:
                gevent.sleep(0.2)
        held = []
        for _ in range(limit + 20):
            try:
                held.append(socket.create_connection(("127.0.0.1", rtmp), timeout=2))
            except OSError:
                break
        gevent.sleep(1)
        cpu0, t0 = _cpu_seconds(proc.pid), time.monotonic()
        gevent.sleep(hold)
        cpu = (_cpu_seconds(proc.pid) - cpu0) / (time.monotonic() - t0)
        with open(err_path, "rb") as f:
            text = f.read().decode(errors="replace")
        tracebacks = text.count("Traceback")
        records = text.count("accept failed")
        t_free = time.monotonic()
        for s in held:
            s.close()
        served = None
        while time.monotonic() - t_free < 20:
            try:
                if http_get(api, "/api/v1/versions", timeout=2)[0] == 200:
                    served = time.monotonic() - t_free
                    break
            except OSError:
                gevent.sleep(0.1)
        print(f"fd limit {limit}, {len(held)} connections held {hold:.0f}s: CPU {cpu * 100:.1f}%, "
              f"{tracebacks} tracebacks and {records} 'accept failed' records on the output, alive="
              f"{proc.poll() is None}, API served again "
              + (f"{served:.2f}s after the fds freed" if served is not None else "not within 20s"))
    finally:
        proc.kill()
        proc.wait()


def main():
    log.setup("console", "warn")
    if sys.argv[1:] == ["stalls"]:
        probe_stuck_http_player()
        probe_lockout()
        probe_fd_limit()
        return
    if sys.argv[1:] == ["fd"]:
        probe_fd_limit()
        return
    srv = Server.from_text("listen 127.0.0.1:0; daemon off; srs_log_tank console; srs_log_level error;"
                           "http_api { enabled on; listen 127.0.0.1:0; auth { enabled on; username admin; "
                           "password \"p:a:ss\"; } } exporter { enabled on; listen 127.0.0.1:19972; } vhost __defaultVhost__ { }")
    srv.start()
    port, api_port = srv.rtmp_ports[0], srv.api_port
    try:
        probe_amf0(srv, port)
        probe_chunk_streams(srv, port)
        probe_pending(srv, port)
        srv.auth_mux.enabled = False
        srv.api_chain.next_.enabled = False
        probe_linear(srv, port, api_port)
        probe_api(srv, api_port)
        srv.api_chain.next_.enabled = True
        probe_auth(api_port, srv.exporter_port)
    finally:
        srv.stop()
    probe_stuck_http_player()
    probe_lockout()
    probe_fd_limit()


if __name__ == "__main__":
    main()
