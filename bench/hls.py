#!/usr/bin/env python3
"""HLS benchmarks of srspy: serving HLS to many viewers (against nginx) and the cost of
segmenting and recording one stream.

    python3 bench/hls.py                                    # both parts, 1000 viewers, 20 s windows, 3 repeats
    python3 bench/hls.py --parts serving --viewers 1000 --duration 20 --repeat 3
    python3 bench/hls.py --parts segmenting --seg-duration 30 --repeat 3
    python3 bench/hls.py --quick                            # smoke test: 20 viewers, short windows, once

Serving: srspy (RTMP publish of the bench stream by ffmpeg, ``hls { enabled on; hls_fragment
2; hls_window 10; hls_ctx off; }``) serves its HLS from its HTTP port while nginx serves the
very same files from srspy's hls_path. bench/.build/hlsgen (bench/hlsgen.c) runs N viewers
that behave as hls.js does. Each server's CPU ticks are sampled over the window; srspy's CPU
per viewer is (its CPU with N viewers - the same process's CPU with 0 viewers, measured just
before) / N, nginx's its CPU / N. srspy with ``hls_ctx on`` (play sessions) is a second
srspy point. Segmenting: srspy with one publisher and no players, HLS and DVR on in several
combinations against both off.

Everything is measured --repeat times, interleaved (srspy, nginx, srspy with hls_ctx, then
again; the segmenting variants rotated per repeat), and reported as medians with the
per-repeat figures. Results: bench/results/hls/latest.json and latest.md (--results).
Standard library only; it reuses bench/run.py's helpers. Everything started here is
stopped by pid before exit.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import time

import run
from run import PROCS, BenchError, Deadline, log, median, spread

HERE = run.HERE
ROOT = run.ROOT
HLSGEN_SRC = os.path.join(HERE, "hlsgen.c")
HLSGEN = os.path.join(run.BUILD, "hlsgen")
RESULTS = os.path.join(HERE, "results", "hls")
STREAM = "live/bench"
PARTS = ("serving", "segmenting")
SERVING_POINTS = ("srspy", "nginx", "srspy-ctx")  # measured in this order in every repeat
SERVING_TARGET = 2.0  # srspy's CPU per viewer at most this many times nginx's
SEGMENTING_TARGET = 1.3  # srspy with HLS and DVR at most this many times its CPU with both off
# segmenting variants: (hls, dvr container or None)
VARIANTS = {"off": (False, None), "hls": (True, None), "dvr-flv": (False, "flv"), "dvr-mp4": (False, "mp4"),
            "hls+dvr-flv": (True, "flv"), "hls+dvr-mp4": (True, "mp4")}
JUDGED = ("hls+dvr-flv", "hls+dvr-mp4")  # against "off", with SEGMENTING_TARGET
QUICK_VARIANTS = ("off", "hls+dvr-mp4")

SRSPY_CONF = """\
listen {rtmp};
max_connections 10000;
daemon off;
srs_log_tank console;
srs_log_level warn;
{http}vhost __defaultVhost__ {{
{blocks}}}
"""
HTTP_BLOCK = """\
http_server {{
    enabled on;
    listen {port};
    dir {dir};
}}
"""
HLS_BLOCK = """\
    hls {{
        enabled on;
        hls_fragment {fragment:g};
        hls_window {window:g};
        hls_path {path};
{extra}    }}
"""
DVR_BLOCK = """\
    dvr {{
        enabled on;
        dvr_plan session;
        dvr_path {path}/[stream].{ext};
    }}
