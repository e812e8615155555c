"""Statistic: clients, streams and vhosts; bytes from the connections' counters; kbps on a timer."""

import pytest

from srspy.request import Request, discover_tc_url, request_from_http
from srspy.stat import Kbps, Statistic, conn_bytes

STREAM_KEYS = ["id", "name", "vhost", "app", "tcUrl", "url", "live_ms", "clients", "frames", "send_bytes",
               "recv_bytes", "kbps", "publish", "video", "audio"]
CLIENT_KEYS = ["id", "vhost", "stream", "ip", "pageUrl", "swfUrl", "tcUrl", "url", "name", "type", "publish",
               "alive", "send_bytes", "recv_bytes", "kbps"]
VHOST_KEYS = ["id", "name", "enabled", "clients", "streams", "send_bytes", "recv_bytes", "kbps", "hls"]


class RtmpLike:
    def __init__(self):
        self.send_bytes = 0
        self.recv_bytes = 0


class HttpLike:
    def __init__(self):
        self.bytes_out = 0
        self.bytes_in = 0


def rtmp_req(stream="s", app="live", ip="1.2.3.4", vhost="__defaultVhost__"):
    req = Request()
    discover_tc_url(f"rtmp://127.0.0.1/{app}", stream, req)
    req.vhost, req.ip = vhost, ip
    return req


def http_req(path="/live/s.flv", ip="6.6.6.6"):
    req = request_from_http(path, "", "127.0.0.1", ip)
    req.vhost = "__defaultVhost__"  # as the stream server resolves it
    return req


class Source:
    frames = 250
    video_info = {"codec": "H264", "profile": "High", "level": "3", "width": 640, "height": 360}
    audio_info = {"codec": "AAC", "sample_rate": 44100, "channel": 2, "profile": "LC"}


def test_conn_bytes_reads_rtmp_and_http_counters():
    r, h = RtmpLike(), HttpLike()
    r.send_bytes, r.recv_bytes, h.bytes_out, h.bytes_in = 1, 2, 3, 4
    assert conn_bytes(r) == (1, 2) and conn_bytes(h) == (3, 4) and conn_bytes(None) == (0, 0)


def test_stream_name_strips_http_extension_only():
    assert request_from_http("/live/s.flv", "", "127.0.0.1", "1.1.1.1").stream_name == "s"
    assert rtmp_req("a.b").stream_name == "a.b"


def test_kbps_from_counter_samples():
    k = Kbps()
    assert k.rates() == (0, 0)
    k.sample(0.0, 0, 0)
    k.sample(1.0, 125_000, 250_000)  # 1 Mbit in, 2 Mbit out in one second
    assert k.rates() == (1000, 2000)
    for t in range(2, 100):
        k.sample(float(t), 125_000 * t, 250_000 * t)
    assert k.rates() == (1000, 2000)
    assert len(k.samples) <= 32  # only the 30 s window is kept
    assert k.dumps() == {"recv_30s": 1000, "send_30s": 2000}


def test_publish_play_disconnect_lifecycle():
    st = Statistic()
    pub, p1, p2 = RtmpLike(), RtmpLike(), HttpLike()
    st.on_client("pub", rtmp_req(), pub, "fmle-publish")
    st.on_stream_publish(rtmp_req(), "pub")
    st.on_client("p1", rtmp_req(ip="5.5.5.5"), p1, "rtmp-play")
    st.on_client("p2", http_req(), p2, "flv-play")
    assert list(st.clients) == ["pub", "p1", "p2"]
    assert list(st.streams) == ["/live/s"]
    s = st.streams["/live/s"]
    pub.recv_bytes, p1.send_bytes, p2.bytes_out = 1000, 300, 400
    d = s.dumps(Source())
    assert list(d) == STREAM_KEYS
    assert d["name"] == "s" and d["app"] == "live" and d["url"] == "/live/s" and d["tcUrl"] == "rtmp://127.0.0.1/live"
    assert d["clients"] == 3 and d["frames"] == 250
    assert d["recv_bytes"] == 1000 and d["send_bytes"] == 700
    assert d["publish"] == {"active": True, "cid": "pub"}
    assert d["video"] == Source.video_info and d["audio"] == Source.audio_info
    assert d["vhost"] == st.vhosts["__defaultVhost__"].id and d["id"].startswith("vid-")

    c = st.clients["p2"].dumps()
    assert list(c) == CLIENT_KEYS
    assert c["type"] == "flv-play" and c["publish"] is False and c["name"] == "s" and c["url"] == "/live/s"
    assert c["ip"] == "6.6.6.6" and c["stream"] == s.id and c["send_bytes"] == 400
    assert st.clients["pub"].dumps()["publish"] is True

    v = st.vhosts["__defaultVhost__"].dumps()
    assert list(v) == VHOST_KEYS and v["clients"] == 3 and v["streams"] == 1 and v["hls"] == {"enabled": False}

    # bytes survive disconnects; the stream stays while published
    st.on_disconnect("p1")
    assert s.send_bytes == 700 and st.send_bytes == 700 and s.dumps()["clients"] == 2
    st.on_stream_unpublish(rtmp_req())
    assert s.dumps(Source())["video"] is None and s.dumps()["publish"] == {"active": False}
    st.on_disconnect("pub", error=True)
    assert "/live/s" in st.streams  # the HTTP player is still there
    st.on_disconnect("p2")
    assert st.streams == {} and st.clients == {}
    assert st.vhosts["__defaultVhost__"].send_bytes == 700
    m = st.metrics()
    assert m == {"send_bytes": 700, "recv_bytes": 1000, "streams": 0, "clients": 0, "clients_total": 3,
                 "clients_errs": 1}
    st.on_disconnect("nobody")


