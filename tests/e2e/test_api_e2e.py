"""The HTTP API and the Prometheus exporter, with ffmpeg publishing and real players."""

import base64
import json
import math
import re
import time

import pytest
from helpers.flvclient import FlvPlayer, http_get
from helpers.media import publish_args, wait_published, wait_until
from helpers.net import free_port, rtmp_url

from srspy.server import Server

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

AUTH = {"Authorization": "Basic " + base64.b64encode(b"admin:secret").decode()}
API_SHARED = "http_api { enabled on; listen 0; auth { enabled on; username admin; password secret; } }"


def api(port, path, method="GET", headers=None):
    status, h, body = http_get(port, path, method=method, headers=headers)
    assert status == 200, (status, body)
    assert h["content-type"] == "application/json" and int(h["content-length"]) == len(body)
    obj = json.loads(body)
    assert list(obj)[:4] == ["code", "server", "service", "pid"], obj
    return obj


# -- a strict Prometheus text-format parser (exposition format 0.0.4) ------------------------
_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_SAMPLE = re.compile(rf"^({_NAME})(?:\{{(.*)\}})? (\S+)$")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(,|$)')


def parse_prometheus(text: str) -> dict:
    """{name: {"help": str, "type": str, "samples": [(labels, value)]}}; AssertionError if malformed."""
    assert text.endswith("\n"), "the exposition must end with a newline"
    out: dict = {}
    for line in text.splitlines():
        assert line, "no blank lines"
        if line.startswith("# HELP "):
            name, _, help_ = line[7:].partition(" ")
            assert re.fullmatch(_NAME, name) and name not in out and help_, line
            out[name] = {"help": help_, "type": None, "samples": []}
        elif line.startswith("# TYPE "):
            name, _, kind = line[7:].partition(" ")
            assert name in out and out[name]["type"] is None and not out[name]["samples"], line
            assert kind in ("counter", "gauge", "histogram", "summary", "untyped"), line
            out[name]["type"] = kind
        else:
            assert not line.startswith("#"), line
            m = _SAMPLE.match(line)
            assert m, f"bad sample line {line!r}"
            name, labels_text, value = m.groups()
            assert name in out and out[name]["type"], f"{name} without HELP/TYPE"
            labels = {}
            pos = 0
            text_l = labels_text or ""
            while pos < len(text_l):
                lm = _LABEL.match(text_l, pos)
                assert lm, f"bad labels {text_l!r}"
                labels[lm.group(1)] = lm.group(2)
                pos = lm.end()
            v = float(value)
            assert not math.isnan(v)
            out[name]["samples"].append((labels, v))
    return out


def test_prometheus_parser_is_strict():
    ok = parse_prometheus('# HELP a x\n# TYPE a gauge\na{b="c",d="e"} 1\n')
    assert ok["a"]["samples"] == [({"b": "c", "d": "e"}, 1.0)]
    bad_texts = ['a 1\n', '# HELP a x\n# TYPE a gauge\na{b=c} 1\n', '# HELP a x\n# TYPE a gauge\na 1',
                 '# HELP a x\na 1\n']
    for bad in bad_texts:
        with pytest.raises((AssertionError, ValueError)):
            parse_prometheus(bad)