"""
# nginx as Debian ships it for static files (sendfile on, tcp_nopush on, keep-alive), one
# worker, no access log (srspy logs nothing per request at its warn level either).
NGINX_CONF = """\
daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile 65536;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{
    worker_connections 16384;
}}
http {{
    types {{
        application/vnd.apple.mpegurl m3u8;
        video/mp2t ts;
    }}
    default_type application/octet-stream;
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 65;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location ~ \\.m3u8$ {{
            add_header Cache-Control no-cache;
        }}
    }}
}}
"""


def now() -> float:
    return time.monotonic()


# --------------------------------------------------------------------------- processes

def start_srspy(workdir: str, conf: str, cpu: int | None) -> subprocess.Popen:
    path = os.path.join(workdir, "srspy.conf")
    with open(path, "w") as f:
        f.write(conf)
    tree = run.SRSPY_TREES["srspy"]
    return PROCS.start(run.taskset(cpu, [sys.executable, "-m", "srspy", "-c", path]),
                       log_path=os.path.join(workdir, "srspy.log"), cwd=tree, env=run.srspy_env(tree))


def start_publisher(workdir: str, rtmp: int, cpu: int | None) -> subprocess.Popen:
    return PROCS.start(run.taskset(cpu, [
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-stream_loop", "-1",
        "-i", run.MEDIA, "-c", "copy", "-f", "flv", f"rtmp://127.0.0.1:{rtmp}/{STREAM}"]),
        log_path=os.path.join(workdir, "ffmpeg.log"))


def start_nginx(workdir: str, root: str, cpu: int | None) -> tuple[subprocess.Popen, int]:
    port = run.free_port()
    conf = os.path.join(workdir, "nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX_CONF.format(dir=workdir, port=port, root=root))
    p = PROCS.start(run.taskset(cpu, [run.nginx_binary(), "-p", workdir, "-c", conf, "-e",
                                      os.path.join(workdir, "error.log")]),
                    log_path=os.path.join(workdir, "nginx.log"), cwd=workdir)
    run.wait_port(port, p)
    return p, port


def check_alive(procs: dict) -> None:
    for name, p in procs.items():
        if p.poll() is not None:
            raise BenchError(f"{name} exited with code {p.returncode}")


def wait_playlist(path: str, segments: int, procs: dict, timeout: float = 40.0) -> None:
    """Until the playlist file lists at least ``segments`` segments."""
    end = now() + timeout
    while now() < end:
        check_alive(procs)
        try:
            with open(path) as f:
                if f.read().count("#EXTINF") >= segments:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise BenchError(f"{os.path.relpath(path, ROOT)} did not list {segments} segments in {timeout:.0f} s")


def wait_publish(rtmp: int, workdir: str, cpu: int | None, procs: dict, timeout: float = 20.0) -> None:
    """Until one RTMP player gets media (then it leaves at once): the publish is up."""
    end = now() + timeout
    out = os.path.join(workdir, "probe.json")
    while now() < end:
        check_alive(procs)
        rep = run.run_loadgen(["rtmp", "-u", f"rtmp://127.0.0.1:{rtmp}/{STREAM}", "-n", "1", "-d", "1.5",
                               "-o", out], cpu, timeout=30)
        if rep["ok"] == 1:
            return
        time.sleep(0.5)
    raise BenchError(f"no media from rtmp://127.0.0.1:{rtmp}/{STREAM} in {timeout:.0f} s")


# --------------------------------------------------------------------------- sampling

def sample_window(pids: dict, t_w: float, t_e: float, args, procs: dict) -> dict:
    """CPU (% of one core) and max RSS of each named process tree over [t_w, t_e] (monotonic),
    sleeping until each; the busy % of the server's and the client's core."""
    while now() < t_w:
        check_alive(procs)
        time.sleep(min(0.5, max(0.01, t_w - now())))
    t0 = now()
    s0 = {k: run.tree_sample(p) for k, p in pids.items()}
    c0 = (run.core_times(args.server_cpu), run.core_times(args.client_cpu))
    rss = {k: v[1] for k, v in s0.items()}
    while now() < t_e:
        check_alive(procs)
        time.sleep(min(0.5, max(0.01, t_e - now())))
        for k, p in pids.items():
            rss[k] = max(rss[k], run.tree_sample(p)[1])
    s1 = {k: run.tree_sample(p) for k, p in pids.items()}
    c1 = (run.core_times(args.server_cpu), run.core_times(args.client_cpu))
    t1 = now()
    wall = t1 - t0
    cpu = {k: round((s1[k][0] - s0[k][0]) / run.CLK_TCK / wall * 100, 2) for k in pids}
    busy = [round(100 * (b1[0] - b0[0]) / max(1, b1[1] - b0[1]), 1) for b0, b1 in zip(c0, c1)]
    return {"cpu_pct": cpu, "rss_mb": {k: round(v / 1024, 1) for k, v in rss.items()}, "window_s": round(wall, 3),
            "core_busy_pct": {"server_core": busy[0], "client_core": busy[1]}}


def viewers(url: str, n: int, args, pids: dict, procs: dict, workdir: str, tag: str) -> dict:
    """n hlsgen viewers of url for warmup + duration; the window's CPU of pids and the report."""
    out = os.path.join(workdir, f"hlsgen-{tag}.json")
    argv = ["-u", url, "-n", str(n), "-d", f"{args.warmup + args.duration:.3f}", "--warmup", f"{args.warmup:.3f}",
            "--spread", f"{args.spread:g}", "--start-segments", str(args.start_segments), "-o", out]
    if args.honor_close:
        argv.append("--honor-close")
    lg = PROCS.start(run.taskset(args.client_cpu, [HLSGEN] + argv), log_path=os.path.join(workdir, f"hlsgen-{tag}.log"))
    t0 = now()
    try:
        s = sample_window(pids, t0 + args.warmup, t0 + args.warmup + args.duration, args, dict(procs, hlsgen=lg))
        lg.wait(timeout=30)
    finally:
        PROCS.stop(lg)
    if lg.returncode != 0:
        raise BenchError(f"hlsgen exited with {lg.returncode} (see {os.path.relpath(workdir, ROOT)})")
    with open(out) as f:
        rep = json.load(f)
    s["loadgen"] = summary(rep)
    s["loadgen_argv"] = ["bench/.build/hlsgen"] + argv
    return s


def summary(rep: dict) -> dict:
    """The figures of one hlsgen report that the tables use (the rest stays in its file)."""
    win = rep["window_s"] or 0.0
    w = lambda k: rep[k]["window"]  # noqa: E731
    return {
        "viewers": rep["n"], "ok": rep["ok"], "with_errors": rep["with_errors"], "no_segment": rep["no_segment"],
        "window_s": win,
        "mb_per_s": round(w("body_bytes") / win / 1e6, 2) if win else None,
        "mbps": rep["mbps_window"],
        "requests_per_s": rep["requests_per_s_window"],
        "playlist_requests": w("playlist_requests"), "segment_requests": w("segment_requests"),
        "segments": rep["segments"]["window"],
        "segments_per_viewer": {k: rep["segments_per_viewer_window"][k] for k in ("min", "p50", "max")},
        "errors": w("errors"), "error_reasons": {k: v["window"] for k, v in rep["error_reasons"].items()},
        "errors_total": rep["errors"]["total"],
        "non_200": w("non_200"), "statuses": {k: v["total"] for k, v in rep["statuses"].items()},
        "non_200_total": rep["non_200"]["total"],
        "skipped": w("segments_skipped"), "skipped_total": rep["segments_skipped"]["total"],
        "redirects": rep["redirects"]["total"], "master_playlists": rep["master_playlists"]["total"],
        "connects": rep["connects"]["total"], "server_closes": rep["server_closes"]["total"],
        "connection_close_headers": rep["connection_close_headers"]["total"],
        "playlists_unchanged_pct": round(100 * w("playlists_unchanged") / max(1, w("playlist_requests")), 1),
        "segment_ms": {k: rep["segment_ms"][k] for k in ("p50", "p99")},
        "playlist_ms": {k: rep["playlist_ms"][k] for k in ("p50", "p99")},
        "target_duration_s": rep["target_duration_s"],
        "loadgen_cpu_pct": rep["loadgen_cpu"]["window_pct"],
        "timeline_mb": [round(b / 1e6, 1) for b in rep["timeline"]["bytes"]],
    }


