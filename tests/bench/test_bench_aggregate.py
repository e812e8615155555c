"""bench/run.py's reduction of repeated samples: medians, CPU spread, worst ok/fail, ratios.

Pure functions fed with made-up samples; no servers, no network.
"""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("bench_run", ROOT / "bench" / "run.py")
run = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(run)


def sample(server, rep, cpu, rss, *, mode="rtmp", n=1000, failed=0, delivered=100.0, error=None, lag=(100, 200)):
    return {"server": server, "mode": mode, "variant": "default", "protocol": mode, "players": n, "publishers": 0,
            "repeat": rep, "error": error, "server_cpu_pct": cpu, "server_rss_mb": rss, "server_processes": 1,
            "core_busy_pct": {"server_core": cpu + 1, "client_core": 20.0}, "mbps": 2150.0,
            "expected_mbps": 2150.0, "delivered_pct": delivered, "ok": n - failed, "failed": failed,
            "no_media": 0, "not_started": 0, "fail_reasons": {"timeout": failed} if failed else {},
            "realtime": {"min": 0.99, "p50": 1.0}, "lag_ms": {"p50": lag[0], "p99": lag[1]},
            "ttfb_ms": {"p50": 10.0, "p99": 30.0}, "first_key_ms": {"p50": 12.0, "p99": None},
            "mbps_per_conn": {"min": 2.1, "p50": 2.15, "mean": 2.15}, "loadgen_cpu_pct": 5.0,
            "loadgen_cpu_s": 2.0, "window_s": 30.0, "warmup_s": 5.0}


def test_median_and_spread():
    assert run.median([3, 1, 2]) == 2
    assert run.median([4, 1, 2, 3]) == 2.5
    assert run.median([None, 5]) == 5
    assert run.median([None]) is None
    assert run.spread([31.5, 15.7, 20.0]) == [15.7, 31.5]
    assert run.spread([]) is None
    assert run.median_dict([{"p50": 1, "p99": 9}, None, {"p50": 3, "p99": None}]) == {"p50": 2, "p99": 9}
    assert run.median_dict([None, {}]) is None


def test_aggregate_medians_spread_and_worst_sample():
    s = [sample("nms", 1, 31.5, 100.0, lag=(100, 300)), sample("nms", 2, 15.7, 110.0, failed=3, lag=(120, 200)),
         sample("nms", 3, 20.0, 90.0, failed=1, lag=(90, 250))]
    p = run.aggregate(s)
    assert p["server_cpu_pct"] == 20.0 and p["server_cpu_pct_range"] == [15.7, 31.5]
    assert p["server_rss_mb"] == 100.0 and p["server_rss_mb_range"] == [90.0, 110.0]
    assert p["lag_ms"] == {"p50": 100, "p99": 250}
    assert p["first_key_ms"] == {"p50": 12.0, "p99": None}
    assert (p["ok"], p["failed"], p["worst_repeat"]) == (997, 3, 2)
    assert p["failed_repeats"] == [2, 3] and p["error"] is None
    assert p["repeats"] == p["measured"] == 3 and p["samples"] == s
    cells = dict(zip(run.COLS, run.row(p)))
    assert cells["CPU %"] == "20.0" and cells["CPU % (min-max)"] == "15.7-31.5" and cells["ok/fail"] == "997/3"
    assert cells["lag p50/p99 ms"] == "100/250" and cells["runs"] == "3"


def test_aggregate_with_errors():
    bad = {"server": "srspy", "mode": "flv", "variant": "default", "protocol": "flv", "players": 20,
           "publishers": 0, "repeat": 2, "error": "server exited with code 1 during the run"}
    p = run.aggregate([sample("srspy", 1, 2.0, 40.0, mode="flv", n=20), bad])
    assert p["measured"] == 1 and p["repeats"] == 2 and p["failed_repeats"] == [2]
    assert p["error"] == "repeat 2: server exited with code 1 during the run"
    assert p["server_cpu_pct"] == 2.0 and p["ok"] == 20
    assert dict(zip(run.COLS, run.row(p)))["runs"] == "1/2"
    only = run.aggregate([dict(bad, repeat=1)])
    assert only["error"] == "server exited with code 1 during the run" and not run.measured(only)
    assert run.row(only)[4] == "ERROR"
    assert "ERROR" in run.text_table([p, only])


