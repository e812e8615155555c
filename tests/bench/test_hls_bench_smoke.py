"""The HLS benchmark's smoke test (bench/hls.py --quick): 20 HLS viewers of srspy (hls_ctx
off), of nginx serving srspy's files and of srspy with hls_ctx on, then one publisher with
HLS and DVR (MP4) against none, each for a few seconds.

It asserts that every viewer got segments without errors from each server (so the load
generator followed redirects/master playlists and parsed the playlists), that the hls_ctx
viewers went through srspy's session playlist, that the outputs wrote files, and that the
report has every figure; it makes no timing assertions (speed is measured by
bench/hls.py, never in tests).
"""

import json
import sys
from pathlib import Path

import pytest
from gevent import subprocess

pytestmark = pytest.mark.timeout(130)
ROOT = Path(__file__).resolve().parents[2]
FIELDS = {"point", "viewers", "cpu_pct", "base_cpu_pct", "cpu_per_1000_pct", "cpu_us_per_request", "mb_per_s",
          "requests_per_s", "errors", "non_200", "skipped", "ok_min", "segments_per_viewer_p50", "per_repeat"}


def test_quick_hls_benchmark(tmp_path):
    # the harness stops itself (and what it started) at its time limit, before the hard timeout
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "hls.py"), "--quick", "--time-limit", "100",
                          "--results", str(tmp_path)], capture_output=True, timeout=120, cwd=ROOT)
    detail = out.stdout.decode()[-3000:] + out.stderr.decode()[-3000:]
    assert out.returncode == 0, detail
    report = json.loads((tmp_path / "latest.json").read_text())
    points = {p["point"]: p for p in report["serving"]["points"]}
    assert set(points) == {"srspy", "nginx", "srspy-ctx"}, detail
    for p in points.values():
        assert not FIELDS - set(p), FIELDS - set(p)
        assert p["viewers"] == 20 and p["ok_min"] == 20, p
        assert (p["errors_total"], p["non_200_total"]) == (0, 0), p
        assert p["segments_per_viewer_p50"] >= 1 and p["mb_per_s"] > 0 and p["requests_per_s"] > 0, p
    samples = {s["point"]: s for s in report["serving"]["samples"]}
    assert samples["srspy-ctx"]["master_playlists"] == 20, samples["srspy-ctx"]  # one hls_ctx session each
    assert samples["srspy"]["master_playlists"] == 0 and samples["nginx"]["master_playlists"] == 0
    assert samples["nginx"]["srspy_cpu_pct_meanwhile"] is not None
    assert {r["a"] + "/" + r["b"] for r in report["serving"]["ratios"]} == {"srspy/nginx", "srspy-ctx/nginx",
                                                                             "srspy-ctx/srspy"}
    seg = {p["variant"]: p for p in report["segmenting"]["points"]}
    assert set(seg) == {"off", "hls+dvr-mp4"}
    got = report["segmenting"]["samples"]
    written = [s["outputs_total"] for s in got if s["variant"] == "hls+dvr-mp4"][0]
    assert written["dvr_bytes"] > 0 and written["hls_segments"] >= 1, written
    assert [r["variant"] for r in report["segmenting"]["ratios"]] == ["hls+dvr-mp4"]
    md = (tmp_path / "latest.md").read_text()
    assert md.startswith("# HLS benchmark results") and "## Serving HLS" in md and "## Segmenting" in md