def stream_rate(playlist: str, root: str) -> float | None:
    """Mbit/s of the stream's HLS segments: sizes of the listed segments over their EXTINF sum."""
    try:
        with open(playlist) as f:
            text = f.read()
    except OSError:
        return None
    total_s = total_b = 0.0
    base = os.path.dirname(playlist)
    for dur, uri in re.findall(r"#EXTINF:([0-9.]+)[^\n]*\n([^#\s][^\n]*)", text):
        try:
            total_b += os.path.getsize(os.path.join(base, uri.split("?")[0]))
            total_s += float(dur)
        except OSError:
            continue
    return round(total_b * 8 / total_s / 1e6, 3) if total_s else None


# --------------------------------------------------------------------------- serving

def serving_conf(rtmp: int, http: int, hls_path: str, args, ctx: bool) -> str:
    extra = "" if ctx else "        hls_ctx off;\n"
    return SRSPY_CONF.format(rtmp=rtmp, http=HTTP_BLOCK.format(port=http, dir=hls_path),
                             blocks=HLS_BLOCK.format(fragment=args.fragment, window=args.window, path=hls_path,
                                                     extra=extra))


def serving_group(rep: int, ctx: bool, args, with_nginx: bool) -> list[dict]:
    """One srspy process (hls_ctx off, with nginx beside it; or on): its 0-viewer window, then
    N viewers of srspy, then (hls_ctx off) N viewers of nginx. One sample per point."""
    name = "srspy-ctx" if ctx else "srspy"
    workdir = os.path.join(run.CACHE, "run", f"hls-serving-{name}-r{rep}")
    shutil.rmtree(workdir, ignore_errors=True)
    hls_path = os.path.join(workdir, "html")
    os.makedirs(hls_path)
    rtmp, http = run.free_port(), run.free_port()
    n = args.viewers
    samples = []
    procs: dict = {}
    try:
        procs["srspy"] = start_srspy(workdir, serving_conf(rtmp, http, hls_path, args, ctx), args.server_cpu)
        run.wait_port(rtmp, procs["srspy"])
        run.wait_port(http, procs["srspy"])
        pids = {"srspy": procs["srspy"].pid}
        with_nginx = with_nginx and "nginx" in args.points
        if with_nginx:
            procs["nginx"], nginx_port = start_nginx(workdir, hls_path, args.server_cpu)
            pids["nginx"] = procs["nginx"].pid
        procs["ffmpeg"] = start_publisher(workdir, rtmp, args.client_cpu)
        playlist = os.path.join(hls_path, STREAM + ".m3u8")
        wait_playlist(playlist, args.start_segments + 1, procs)
        log(f"    [{rep}] {name}: 0 viewers, {args.duration:g} s")
        t = now()
        base = sample_window(pids, t, t + args.duration, args, procs)
        log(f"        srspy {base['cpu_pct']['srspy']} %" + (f", nginx {base['cpu_pct']['nginx']} %" if with_nginx else ""))
        targets = [(name, f"http://127.0.0.1:{http}/{STREAM}.m3u8", "srspy")] if name in args.points else []
        if with_nginx and "nginx" in args.points:
            targets.append(("nginx", f"http://127.0.0.1:{nginx_port}/{STREAM}.m3u8", "nginx"))
        for point, url, server in targets:
            log(f"    [{rep}] {point}: {n} viewers, {args.warmup:g} s warmup + {args.duration:g} s")
            s = viewers(url, n, args, pids, procs, workdir, point)
            cpu = s["cpu_pct"][server]
            base_cpu = base["cpu_pct"][server] if server == "srspy" else 0.0
            sample = {"point": point, "repeat": rep, "viewers": n, "server": server, "hls_ctx": ctx,
                      "cpu_pct": cpu, "base_cpu_pct": base["cpu_pct"][server],
                      "base_window_s": base["window_s"], "base_core_busy_pct": base["core_busy_pct"],
                      "cpu_viewers_pct": round(cpu - base_cpu, 2),
                      "rss_mb": s["rss_mb"][server], "window_s": s["window_s"], "core_busy_pct": s["core_busy_pct"],
                      "stream_mbps": stream_rate(playlist, hls_path), "logs": os.path.relpath(workdir, ROOT),
                      **s["loadgen"], "loadgen_argv": s["loadgen_argv"]}
            if server == "nginx":
                sample["srspy_cpu_pct_meanwhile"] = s["cpu_pct"]["srspy"]
            derive(sample)
            samples.append(sample)
            lg = sample
            log(f"        {server} {cpu} % (0 viewers: {sample['base_cpu_pct']} %), per 1000 viewers "
                f"{sample['cpu_per_1000_pct']} %, {lg['mb_per_s']} MB/s, {lg['requests_per_s']} req/s, "
                f"ok {lg['ok']}/{n}, errors {lg['errors']}, non-200 {lg['non_200']}, skipped {lg['skipped']}, "
                f"segments/viewer {lg['segments_per_viewer']['p50']}, loadgen {lg['loadgen_cpu_pct']} %, "
                f"cores {s['core_busy_pct']['server_core']}/{s['core_busy_pct']['client_core']} %")
    finally:
        for p in reversed(list(procs.values())):
            PROCS.stop(p)
    return samples