def test_ratios_from_medians_and_pairwise_per_repeat():
    srspy = run.aggregate([sample("srspy", 1, 10.0, 30.0), sample("srspy", 2, 7.0, 30.0),
                           sample("srspy", 3, 8.0, 33.0, delivered=90.0)])
    nms = run.aggregate([sample("nms", 1, 31.5, 100.0), sample("nms", 2, 15.7, 110.0),
                         sample("nms", 3, 20.0, 90.0)])
    nginx = run.aggregate([sample("nginx", 1, 20.0, 10.0), sample("nginx", 3, 16.0, 10.0)])
    other_mode = run.aggregate([sample("nms", 1, 50.0, 100.0, mode="flv")])
    rs = run.ratios([srspy, nms, nginx, other_mode])
    assert [(r["vs"], r["mode"], r["conns"]) for r in rs] == [("nms", "rtmp", 1000), ("nginx", "rtmp", 1000)]
    r = rs[0]
    assert r["cpu_ratio"] == round(8.0 / 20.0, 2) and r["rss_ratio"] == round(30.0 / 100.0, 2)
    assert r["repeats"] == [1, 2, 3]
    assert r["cpu_ratio_per_repeat"] == [round(10 / 31.5, 2), round(7 / 15.7, 2), round(8 / 20, 2)]
    assert r["cpu_ratio_range"] == [0.32, 0.45] and r["below_95_repeats"] == [3]
    g = rs[1]  # nginx has no repeat 2: only repeats 1 and 3 pair up
    assert g["repeats"] == [1, 3] and g["cpu_ratio_per_repeat"] == [0.5, 0.5] and g["cpu_ratio"] == round(8 / 18, 2)
    lines = run.ratio_lines(rs)
    assert lines[0] == ("srspy/nms rtmp 1000: CPU x0.40 (per repeat 0.32-0.45), RSS x0.30"
                        "  (delivered below 95 % in repeat 3)")
    assert lines[1].startswith("srspy/nginx rtmp 1000: CPU x0.44 (per repeat 0.50-0.50, 2 of 3 repeats), RSS x3.00")


def test_single_repeat_line_has_no_range():
    rs = run.ratios([run.aggregate([sample("srspy", 1, 5.0, 30.0)]), run.aggregate([sample("nms", 1, 10.0, 60.0)])])
    assert run.ratio_lines(rs) == ["srspy/nms rtmp 1000: CPU x0.50, RSS x0.50"]


def test_output_ratios_against_srspy_flv_of_the_same_run():
    flv = run.aggregate([sample("srspy", r, c, 70.0, mode="flv") for r, c in ((1, 7.0), (2, 8.0), (3, 6.0))])
    ts = run.aggregate([sample("srspy", r, c, 72.0, mode="ts") for r, c in ((1, 8.4), (2, 8.8), (3, 7.2))])
    ws = run.aggregate([sample("srspy", r, c, 71.0, mode="wsflv") for r, c in ((1, 8.4), (2, 8.0), (3, 6.6))])
    nms_ts = run.aggregate([sample("nms", 1, 1.0, 10.0, mode="ts")])  # not srspy: no output ratio
    outs = {r["mode"]: r for r in run.output_ratios([flv, ts, ws, nms_ts])}
    assert set(outs) == {"ts", "wsflv"}
    assert outs["ts"]["cpu_ratio"] == round(8.4 / 7.0, 2) and outs["ts"]["cpu_ratio_per_repeat"] == [1.2, 1.1, 1.2]
    assert outs["ts"]["target"] == 1.3 and outs["ts"]["met"]
    assert outs["wsflv"]["cpu_ratio"] == 1.14 and not outs["wsflv"]["met"]  # 8.0 / 7.0 > 1.1
    lines = run.output_lines([outs["ts"], outs["wsflv"]])
    assert lines[0] == "srspy ts/flv 1000: CPU x1.20 (per repeat 1.10-1.20), RSS x1.03; target CPU <= 1.3x: met"
    assert lines[1].endswith("target CPU <= 1.1x: MISSED")


def test_hot_path_verdict_new_against_old():
    old = run.aggregate([sample(run.BASE, r, c, 70.0, mode="flv") for r, c in ((1, 7.0), (2, 7.4), (3, 6.8))])
    new = run.aggregate([sample("srspy", r, c, 72.0, mode="flv") for r, c in ((1, 7.2), (2, 7.3), (3, 7.0))])
    old_r = run.aggregate([sample(run.BASE, r, 6.0, 70.0) for r in (1, 2, 3)])
    new_r = run.aggregate([sample("srspy", r, 6.6, 70.0) for r in (1, 2, 3)])
    points = [old, old_r, new, new_r]
    lines = run.hot_path_lines(points, run.ratios(points))
    assert lines[0] == ("flv 1000: new/old CPU x1.029 (per repeat 0.99-1.03); old 7.0 % (6.8-7.4, 3 runs), "
                        "new 7.2 % (7.0-7.3, 3 runs); RSS 70 -> 72 MB: within 5% (met)")
    assert lines[1].startswith("rtmp 1000: new/old CPU x1.100") and lines[1].endswith("MISSED: +10.0% over the old code")


def test_ts_packet_count():
    assert run.ts_packets(184, 184) == 1 and run.ts_packets(185, 184) == 2
    assert run.ts_packets(176, 176) == 1 and run.ts_packets(176 + 184 * 3, 176) == 4 and run.ts_packets(10, 176) == 1