# -- one publisher, two HTTP-FLV players, one RTMP player ----------------------------------------
def test_api_with_publisher_and_players(make_server, procs, short_flv):
    srv = make_server(extra=API_SHARED + " exporter { enabled on; listen 0; label lab; tag t1; }")
    port = srv.http_port
    assert srv.api_port == port
    procs(publish_args(short_flv, rtmp_url(srv, "/live/s?secret=1"), loop=True))
    wait_published(srv)
    p1 = FlvPlayer(port, "/live/s.flv", headers={"Referer": "http://one.example/a.html"})
    p2 = FlvPlayer(port, "/live/s.flv", headers={"Referer": "http://two.example/b.html"})
    assert p1.read_head() == 200 and p2.read_head() == 200
    rp = procs(["ffmpeg", "-nostdin", "-loglevel", "error", "-i", rtmp_url(srv), "-c", "copy", "-f", "null", "-"])
    wait_until(lambda: len(srv.stat.clients) == 4, 15, what="four clients")
    for _ in range(30):  # let the kbps samples accumulate
        p1.pump(0.1)
        p2.pump(0.1)

    # auth protects /api/ and /metrics (host name, kernel, pid), not the streams
    assert http_get(port, "/api/v1/versions")[0] == 401
    wrong = {"Authorization": "Basic " + base64.b64encode(b"admin:no").decode()}
    assert http_get(port, "/api/v1/versions", headers=wrong)[0] == 401
    assert http_get(port, "/metrics")[0] == 401

    v = api(port, "/api/v1/versions", headers=AUTH)
    assert v["code"] == 0 and v["server"] == srv.stat.server_id and v["pid"] == str(srv.stat.pid)
    assert set(v["data"]) == {"major", "minor", "revision", "version"}

    vhosts = api(port, "/api/v1/vhosts/", headers=AUTH)["vhosts"]
    assert len(vhosts) == 1
    vh = vhosts[0]
    assert vh["name"] == "__defaultVhost__" and vh["enabled"] is True and vh["clients"] == 4 and vh["streams"] == 1
    assert api(port, f"/api/v1/vhosts/{vh['id']}", headers=AUTH)["vhost"]["id"] == vh["id"]

    streams = api(port, "/api/v1/streams/", headers=AUTH)["streams"]
    assert len(streams) == 1
    s = streams[0]
    assert list(s) == ["id", "name", "vhost", "app", "tcUrl", "url", "live_ms", "clients", "frames", "send_bytes",
                       "recv_bytes", "kbps", "publish", "video", "audio"]
    assert s["name"] == "s" and s["app"] == "live" and s["url"] == "/live/s" and s["vhost"] == vh["id"]
    assert s["tcUrl"] == f"rtmp://127.0.0.1:{srv.rtmp_ports[0]}/live"
    assert s["clients"] == 4 and s["frames"] > 25
    assert abs(s["live_ms"] - time.time() * 1000) < 5000
    assert s["recv_bytes"] > 100_000 and s["send_bytes"] > 100_000
    assert s["kbps"]["recv_30s"] > 0 and s["kbps"]["send_30s"] > 0
    # the test media is x264 ultrafast: (constrained) baseline
    assert s["video"] == {"codec": "H264", "profile": "Baseline", "level": s["video"]["level"], "width": 640,
                          "height": 360}
    assert re.fullmatch(r"\d(\.\d)?", s["video"]["level"])
    assert s["audio"] == {"codec": "AAC", "sample_rate": 44100, "channel": 2, "profile": "LC"}
    assert s["publish"]["active"] is True
    one = api(port, f"/api/v1/streams/{s['id']}", headers=AUTH)["stream"]
    assert one["id"] == s["id"] and one["clients"] == 4

    clients = api(port, "/api/v1/clients/", headers=AUTH)["clients"]
    assert sorted(c["type"] for c in clients) == ["flv-play", "flv-play", "fmle-publish", "rtmp-play"]
    for c in clients:
        assert list(c) == ["id", "vhost", "stream", "ip", "pageUrl", "swfUrl", "tcUrl", "url", "name", "type",
                           "publish", "alive", "send_bytes", "recv_bytes", "kbps"]
        assert c["vhost"] == vh["id"] and c["stream"] == s["id"] and c["ip"] == "127.0.0.1"
        assert c["url"] == "/live/s" and c["name"] == "s" and c["alive"] > 0
        assert c["publish"] is (c["type"] == "fmle-publish")
    pub = [c for c in clients if c["publish"]][0]
    assert s["publish"]["cid"] == pub["id"] and pub["recv_bytes"] > 100_000 and pub["kbps"]["recv_30s"] > 0
    players = [c for c in clients if not c["publish"]]
    assert all(c["send_bytes"] > 10_000 and c["kbps"]["send_30s"] > 0 for c in players)
    by_page = {c["pageUrl"]: c for c in clients}
    assert set(by_page) >= {"http://one.example/a.html", "http://two.example/b.html"}
    assert api(port, f"/api/v1/clients/{pub['id']}", headers=AUTH)["client"]["id"] == pub["id"]
    assert len(api(port, "/api/v1/clients/?start=1&count=2", headers=AUTH)["clients"]) == 3  # count is at least 10
    assert len(api(port, "/api/v1/clients/?start=3", headers=AUTH)["clients"]) == 1

    # summaries, rusages, self_proc_stats
    summ = api(port, "/api/v1/summaries", headers=AUTH)["data"]
    assert summ["self"]["pid"] == int(srv.stat.pid) and summ["self"]["srs_uptime"] >= 0
    assert summ["system"]["conn_srs"] >= 4 and summ["system"]["srs_send_bytes"] > 0 and "ilde_time" in summ["system"]
    assert summ["self"]["greenlets"] >= summ["system"]["conn_srs"]  # srspy: one greenlet per connection at least
    assert api(port, "/api/v1/rusages", headers=AUTH)["data"]["ru_maxrss"] > 0
    sp = api(port, "/api/v1/self_proc_stats", headers=AUTH)["data"]
    assert sp["pid"] == int(srv.stat.pid) and sp["rss"] > 0 and sp["greenlets"] >= summ["system"]["conn_srs"]

    # the exporter agrees with the API
    before = api(port, "/api/v1/summaries", headers=AUTH)["data"]["system"]["srs_send_bytes"]
    status, h, body = http_get(port, "/metrics", headers=AUTH)
    after = api(port, "/api/v1/summaries", headers=AUTH)["data"]["system"]["srs_send_bytes"]
    assert status == 200 and h["content-type"] == "text/plain; charset=utf-8"
    m = parse_prometheus(body.decode())
    names = ["srs_node_uname_info", "srs_build_info", "srs_cpu_percent", "srs_memory", "srs_send_bytes_total",
             "srs_receive_bytes_total", "srs_streams", "srs_clients", "srs_clients_total", "srs_clients_errs_total"]
    assert list(m) == names
    kinds = {n: m[n]["type"] for n in names}
    assert kinds["srs_send_bytes_total"] == kinds["srs_clients_total"] == "counter"
    assert kinds["srs_streams"] == kinds["srs_clients"] == kinds["srs_memory"] == "gauge"
    val = {n: m[n]["samples"][0][1] for n in names}
    assert val["srs_streams"] == 1 and val["srs_clients"] == 4 and val["srs_clients_total"] >= 4
    assert before <= val["srs_send_bytes_total"] <= after
    assert val["srs_receive_bytes_total"] > 100_000 and val["srs_memory"] > 1000
    build = m["srs_build_info"]["samples"][0][0]
    assert build["server"] == v["server"] and build["service"] == v["service"] and build["pid"] == v["pid"]
    assert build["label"] == "lab" and build["tag"] == "t1"

    # DELETE one HTTP-FLV player: it, and only it, is closed within a second
    victim = by_page["http://one.example/a.html"]
    gone = api(port, f"/api/v1/clients/{victim['id']}", method="DELETE", headers=AUTH)
    assert gone["code"] == 0
    t0 = time.monotonic()
    p1.pump(3, until=lambda q: q.eof or q.ended)
    assert p1.eof or p1.ended
    assert time.monotonic() - t0 < 1.5
    n = len(p2.tags)
    p2.pump(10, until=lambda q: len(q.tags) > n + 10)
    assert not p2.eof and rp.poll() is None
    wait_until(lambda: victim["id"] not in srv.stat.clients, 2, what="the kicked client gone")
    assert api(port, f"/api/v1/clients/{victim['id']}", headers=AUTH)["code"] == 2049
    assert len(api(port, "/api/v1/clients/", headers=AUTH)["clients"]) == 3

    # DELETE the RTMP player too
    rtmp_player = [c for c in clients if c["type"] == "rtmp-play"][0]
    assert api(port, f"/api/v1/clients/{rtmp_player['id']}", method="DELETE", headers=AUTH)["code"] == 0
    rp.wait(10)
    wait_until(lambda: rtmp_player["id"] not in srv.conns, 2, what="the RTMP player closed")
    p2.close()


