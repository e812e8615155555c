#!/usr/bin/env python3
"""Soak test of srspy: one server process under a steady churn of players, for a set time.

    python tools/soak.py --duration 3600 --out soak-results      # the README's 1-hour run
    python tools/soak.py --duration 120                          # the suite's 2-minute run

What runs, all on loopback:

* ``python -m srspy -c <generated conf>`` from this repository (free ports, RTMP,
  HTTP-FLV, the HTTP API), its log in the output directory;
* ffmpeg publishing a small FLV it made (testsrc2 + sine, H.264/AAC) in a loop, restarted
  if it ever exits;
* ``--rtmp`` RTMP players and ``--flv`` HTTP-FLV players (srspy's own client sessions),
  each joining, reading for 3 to 15 s (a seeded schedule), leaving, pausing 0.5 to 3 s
  and joining again, until the end;
* the API polled once a second (``/api/v1/streams/``, ``/api/v1/clients/``,
  ``/api/v1/summaries``).

Every ``--interval`` seconds the server's RSS (``VmRSS`` of ``/proc/PID/status``), its open
fds (``/proc/PID/fd``) and its live greenlets (``self.greenlets`` of
``/api/v1/summaries``) are sampled. The report gives, for each, the least-squares slope
per hour over the samples after the warm-up (``--warmup``, 60 s), the first minute's
working set (the largest value during the warm-up) and the excess over it (the largest
value after the warm-up minus that working set).

Verdict "flat": every metric's slope and excess within its thresholds. Defaults (for the
1-hour run): RSS slope <= 4 MB/h and excess <= 8 MB; fds slope <= 6/h and excess <= 20;
greenlets slope <= 10/h and excess <= 40. The fd and greenlet excesses leave room for the
players and API requests that happen to be connected at a sample (each player holds one fd
and one or two greenlets). A short run's slope is mostly noise (a fit over one minute turns
1 MB of allocator jitter into 60 MB/h), so a short run is judged by the excess and by
looser slopes given on the command line (``--max-rss-slope`` ...).

Output: ``soak.json`` (settings, samples, slopes, verdict, counts of plays and errors) and
``soak.md`` (a table) in ``--out``. Exit status 0 when flat, 1 when not, 2 when the run
itself failed (server died, no media reached the players).
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent  # noqa: E402
from gevent import subprocess  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from loguru import logger  # noqa: E402

from srspy.client import HttpFlvPullSession, RtmpPullSession  # noqa: E402

logger.remove()  # the client sessions' per-play records would drown the report
logger.add(sys.stderr, level="WARNING")

CONF = """
listen 127.0.0.1:{rtmp};
max_connections 1000;
daemon off;
srs_log_tank file;
srs_log_file {log};
srs_log_level warn;
pid {dir}/srspy.pid;
http_server {{ enabled on; listen 127.0.0.1:{http}; dir {dir}; }}
http_api {{ enabled on; listen 127.0.0.1:{api}; }}
vhost __defaultVhost__ {{
    http_remux {{ enabled on; mount [vhost]/[app]/[stream].flv; }}
    play {{ gop_cache on; }}
}}
"""

# name: (slope per hour, excess over the first minute's working set)
DEFAULT_THRESHOLDS = {"rss_mb": (4.0, 8.0), "fds": (6.0, 20.0), "greenlets": (10.0, 40.0)}
METRICS = ("rss_mb", "fds", "greenlets")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_flv(path: Path, seconds: int = 10) -> Path:
    """A small H.264 (320x240, 25 fps, 1 s GOP) + AAC FLV made by ffmpeg."""
    subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
                    "-f", "lavfi", "-i", f"testsrc2=size=320x240:rate=25:duration={seconds}",
                    "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={seconds}",
                    "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-pix_fmt", "yuv420p",
                    "-g", "25", "-b:v", "300k", "-c:a", "aac", "-b:a", "64k", "-f", "flv", str(path)],
                   check=True, timeout=120)
    return path


def slope_per_hour(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value) points, in value per hour (0 with < 2 points)."""
    n = len(points)
    if n < 2:
        return 0.0
    mx = sum(t for t, _ in points) / n
    my = sum(v for _, v in points) / n
    sxx = sum((t - mx) ** 2 for t, _ in points)
    if sxx == 0:
        return 0.0
    sxy = sum((t - mx) * (v - my) for t, v in points)
    return sxy / sxx * 3600.0