def derive(s: dict) -> None:
    """Per-viewer figures of one serving sample."""
    n = s["viewers"]
    s["cpu_per_1000_pct"] = round(s["cpu_viewers_pct"] / n * 1000, 2)
    rps = s.get("requests_per_s") or 0
    s["cpu_us_per_request"] = round(s["cpu_viewers_pct"] / 100 * 1e6 / rps, 1) if rps else None
    exp = (s.get("stream_mbps") or 0) * n
    s["expected_mbps"] = round(exp, 1) if exp else None
    s["delivered_pct"] = round(100 * s["mbps"] / exp, 1) if exp and s.get("mbps") is not None else None


SERVING_MEDIANS = ("cpu_pct", "base_cpu_pct", "cpu_viewers_pct", "cpu_per_1000_pct", "cpu_us_per_request", "rss_mb",
                   "mb_per_s", "mbps", "expected_mbps", "delivered_pct", "requests_per_s", "loadgen_cpu_pct",
                   "playlists_unchanged_pct", "srspy_cpu_pct_meanwhile")
SERVING_SUMS = ("errors", "non_200", "skipped", "errors_total", "non_200_total", "skipped_total")


def serving_points(samples: list[dict]) -> list[dict]:
    out = []
    for name in SERVING_POINTS:
        ss = [s for s in samples if s["point"] == name]
        if not ss:
            continue
        p = {"point": name, "server": ss[0]["server"], "viewers": ss[0]["viewers"], "repeats": len(ss)}
        for k in SERVING_MEDIANS:
            if any(k in s for s in ss):
                p[k] = median(s.get(k) for s in ss)
        for k in SERVING_SUMS:
            p[k] = sum(s[k] for s in ss)
        p["ok_min"] = min(s["ok"] for s in ss)
        p["segments_per_viewer_p50"] = median(s["segments_per_viewer"]["p50"] for s in ss)
        p["segments_per_viewer_min"] = min(s["segments_per_viewer"]["min"] for s in ss)
        p["segment_ms"] = {k: median(s["segment_ms"][k] for s in ss) for k in ("p50", "p99")}
        p["cpu_pct_range"] = spread(s["cpu_pct"] for s in ss)
        p["cpu_per_1000_pct_range"] = spread(s["cpu_per_1000_pct"] for s in ss)
        p["per_repeat"] = {s["repeat"]: s["cpu_per_1000_pct"] for s in ss}
        out.append(p)
    return out


def serving_ratios(points: list[dict]) -> list[dict]:
    by = {p["point"]: p for p in points}
    out = []
    for a, b, target in (("srspy", "nginx", SERVING_TARGET), ("srspy-ctx", "nginx", None), ("srspy-ctx", "srspy", None)):
        if a not in by or b not in by:
            continue
        pa, pb = by[a], by[b]
        reps = sorted(set(pa["per_repeat"]) & set(pb["per_repeat"]))
        per = [round(pa["per_repeat"][r] / pb["per_repeat"][r], 2) for r in reps if pb["per_repeat"][r]]
        x = run.ratio(pa["cpu_per_1000_pct"], pb["cpu_per_1000_pct"])
        r = {"a": a, "b": b, "ratio": x, "per_repeat": per, "range": spread(per), "target": target}
        if target is not None:
            r["met"] = x is not None and x <= target
        out.append(r)
    return out


def verdict_of(r: dict) -> str:
    if r["target"] is None:
        return ""
    if r["ratio"] is None:
        return f"; target <= {r['target']:g}x: no figure"
    return f"; target <= {r['target']:g}x: " + ("met" if r["met"] else "MISSED")


def ratio_lines(rs: list[dict], label) -> list[str]:
    """One line per ratio: ``label(r)``, the ratio, the per-repeat ratios, the verdict."""
    lines = []
    for r in rs:
        per = f" (per repeat {', '.join(f'{x:.2f}' for x in r['per_repeat'])})" if len(r["per_repeat"]) > 1 else ""
        lines.append(f"{label(r)}: x{run.fmt(r['ratio'], '.2f')}{per}{verdict_of(r)}")
    return lines


# --------------------------------------------------------------------------- segmenting

def segmenting_conf(rtmp: int, out: str, variant: str, args) -> str:
    hls, dvr = VARIANTS[variant]
    blocks = ""
    if hls:
        blocks += HLS_BLOCK.format(fragment=args.seg_fragment, window=args.seg_window, path=os.path.join(out, "hls"),
                                   extra="")
    if dvr:
        blocks += DVR_BLOCK.format(path=os.path.join(out, "dvr"), ext=dvr)
    return SRSPY_CONF.format(rtmp=rtmp, http="", blocks=blocks)