def test_errors_redirects_and_index(make_server):
    srv = make_server(extra="http_api { enabled on; listen 0; }")
    port = srv.http_port
    for path, code in [("/api/v1/streams/nope", 2048), ("/api/v1/clients/nope", 2049), ("/api/v1/vhosts/nope", 2014),
                       ("/metrics", 1090), ("/api/v1/raw?rpc=reload", 1061), ("/api/v1/tests/errors", 100)]:
        assert api(port, path)["code"] == code, path
    assert api(port, "/api/v1/clients/nope", method="DELETE")["code"] == 2049
    status, h, _ = http_get(port, "/api/v1/streams")
    assert status == 302 and h["location"] == "/api/v1/streams/"
    status, h, _ = http_get(port, "/api/v1/clients?start=1")
    assert status == 302 and h["location"] == "/api/v1/clients/?start=1"
    assert http_get(port, "/api/v1/streams/", method="POST")[0] == 405
    assert api(port, "/api/")["urls"] == {"v1": "the api version 1.0"}
    idx = api(port, "/api/v1/")
    want = {"versions", "summaries", "rusages", "self_proc_stats", "vhosts", "streams", "clients", "raw"}
    assert want <= set(idx["urls"])
    assert api(port, "/api/v1/whatever")["urls"] == idx["urls"]
    assert api(port, "/api/v1/raw?rpc=raw")["http_api"]["raw_api"]["enabled"] is False
    status, h, body = http_get(port, "/api/v1/versions?callback=cb")
    assert status == 200 and h["content-type"] == "text/javascript"
    assert body.startswith(b"cb({") and body.endswith(b"})")
    assert http_get(port, "/api/v1/clients/nope?callback=f&method=DELETE")[2].startswith(b'f({"code":2049')