def analyse(samples: list[dict], warmup: float, thresholds: dict) -> dict:
    """Slopes after the warm-up, the warm-up's working set, the excess over it, the verdict."""
    result: dict = {"metrics": {}, "flat": True, "reasons": []}
    for name in METRICS:
        early = [s[name] for s in samples if s["t"] < warmup]
        late = [(s["t"], s[name]) for s in samples if s["t"] >= warmup]
        working = max(early) if early else 0
        excess = (max(v for _, v in late) - working) if late else 0
        slope = slope_per_hour(late)
        max_slope, max_excess = thresholds[name]
        m = {"first": samples[0][name] if samples else 0, "last": samples[-1][name] if samples else 0,
             "working_set": working, "excess": round(excess, 2), "slope_per_hour": round(slope, 2),
             "max_slope_per_hour": max_slope, "max_excess": max_excess, "samples_after_warmup": len(late)}
        result["metrics"][name] = m
        if len(late) < 2:
            result["flat"] = False
            result["reasons"].append(f"{name}: fewer than 2 samples after the warm-up")
        if slope > max_slope:
            result["flat"] = False
            result["reasons"].append(f"{name}: slope {slope:.2f}/h > {max_slope}/h")
        if excess > max_excess:
            result["flat"] = False
            result["reasons"].append(f"{name}: {excess:.2f} above the first minute's working set > {max_excess}")
    return result


class Soak:
    def __init__(self, args):
        self.args = args
        self.out = Path(args.out).resolve()
        self.out.mkdir(parents=True, exist_ok=True)
        self.work = Path(tempfile.mkdtemp(prefix="srspy-soak-"))
        self.rtmp, self.http, self.api = free_port(), free_port(), free_port()
        self.rng = random.Random(args.seed)
        self.stopping = False
        self.counts = {"rtmp_plays": 0, "flv_plays": 0, "plays_with_media": 0, "play_errors": 0,
                       "api_polls": 0, "api_errors": 0, "publisher_starts": 0}
        self.errors: list[str] = []
        self.samples: list[dict] = []
        self.server = None
        self.publisher = None

    # -- processes ---------------------------------------------------------------
    def start_server(self):
        conf = self.work / "soak.conf"
        log = self.out / "srspy.log"
        conf.write_text(CONF.format(rtmp=self.rtmp, http=self.http, api=self.api, dir=self.work, log=log))
        self.server = subprocess.Popen([sys.executable, "-m", "srspy", "-c", str(conf)], cwd=ROOT,
                                       stdout=subprocess.DEVNULL, stderr=open(self.out / "srspy.stderr", "wb"))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.server.poll() is not None:
                raise RuntimeError(f"srspy exited with {self.server.returncode} at start, see {self.out}")
            try:
                self.api_get("/api/v1/versions")
                return
            except OSError:
                gevent.sleep(0.2)
        raise RuntimeError(f"srspy did not answer its API on port {self.api} within 30 s")

    def keep_publishing(self, flv: Path):
        url = f"rtmp://127.0.0.1:{self.rtmp}/live/soak"
        while not self.stopping:
            self.counts["publisher_starts"] += 1
            self.publisher = subprocess.Popen(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-re",
                                               "-stream_loop", "-1", "-i", str(flv), "-c", "copy", "-f", "flv", url],
                                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.publisher.wait()
            if not self.stopping:
                self.errors.append(f"publisher exited with {self.publisher.returncode}, restarted")
                gevent.sleep(1)

    # -- clients -----------------------------------------------------------------
    def api_get(self, path: str) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.api}{path}", timeout=10) as r:
            return json.loads(r.read())

    def poll_api(self):
        while not self.stopping:
            for path in ("/api/v1/streams/", "/api/v1/clients/", "/api/v1/summaries"):
                try:
                    self.api_get(path)
                    self.counts["api_polls"] += 1
                except (OSError, ValueError) as e:
                    self.counts["api_errors"] += 1
                    self.note(f"api {path}: {e}")
            gevent.sleep(self.args.api_interval)

    def player(self, kind: str, rng: random.Random):
        gevent.sleep(rng.uniform(0, 3))
        while not self.stopping:
            hold = rng.uniform(3, 15)
            if kind == "rtmp":
                session = RtmpPullSession(f"rtmp://127.0.0.1:{self.rtmp}/live/soak", start_timeout=10,
                                          read_timeout=10)
            else:
                session = HttpFlvPullSession(f"http://127.0.0.1:{self.http}/live/soak.flv", start_timeout=10,
                                             read_timeout=10)
            self.counts[f"{kind}_plays"] += 1
            got = 0
            try:
                session.start()
                with gevent.Timeout(hold, False):
                    for _ in session:
                        got += 1
            except Exception as e:  # noqa: BLE001 - counted and reported, the churn goes on
                self.counts["play_errors"] += 1
                self.note(f"{kind} player: {e!r}")
            finally:
                session.dispose()
            if got:
                self.counts["plays_with_media"] += 1
            gevent.sleep(rng.uniform(0.5, 3))

    def note(self, text: str):
        if len(self.errors) < 200:
            self.errors.append(f"{time.strftime('%H:%M:%S')} {text}")

    # -- sampling ----------------------------------------------------------------
    def sample(self, t: float) -> dict:
        pid = self.server.pid
        rss_kb = 0
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss_kb = int(line.split()[1])
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        greenlets = self.api_get("/api/v1/summaries")["data"]["self"]["greenlets"]
        return {"t": round(t, 1), "rss_mb": round(rss_kb / 1024, 2), "fds": fds, "greenlets": greenlets}

    def run(self) -> dict:
        a = self.args
        flv = make_flv(self.work / "soak.flv")
        self.start_server()
        jobs = [gevent.spawn(self.keep_publishing, flv)]
        if a.api_interval > 0:
            jobs.append(gevent.spawn(self.poll_api))
        for _ in range(a.rtmp):
            jobs.append(gevent.spawn(self.player, "rtmp", random.Random(self.rng.random())))
        for _ in range(a.flv):
            jobs.append(gevent.spawn(self.player, "flv", random.Random(self.rng.random())))
        t0 = time.monotonic()
        died = None
        try:
            while True:
                t = time.monotonic() - t0
                if self.server.poll() is not None:
                    died = f"srspy exited with {self.server.returncode} after {t:.0f} s"
                    break
                try:
                    self.samples.append(self.sample(t))
                except (OSError, ValueError, KeyError) as e:
                    self.note(f"sample: {e!r}")
                if t >= a.duration:
                    break
                gevent.sleep(min(a.interval, max(0.0, a.duration - t)))
        finally:
            self.stopping = True
            gevent.killall(jobs, timeout=15)
            for p in (self.publisher, self.server):
                if p is not None and p.poll() is None:
                    p.terminate()
                    try:
                        p.wait(10)
                    except subprocess.TimeoutExpired:
                        p.kill()
            shutil.rmtree(self.work, ignore_errors=True)
        thresholds = dict(DEFAULT_THRESHOLDS)
        for name, opt in (("rss_mb", "rss"), ("fds", "fds"), ("greenlets", "greenlets")):
            slope, excess = thresholds[name]
            thresholds[name] = (getattr(a, f"max_{opt}_slope") or slope, getattr(a, f"max_{opt}_excess") or excess)
        verdict = analyse(self.samples, a.warmup, thresholds)
        if died:
            verdict["flat"] = False
            verdict["reasons"].append(died)
        report = {"settings": {"duration": a.duration, "interval": a.interval, "warmup": a.warmup, "rtmp": a.rtmp,
                               "flv": a.flv, "seed": a.seed, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                                       time.gmtime(time.time() - (time.monotonic() - t0)))},
                  "counts": self.counts, "died": died, "verdict": verdict, "errors": self.errors,
                  "samples": self.samples}
        (self.out / "soak.json").write_text(json.dumps(report, indent=1))
        (self.out / "soak.md").write_text(markdown(report))
        return report