def outputs_of(out: str) -> dict:
    """What the outputs wrote so far: the DVR file's size, the HLS playlist's last sequence number."""
    got = {}
    dvr = os.path.join(out, "dvr")
    if os.path.isdir(dvr):
        got["dvr_bytes"] = sum(os.path.getsize(os.path.join(dvr, f)) for f in os.listdir(dvr))
    m3u8 = os.path.join(out, "hls", STREAM + ".m3u8")
    if os.path.isdir(os.path.join(out, "hls")):
        try:
            with open(m3u8) as f:
                text = f.read()
            seq = int(re.search(r"#EXT-X-MEDIA-SEQUENCE:(\d+)", text).group(1))
            got["hls_segments"] = seq + text.count("#EXTINF")
        except (OSError, AttributeError):
            got["hls_segments"] = 0
    return got


def segmenting_sample(rep: int, variant: str, args) -> dict:
    workdir = os.path.join(run.CACHE, "run", f"hls-segmenting-{variant}-r{rep}")
    shutil.rmtree(workdir, ignore_errors=True)
    out = os.path.join(workdir, "out")
    os.makedirs(out)
    rtmp = run.free_port()
    procs: dict = {}
    sample = {"variant": variant, "repeat": rep, "logs": os.path.relpath(workdir, ROOT)}
    try:
        procs["srspy"] = start_srspy(workdir, segmenting_conf(rtmp, out, variant, args), args.server_cpu)
        run.wait_port(rtmp, procs["srspy"])
        procs["ffmpeg"] = start_publisher(workdir, rtmp, args.client_cpu)
        wait_publish(rtmp, workdir, args.client_cpu, procs)
        t = now() + args.seg_warmup
        before = None
        while now() < t:
            check_alive(procs)
            time.sleep(0.1)
        before = outputs_of(out)
        t = now()
        s = sample_window({"srspy": procs["srspy"].pid}, t, t + args.seg_duration, args, procs)
        after = outputs_of(out)
        sample.update({"cpu_pct": s["cpu_pct"]["srspy"], "rss_mb": s["rss_mb"]["srspy"], "window_s": s["window_s"],
                       "core_busy_pct": s["core_busy_pct"],
                       "outputs": {k: after[k] - before.get(k, 0) for k in after}, "outputs_total": after})
    finally:
        for p in reversed(list(procs.values())):
            PROCS.stop(p)
    return sample


def segmenting_points(samples: list[dict], variants: list[str]) -> list[dict]:
    out = []
    for v in variants:
        ss = [s for s in samples if s["variant"] == v and "cpu_pct" in s]
        if not ss:
            continue
        out.append({"variant": v, "repeats": len(ss), "cpu_pct": median(s["cpu_pct"] for s in ss),
                    "cpu_pct_range": spread(s["cpu_pct"] for s in ss), "rss_mb": median(s["rss_mb"] for s in ss),
                    "per_repeat": {s["repeat"]: s["cpu_pct"] for s in ss},
                    "outputs": {k: median(s["outputs"].get(k) for s in ss) for k in ss[0]["outputs"]}})
    return out


def segmenting_ratios(points: list[dict]) -> list[dict]:
    by = {p["variant"]: p for p in points}
    off = by.get("off")
    if not off:
        return []
    out = []
    for p in points:
        if p["variant"] == "off":
            continue
        reps = sorted(set(p["per_repeat"]) & set(off["per_repeat"]))
        per = [round(p["per_repeat"][r] / off["per_repeat"][r], 2) for r in reps if off["per_repeat"][r]]
        x = run.ratio(p["cpu_pct"], off["cpu_pct"])
        target = SEGMENTING_TARGET if p["variant"] in JUDGED else None
        r = {"variant": p["variant"], "ratio": x, "per_repeat": per, "range": spread(per), "target": target}
        if target is not None:
            r["met"] = x is not None and x <= target
        out.append(r)
    return out


# --------------------------------------------------------------------------- report

def serving_table(points: list[dict]) -> list[str]:
    cols = ["point", "viewers", "runs", "ok (min)", "CPU %", "CPU % (min-max)", "0-viewer CPU %",
            "CPU per 1000 viewers %", "(min-max)", "us CPU per request", "MB/s", "deliv %", "req/s",
            "errors", "non-200", "skipped", "segments/viewer p50 (min)", "segment ms p50/p99", "RSS MB",
            "loadgen CPU %"]
    rows = []
    for p in points:
        lo, hi = p["cpu_pct_range"]
        plo, phi = p["cpu_per_1000_pct_range"]
        base = "-" if p["server"] == "nginx" else run.fmt(p["base_cpu_pct"], ".2f")
        rows.append([p["point"], str(p["viewers"]), str(p["repeats"]), str(p["ok_min"]), run.fmt(p["cpu_pct"]),
                     f"{lo:.1f}-{hi:.1f}", base, run.fmt(p["cpu_per_1000_pct"], ".2f"), f"{plo:.2f}-{phi:.2f}",
                     run.fmt(p["cpu_us_per_request"], ".0f"), run.fmt(p["mb_per_s"], ".0f"),
                     run.fmt(p.get("delivered_pct")), run.fmt(p["requests_per_s"], ".0f"), str(p["errors"]),
                     str(p["non_200"]), str(p["skipped"]),
                     f"{run.fmt(p['segments_per_viewer_p50'], '.0f')} ({run.fmt(p['segments_per_viewer_min'], '.0f')})",
                     "/".join(run.fmt(p["segment_ms"][k]) for k in ("p50", "p99")), run.fmt(p["rss_mb"], ".0f"),
                     run.fmt(p["loadgen_cpu_pct"])])
    return md_rows(cols, rows)


