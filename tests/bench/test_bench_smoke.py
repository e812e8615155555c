"""The benchmark's own smoke test: 20 players of each kind (HTTP-FLV, RTMP, HTTP-TS, WS-FLV)
for a few seconds against srspy.

It asserts that every player received media at about the stream's rate (so the load
generator parsed FLV, RTMP, TS and WebSocket frames to the end) and that the report has
every field; it makes no timing assertions (speed is measured by bench/run.py, never in
tests).
"""

import json
import sys
from pathlib import Path

import pytest
from gevent import subprocess

pytestmark = pytest.mark.timeout(600)
ROOT = Path(__file__).resolve().parents[2]
FIELDS = {"server", "mode", "players", "ok", "failed", "no_media", "server_cpu_pct", "server_rss_mb", "mbps",
          "expected_mbps", "delivered_pct", "lag_ms", "ttfb_ms", "first_key_ms", "loadgen_cpu_pct"}


def test_quick_benchmark_against_srspy(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--results", str(tmp_path)],
                         capture_output=True, timeout=540, cwd=ROOT)
    assert out.returncode == 0, out.stdout.decode()[-3000:] + out.stderr.decode()[-3000:]
    report = json.loads((tmp_path / "latest.json").read_text())
    points = report["points"]
    assert {p["mode"] for p in points} == {"flv", "rtmp", "ts", "wsflv"}
    for p in points:
        missing = FIELDS - set(p)
        assert not missing, f"report lacks {missing}: {sorted(p)}"
        assert p["server"] == "srspy" and p["players"] == 20
        assert p["ok"] == 20 and p["failed"] == 0 and p["no_media"] == 0
        # every byte parsed: delivered at the stream's rate (the GOP cache's burst adds some)
        assert 80 <= p["delivered_pct"] <= 140, p
        assert p["first_key_ms"]["p99"] is not None and p["realtime"]["p50"] > 0.8, p
    outputs = {r["mode"]: r for r in report["output_ratios"]}
    assert set(outputs) == {"ts", "wsflv"} and all(r["cpu_ratio"] is not None for r in outputs.values())
    assert (tmp_path / "latest.md").read_text().startswith("# Benchmark results")