def markdown(report: dict) -> str:
    s, v, c = report["settings"], report["verdict"], report["counts"]
    lines = [f"# Soak: {s['duration']} s, {s['rtmp']} RTMP + {s['flv']} HTTP-FLV players churning, "
             f"started {s['started']}", "",
             f"Verdict: **{'flat' if v['flat'] else 'NOT flat'}**" + ("" if v["flat"] else f" ({'; '.join(v['reasons'])})"),
             "", "| metric | start | first minute's working set | end | excess after the first minute | "
             "slope after the first minute | thresholds (slope, excess) |", "|---|---|---|---|---|---|---|"]
    for name, m in v["metrics"].items():
        lines.append(f"| {name} | {m['first']} | {m['working_set']} | {m['last']} | {m['excess']} | "
                     f"{m['slope_per_hour']}/h | {m['max_slope_per_hour']}/h, {m['max_excess']} |")
    lines += ["", "Counts: " + ", ".join(f"{k} {v}" for k, v in c.items()), ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--duration", type=float, default=3600, help="seconds to run (default 3600)")
    p.add_argument("--interval", type=float, default=5, help="seconds between samples (default 5)")
    p.add_argument("--warmup", type=float, default=60, help="seconds of warm-up before slopes count (default 60)")
    p.add_argument("--rtmp", type=int, default=4, help="RTMP players churning (default 4)")
    p.add_argument("--flv", type=int, default=4, help="HTTP-FLV players churning (default 4)")
    p.add_argument("--api-interval", type=float, default=1.0,
                   help="seconds between two rounds of API polls (default 1; 0: no polling)")
    p.add_argument("--seed", type=int, default=20261206)
    p.add_argument("--out", default="soak-results", help="directory for soak.json, soak.md and the server's log")
    for opt in ("rss", "fds", "greenlets"):
        p.add_argument(f"--max-{opt}-slope", type=float, default=None, help=f"{opt} slope per hour threshold")
        p.add_argument(f"--max-{opt}-excess", type=float, default=None, help=f"{opt} excess threshold")
    args = p.parse_args(argv)
    # SIGTERM or SIGINT ends the run at its next sample, as its end would: the server and
    # the publisher are stopped and the report covers the samples so far
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: setattr(args, "duration", 0))
    try:
        report = Soak(args).run()
    except (RuntimeError, OSError, subprocess.CalledProcessError) as e:
        print(f"soak failed: {e}", file=sys.stderr)
        return 2
    print((Path(args.out) / "soak.md").read_text())
    if report["died"] or not report["counts"]["plays_with_media"]:
        return 2
    return 0 if report["verdict"]["flat"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