def segmenting_table(points: list[dict], ratios: list[dict]) -> list[str]:
    by = {r["variant"]: r for r in ratios}
    cols = ["variant", "runs", "CPU %", "CPU % (min-max)", "x off", "x off per repeat", "RSS MB", "written in window"]
    rows = []
    for p in points:
        lo, hi = p["cpu_pct_range"]
        r = by.get(p["variant"])
        wrote = ", ".join(f"{v / 1e6:.1f} MB DVR" if k == "dvr_bytes" else f"{v:g} HLS segments"
                          for k, v in p["outputs"].items() if v is not None) or "-"
        rows.append([p["variant"], str(p["repeats"]), run.fmt(p["cpu_pct"], ".2f"), f"{lo:.2f}-{hi:.2f}",
                     "1" if p["variant"] == "off" else run.fmt(r["ratio"] if r else None, ".2f"),
                     ", ".join(f"{x:.2f}" for x in r["per_repeat"]) if r else "-", run.fmt(p["rss_mb"], ".0f"), wrote])
    return md_rows(cols, rows)


def md_rows(cols: list[str], rows: list[list[str]]) -> list[str]:
    return (["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
            + ["| " + " | ".join(r) + " |" for r in rows])


def noise_lines(samples: list[dict], what: str) -> list[str]:
    """Samples whose server core was busier than the server itself (other work on it)."""
    out = []
    for s in samples:
        b = s.get("core_busy_pct")
        if not b or "cpu_pct" not in s:
            continue
        own = s["cpu_pct"] + (s.get("srspy_cpu_pct_meanwhile") or 0)
        if b["server_core"] - own > 10:
            out.append(f"{s[what]} repeat {s['repeat']}: server core {b['server_core']} % busy while the measured "
                       f"processes used {own:.1f} %: other work shared the core")
        if b["client_core"] > 90:
            out.append(f"{s[what]} repeat {s['repeat']}: client core {b['client_core']} % busy (saturated)")
    return out


def write_results(meta: dict, serving: list[dict], seg: list[dict], args) -> None:
    os.makedirs(RESULTS, exist_ok=True)
    spoints = serving_points(serving)
    sratios = serving_ratios(spoints)
    gpoints = segmenting_points(seg, args.variants)
    gratios = segmenting_ratios(gpoints)
    with open(os.path.join(RESULTS, "latest.json"), "w") as f:
        json.dump({"meta": meta, "serving": {"points": spoints, "ratios": sratios, "samples": serving},
                   "segmenting": {"points": gpoints, "ratios": gratios, "samples": seg}}, f, indent=2)
    md = [f"# HLS benchmark results ({meta['date']})", "",
          f"Host: {meta['cpu']}, {meta['cores']} cores, {meta['kernel']}. Servers on core {meta['server_cpu']}, "
          f"ffmpeg and the load generator on core {meta['client_cpu']}. {meta['srspy']}; {meta['nginx']}.",
          f"Stream: {meta['media']['file']} ({meta['media']['payload_mbps']:.2f} Mbit/s of media) published "
          f"over RTMP by ffmpeg (-re, looped, -c copy).", "",
          "Command: `" + meta["command"] + "`", ""]
    if spoints:
        md += ["## Serving HLS", "",
               f"{args.viewers} hls.js-like viewers (bench/hlsgen.c: a keep-alive connection each for the "
               f"playlist and the segments, playlist reloads every target duration or half of it when unchanged, "
               f"each new segment once, the last {args.start_segments} at start), starting over {args.spread:g} s; "
               f"{args.warmup:g} s warmup, {args.duration:g} s window. srspy: `hls {{ enabled on; hls_fragment "
               f"{args.fragment:g}; hls_window {args.window:g}; hls_ctx off; }}` served from its HTTP port "
               f"(`srspy-ctx`: `hls_ctx` on, its default); nginx serves the same files from srspy's hls_path. "
               f"CPU per 1000 viewers = (CPU with the viewers - the same srspy's CPU with 0 viewers just before) "
               f"/ viewers x 1000; nginx: its CPU / viewers x 1000. Medians of {args.repeat} repeats "
               f"(interleaved: srspy, nginx, srspy-ctx, then again)."
               + (" Viewers close their connection after every answer that says `Connection: close` "
                  "(`--honor-close`), as browsers do." if args.honor_close else ""), ""]
        md += serving_table(spoints) + [""]
        md += [f"- {x}" for x in ratio_lines(sratios, lambda r: f"CPU per viewer {r['a']}/{r['b']}")] + [""]
        md += ["Per repeat, CPU per 1000 viewers (% of a core): " + "; ".join(
            f"{p['point']} " + ", ".join(f"{v:.2f}" for v in p["per_repeat"].values()) for p in spoints), ""]
    if gpoints:
        md += ["## Segmenting and recording", "",
               f"One publisher, no players; srspy's CPU over a {args.seg_duration:g} s window ({args.seg_warmup:g} s "
               f"after the publish is up). HLS: TS, `hls_fragment {args.seg_fragment:g}; hls_window "
               f"{args.seg_window:g}`; DVR: `dvr_plan session`, `dvr_path .../[stream].flv` or `.mp4` (srspy's "
               f"default `dvr_mp4_fragmented on`). Medians of {args.repeat} repeats, variants rotated per repeat. "
               f"Target: HLS + DVR at most {SEGMENTING_TARGET:g}x the CPU with both off.", ""]
        md += segmenting_table(gpoints, gratios) + [""]
        md += [f"- {x}" for x in ratio_lines(gratios, lambda r: f"CPU {r['variant']}/off")] + [""]
    warns = noise_lines(serving, "point") + noise_lines(seg, "variant")
    if warns:
        md += ["## Warnings", ""] + [f"- {w}" for w in warns] + [""]
    errs = meta.get("errors") or []
    if errs:
        md += ["## Errors", ""] + [f"- {e}" for e in errs] + [""]
    md += ["CPU % is of one core (utime + stime of the process tree from /proc over the window); see "
           "bench/README.md, \"HLS serving and segmenting\".", ""]
    with open(os.path.join(RESULTS, "latest.md"), "w") as f:
        f.write("\n".join(md))
    log("")
    log("\n".join(md))


# --------------------------------------------------------------------------- main

def parse_args(argv=None):
    ap = argparse.ArgumentParser(description="HLS serving (srspy against nginx) and segmenting benchmarks of srspy.")
    ap.add_argument("--parts", default=None, help="comma list of " + ",".join(PARTS) + " (default both)")
    ap.add_argument("--points", default=None,
                    help="serving points, comma list of " + ",".join(SERVING_POINTS) + " (default all)")
    ap.add_argument("--viewers", type=int, default=None, help="HLS viewers (1000; 20 with --quick)")
    ap.add_argument("--duration", type=float, default=None, help="serving window, s (20; 2 with --quick)")
    ap.add_argument("--warmup", type=float, default=None,
                    help="seconds of viewers before the window (default spread + 2.5 x fragment)")
    ap.add_argument("--spread", type=float, default=None, help="viewers start over this many seconds (5; 0.5 with --quick)")
    ap.add_argument("--start-segments", type=int, default=3, help="segments a viewer takes from its first playlist (3)")
    ap.add_argument("--honor-close", action="store_true",
                    help="viewers close the connection after a 'Connection: close' answer (as browsers do)")
    ap.add_argument("--fragment", type=float, default=None, help="hls_fragment while serving (2)")
    ap.add_argument("--window", type=float, default=None, help="hls_window while serving (10)")
    ap.add_argument("--seg-duration", type=float, default=None, help="segmenting window, s (30; 3 with --quick)")
    ap.add_argument("--seg-warmup", type=float, default=None, help="segmenting: seconds after the publish is up (5)")
    ap.add_argument("--seg-fragment", type=float, default=10,
                    help="hls_fragment while segmenting (10, SRS's default; 1 with --quick)")
    ap.add_argument("--seg-window", type=float, default=60, help="hls_window while segmenting (60, SRS's default)")
    ap.add_argument("--variants", default=None, help="segmenting variants: " + ",".join(VARIANTS) + " (default all)")
    ap.add_argument("--repeat", type=int, default=None, help="repeats (3; 1 with --quick)")
    ap.add_argument("--server-cpu", type=int, default=0, help="core for srspy and nginx (0)")
    ap.add_argument("--client-cpu", type=int, default=1, help="core for ffmpeg and the load generator (1)")
    ap.add_argument("--srspy-tree", default=None, metavar="DIR",
                    help="run srspy from this source tree (default: this repository)")
    ap.add_argument("--time-limit", type=float, default=None, help="hard bound for the whole run, s")
    ap.add_argument("--results", default=None, help="folder for latest.json and latest.md (bench/results/hls)")
    ap.add_argument("--quick", action="store_true", help="smoke test: 20 viewers, short windows, once; exit 1 on failure")
    ap.add_argument("--report-from", default=None, metavar="JSON",
                    help="measure nothing: write latest.md (and latest.json) again from the samples in JSON, "
                         "in JSON's folder unless --results is given")
    a = ap.parse_args(argv)
    q = a.quick
    a.parts = [x for x in (a.parts or ",".join(PARTS)).split(",") if x]
    for p in a.parts:
        if p not in PARTS:
            ap.error(f"unknown part {p}")
    a.points = [x for x in (a.points or ",".join(SERVING_POINTS)).split(",") if x]
    for p in a.points:
        if p not in SERVING_POINTS:
            ap.error(f"unknown serving point {p}")
    a.viewers = a.viewers or (20 if q else 1000)
    a.duration = a.duration or (2.0 if q else 20.0)
    a.spread = a.spread if a.spread is not None else (0.5 if q else 5.0)
    a.fragment = a.fragment or (1.0 if q else 2.0)
    a.window = a.window or (5.0 if q else 10.0)
    a.warmup = a.warmup if a.warmup is not None else a.spread + (2 if q else 2.5) * a.fragment
    a.seg_duration = a.seg_duration or (3.0 if q else 30.0)
    a.seg_warmup = a.seg_warmup if a.seg_warmup is not None else (1.0 if q else 5.0)
    if q:
        a.start_segments = min(a.start_segments, 1)
        a.seg_fragment = min(a.seg_fragment, 1.0)
    a.variants = [x for x in (a.variants or ",".join(QUICK_VARIANTS if q else VARIANTS)).split(",") if x]
    for v in a.variants:
        if v not in VARIANTS:
            ap.error(f"unknown variant {v}")
    a.repeat = (a.repeat or 1) if q else (a.repeat or 3)
    if a.viewers < 1 or a.duration <= 0 or a.repeat < 1 or a.start_segments < 1:
        ap.error("bad viewers/duration/repeat/start-segments")
    if a.srspy_tree:
        run.SRSPY_TREES["srspy"] = os.path.abspath(a.srspy_tree)
    if a.results:
        global RESULTS
        RESULTS = os.path.abspath(a.results)
    if (os.cpu_count() or 1) < 2:
        a.server_cpu = a.client_cpu = None
    return a


def estimate(args) -> float:
    serving = 2 * (12 + args.duration) + 2 * (args.warmup + args.duration + 3) + (args.warmup + args.duration + 3)
    segmenting = len(args.variants) * (8 + args.seg_warmup + args.seg_duration)
    return args.repeat * (serving * ("serving" in args.parts) + segmenting * ("segmenting" in args.parts)) + 30


def report_from(path: str, results: str | None) -> int:
    """The report of an earlier run again, from its samples (after a change of the report's
    form), into the JSON's folder unless --results names another."""
    global RESULTS
    RESULTS = os.path.abspath(results or os.path.dirname(os.path.abspath(path)))
    with open(path) as f:
        old = json.load(f)
    args = argparse.Namespace(**old["meta"]["args"])
    write_results(old["meta"], old["serving"]["samples"], old["segmenting"]["samples"], args)
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.report_from:
        return report_from(args.report_from, args.results)
    if args.client_cpu is not None:
        os.sched_setaffinity(0, {args.client_cpu})  # keep this harness off the servers' core
    est = estimate(args)
    limit = args.time_limit or max(300.0, 1.5 * est)

    def on_alarm(signum, frame):
        raise Deadline()

    def on_term(signum, frame):
        raise KeyboardInterrupt()

    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.alarm(int(limit))
    serving: list[dict] = []
    seg: list[dict] = []
    errors: list[str] = []
    rc = 0
    nginx = "nginx not measured"
    try:
        run.build_loadgen()
        run.build_loadgen(HLSGEN_SRC, HLSGEN)
        run.make_media()
        ok, why = run.srspy_checker("srspy")()
        if not ok:
            raise BenchError(why)
        with_nginx = "serving" in args.parts and run.nginx_binary() is not None
        if "serving" in args.parts and not with_nginx:
            errors.append("nginx not found (apt-get install -y nginx): srspy measured alone")
        if with_nginx:
            r = subprocess.run([run.nginx_binary(), "-v"], capture_output=True, text=True)
            nginx = r.stderr.strip().replace("nginx version: ", "")
        log(f"{args.repeat} repeats of {', '.join(args.parts)}; estimated {est:.0f} s, time limit {limit:.0f} s")
        for rep in range(1, args.repeat + 1):
            if "serving" in args.parts:
                for ctx in (False, True):
                    if ("srspy-ctx" if ctx else "srspy") not in args.points and (ctx or "nginx" not in args.points):
                        continue
                    try:
                        serving += serving_group(rep, ctx, args, with_nginx and not ctx)
                    except BenchError as e:
                        errors.append(f"serving {'srspy-ctx' if ctx else 'srspy'} repeat {rep}: {e}")
                        log("    error: " + errors[-1])
            if "segmenting" in args.parts:
                k = (rep - 1) % len(args.variants)
                for v in args.variants[k:] + args.variants[:k]:
                    log(f"    [{rep}] segmenting {v}: {args.seg_duration:g} s")
                    try:
                        s = segmenting_sample(rep, v, args)
                    except BenchError as e:
                        errors.append(f"segmenting {v} repeat {rep}: {e}")
                        log("    error: " + errors[-1])
                        continue
                    seg.append(s)
                    log(f"        srspy {s['cpu_pct']} %, wrote {s['outputs']}")
    except KeyboardInterrupt:
        log("interrupted")
        rc = 130
    except Deadline:
        log(f"time limit of {limit:.0f} s reached")
        errors.append(f"time limit of {limit:.0f} s reached")
        rc = 124
    except BenchError as e:
        log(f"error: {e}")
        errors.append(str(e))
        rc = 2
    finally:
        signal.alarm(0)
        PROCS.stop_all()
    meta = {"date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
            "command": "python3 bench/hls.py " + " ".join(sys.argv[1:] if argv is None else argv),
            "cpu": run.cpu_model(), "cores": os.cpu_count(), "kernel": platform.release(),
            "server_cpu": args.server_cpu, "client_cpu": args.client_cpu,
            "srspy": run.server_version("srspy"), "nginx": nginx,
            "media": run.media_info(run.MEDIA) if os.path.exists(run.MEDIA) else {"file": "-", "payload_mbps": 0},
            "args": {k: v for k, v in vars(args).items()}, "errors": errors}
    if serving or seg or errors:
        write_results(meta, serving, seg, args)
        shown = os.path.relpath(RESULTS, ROOT) if RESULTS.startswith(ROOT + os.sep) else RESULTS
        log(f"\nwrote {shown}/latest.json and latest.md")
    if rc:
        return rc
    if args.quick:
        bad = [s for s in serving if s["ok"] < s["viewers"] or s["errors_total"] or s["non_200_total"]]
        bad += [s for s in seg if not all(s["outputs_total"].values())
                or len(s["outputs_total"]) != sum(map(bool, VARIANTS[s["variant"]]))]
        if errors or bad or not (serving or seg):
            log("quick: FAILED")
            return 1
        log("quick: every viewer got segments without errors; every output wrote")
    return 1 if errors else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        PROCS.stop_all()