def test_dedicated_api_and_exporter_ports(make_server):
    api_port, exp_port = free_port(), free_port()
    srv = make_server(extra=f"http_api {{ enabled on; listen {api_port}; crossdomain on; }} "
                            f"exporter {{ enabled on; listen {exp_port}; }}")
    assert srv.api_port == api_port and srv.exporter_port == exp_port and srv.http_port != api_port
    root = api(api_port, "/")
    assert root["urls"]["api"] == "the api root"
    assert http_get(api_port, "/nothing")[0] == 404
    assert api(api_port, "/api/v1/versions")["code"] == 0
    assert http_get(srv.http_port, "/api/v1/versions")[0] == 404  # not on the HTTP server's port
    for p in (exp_port, api_port):
        status, _, body = http_get(p, "/metrics")
        assert status == 200 and "srs_clients 0" in body.decode()
    status, h, _ = http_get(api_port, "/api/v1/versions", headers={"Origin": "http://x"})
    assert status == 200 and h["access-control-allow-origin"] == "*"
    assert http_get(api_port, "/api/v1/versions", method="OPTIONS")[0] == 200


def test_raw_reload_applies_a_vhost_change(tmp_path, procs, short_flv):
    conf = tmp_path / "srs.conf"
    base = f"""
        listen 0; daemon off; pid {tmp_path}/srs.pid; srs_log_tank console; srs_log_level warn;
        http_server {{ enabled on; listen 0; dir {tmp_path}; }}
        http_api {{ enabled on; listen 0; raw_api {{ enabled on; allow_reload on; }} }}
        vhost __defaultVhost__ {{ http_remux {{ enabled on; }} %s }}
    """
    conf.write_text(base % "")
    srv = Server.from_file(str(conf))
    srv.start()
    try:
        procs(publish_args(short_flv, rtmp_url(srv), loop=True))
        wait_published(srv)
        p = FlvPlayer(srv.http_port, "/live/s.flv")
        assert p.read_head() == 200
        p.close()
        conf.write_text(base % "security { enabled on; deny play all; }")
        assert api(srv.http_port, "/api/v1/raw?rpc=reload")["code"] == 0
        fetch = api(srv.http_port, "/api/v1/raw?rpc=reload-fetch")["data"]
        assert fetch["err"] == 0 and fetch["state"] == 90 and fetch["rid"]
        p = FlvPlayer(srv.http_port, "/live/s.flv")
        assert p.read_head() == 403
        p.close()
        conf.write_text(base % "play { bad_directive on; }")
        assert api(srv.http_port, "/api/v1/raw?rpc=reload")["code"] == 0
        fetch = api(srv.http_port, "/api/v1/raw?rpc=reload-fetch")["data"]
        assert fetch["err"] == 1023 and fetch["state"] == 10
        p = FlvPlayer(srv.http_port, "/live/s.flv")
        assert p.read_head() == 403  # the running config is kept
        p.close()
    finally:
        srv.stop()


def test_exporter_without_the_api(make_server):
    """http_api off, exporter on: /metrics on the exporter's own port."""
    from helpers.flvclient import http_get

    srv = make_server(extra="exporter { enabled on; listen 0; }")
    assert srv.api_port is None and srv.exporter_port
    status, h, body = http_get(srv.exporter_port, "/metrics")
    assert status == 200 and b"srs_streams" in body