def test_republish_makes_a_new_stream_id_and_moves_the_client_without_double_counting():
    st = Statistic()
    conn = RtmpLike()
    st.on_client("c", rtmp_req("a"), conn, "fmle-publish")
    st.on_stream_publish(rtmp_req("a"), "c")
    first = st.streams["/live/a"].id
    conn.recv_bytes = 500
    st.on_stream_unpublish(rtmp_req("a"))
    st.on_client("c", rtmp_req("b"), conn, "fmle-publish")  # identified again, another stream
    assert "/live/a" not in st.streams and st.streams["/live/b"].recv_bytes == 0
    conn.recv_bytes = 800
    assert st.streams["/live/b"].recv_bytes == 300
    assert st.recv_bytes == 800 and st.clients_total == 1
    st.on_client("c", rtmp_req("a"), conn, "fmle-publish")
    assert st.streams["/live/a"].id != first


def test_sample_gives_every_level_a_bitrate():
    st = Statistic()
    pub, player = RtmpLike(), HttpLike()
    st.on_client("pub", rtmp_req(), pub, "fmle-publish")
    st.on_stream_publish(rtmp_req(), "pub")
    st.on_client("pl", http_req(ip="2.2.2.2"), player, "flv-play")
    st.sample(10.0)
    pub.recv_bytes, player.bytes_out = 250_000, 125_000
    st.sample(12.0)
    assert st.kbps.rates() == (1000, 500)
    assert st.streams["/live/s"].kbps.rates() == (1000, 500)
    assert st.vhosts["__defaultVhost__"].kbps.rates() == (1000, 500)
    assert st.clients["pub"].kbps.rates() == (1000, 0) and st.clients["pl"].kbps.rates() == (0, 500)
    assert "kbps in=1000 out=500" in st.summary()
    assert st.proc.sample_time > 0


def test_dumps_paging_and_lookups():
    st = Statistic()
    for i in range(15):
        st.on_client(f"c{i:02}", rtmp_req(f"s{i}"), RtmpLike(), "rtmp-play")
    assert len(st.dumps_clients(0, 10)) == 10
    assert [c["id"] for c in st.dumps_clients(12, 10)] == ["c12", "c13", "c14"]
    assert len(st.dumps_streams(5, 100)) == 10
    s = st.streams["/live/s3"]
    assert st.find_stream(s.id) is s and st.find_stream_by_url("/live/s3") is s and st.find_stream("x") is None
    v = st.vhosts["__defaultVhost__"]
    assert st.find_vhost(v.id) is v and st.find_client("c01").id == "c01" and st.find_client("zz") is None
    assert [v["name"] for v in st.dumps_vhosts()] == ["__defaultVhost__"]


@pytest.mark.parametrize("server_id", ["", "vid-fixed01"])
def test_ids(server_id):
    st = Statistic(server_id)
    assert st.server_id == (server_id or st.server_id) and st.server_id.startswith("vid-")
    assert len(st.service_id) == 8 and st.pid.isdigit()
