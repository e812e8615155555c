"""The soak tool's 2-minute run (tools/soak.py --duration 120): a real srspy process under
player churn and API polling must stay flat after its first minute.

A short run is judged mostly by the excess over the first minute's working set (RSS within
8 MB, fds within 20, greenlets within 40: a leak of one fd or greenlet per play, about 60
plays a minute, or of 128 KiB per play breaks it); its slopes are fitted over one minute, so
their bounds are loose (jitter of 1 MB in a minute is 60 MB/h). The 1-hour run's figures are
in the README (Hardening).
"""

import json
import sys
from pathlib import Path

import pytest
from gevent import subprocess

pytestmark = pytest.mark.timeout(200)
ROOT = Path(__file__).resolve().parents[2]


def test_two_minute_soak_is_flat(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "tools" / "soak.py"), "--duration", "120", "--interval", "4",
                          "--out", str(tmp_path), "--max-rss-slope", "240", "--max-fds-slope", "1200",
                          "--max-greenlets-slope", "2400"], capture_output=True, timeout=190, cwd=ROOT)
    report = json.loads((tmp_path / "soak.json").read_text())
    detail = out.stdout.decode()[-3000:] + out.stderr.decode()[-3000:] + "\n".join(report["errors"][-20:])
    assert report["died"] is None, detail
    counts = report["counts"]
    assert counts["rtmp_plays"] >= 20 and counts["flv_plays"] >= 20, counts
    assert counts["plays_with_media"] >= 0.9 * (counts["rtmp_plays"] + counts["flv_plays"] - 8), counts
    assert counts["api_errors"] == 0 and counts["publisher_starts"] == 1, counts
    samples = report["samples"]
    assert len(samples) >= 25 and samples[-1]["t"] >= 118, samples[-3:]
    assert all(s["rss_mb"] > 10 and s["fds"] > 3 and s["greenlets"] > 1 for s in samples), samples[:3]
    verdict = report["verdict"]
    assert verdict["flat"], verdict["reasons"]
    assert out.returncode == 0, detail
    assert "Verdict: **flat**" in (tmp_path / "soak.md").read_text()
