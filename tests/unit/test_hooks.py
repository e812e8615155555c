"""Hooks without a network: the verdict on an answer, SRS's bodies, in-process callables."""

import time

import gevent
import pytest

from srspy.config import load_config
from srspy.errors import AccessDenied
from srspy.hooks import EVENTS, HookRefused, Hooks, check_response
from srspy.request import Request, discover_tc_url, request_from_http
from srspy.stat import Statistic

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize("status, body, allowed", [
    (200, b"0", True),
    (201, b"0", True),
    (200, b"0\n", True),
    (200, b'{"code":0}', True),
    (200, b'{"code": 0, "msg": "ok", "data": {}}', True),
    (200, b"1", False),
    (200, b'{"code":1}', False),
    (200, b'{"code":"0"}', False),
    (200, b'{"code":0.0}', False),
    (200, b'{"code":false}', False),
    (200, b'{"msg":"no code"}', False),
    (200, b"", False),
    (200, b"ok", False),
    (200, b"<html>", False),
    (200, b"[0]", False),
    (200, b"0.0", False),
    (204, b"0", False),
    (302, b"0", False),
    (500, b"0", False),
])
def test_check_response(status, body, allowed):
    verdict = check_response(status, body)
    assert (verdict is None) is allowed, verdict


class FakeServer:
    def __init__(self, hooks_conf=""):
        self.config = load_config(text=f"listen 1935; vhost __defaultVhost__ {{ {hooks_conf} }}")
        self.stat = Statistic()


def rtmp_req(stream="s", param=""):
    req = Request()
    discover_tc_url("rtmp://127.0.0.1:1935/live", stream + param, req)
    req.vhost, req.ip, req.page_url = "__defaultVhost__", "10.1.1.1", "http://page/x.html"
    return req


def test_bodies_have_srs_fields_in_srs_order():
    srv = FakeServer()
    h = Hooks(srv)
    req = rtmp_req(param="?token=abc")
    srv.stat.on_client("c1", req, None, "fmle-publish")
    head = ["server_id", "service_id", "action", "client_id", "ip", "vhost", "app"]
    ev = h.event("on_connect", req, "c1")
    assert list(ev) == head + ["stream", "param", "tcUrl", "pageUrl"]
    ev = h.event("on_close", req, "c1", send_bytes=10, recv_bytes=20)
    assert list(ev) == head + ["send_bytes", "recv_bytes"] and ev["send_bytes"] == 10 and ev["recv_bytes"] == 20
    for action in ("on_publish", "on_unpublish", "on_stop"):
        ev = h.event(action, req, "c1")
        assert list(ev) == head + ["tcUrl", "stream", "param", "stream_url", "stream_id"]
    ev = h.event("on_play", req, "c1")
    assert list(ev) == head + ["stream", "tcUrl", "param", "pageUrl", "stream_url", "stream_id"]
    assert ev["server_id"] == srv.stat.server_id and ev["service_id"] == srv.stat.service_id
    assert ev["action"] == "on_play" and ev["client_id"] == "c1" and ev["ip"] == "10.1.1.1"
    assert ev["vhost"] == "__defaultVhost__" and ev["app"] == "live" and ev["stream"] == "s"
    assert ev["param"] == "?token=abc" and ev["tcUrl"] == "rtmp://127.0.0.1:1935/live"
    assert ev["stream_url"] == "/live/s" and ev["stream_id"] == srv.stat.streams["/live/s"].id
    assert ev["pageUrl"] == "http://page/x.html"
    # no stat stream: no stream_id
    assert "stream_id" not in h.event("on_play", rtmp_req("other"), "c2")
    # an HTTP-FLV player's stream is the name without the extension
    hreq = request_from_http("/live/s.flv", "a=1", "127.0.0.1", "2.2.2.2")
    hreq.vhost = "__defaultVhost__"
    ev = h.event("on_play", hreq, "c3")
    assert ev["stream"] == "s" and ev["param"] == "?a=1" and ev["stream_url"] == "/live/s"


def test_nothing_configured_nothing_happens():
    h = Hooks(FakeServer("http_hooks { enabled off; on_publish http://127.0.0.1:1/x; }"))
    h.on_connect(rtmp_req(), "c")
    h.on_publish(rtmp_req(), "c")
    h.on_play(rtmp_req(), "c")
    h.on_stop(rtmp_req(), "c")
    assert len(h.pending) == 0


@pytest.mark.parametrize("result, allowed", [(True, True), (None, True), (False, False), (ValueError("no"), False)])
def test_deciding_callables(result, allowed):
    h = Hooks(FakeServer())
    seen = []

    def fn(ev):
        seen.append(ev)
        if isinstance(result, Exception):
            raise result
        return result

    for event in ("on_connect", "on_publish", "on_play"):
        h.register(event, fn)
        call = getattr(h, event)
        if allowed:
            call(rtmp_req(), "c1")
        else:
            with pytest.raises(AccessDenied) as ei:
                call(rtmp_req(), "c1")
            assert isinstance(ei.value, HookRefused) and event in str(ei.value) and "fn" in str(ei.value)
    assert [e["action"] for e in seen] == ["on_connect", "on_publish", "on_play"]


def test_first_refusal_stops_the_chain():
    h = Hooks(FakeServer())
    calls = []
    h.register("on_publish", lambda ev: calls.append(1) or False)
    h.register("on_publish", lambda ev: calls.append(2))
    with pytest.raises(HookRefused):
        h.on_publish(rtmp_req(), "c")
    assert calls == [1]


def test_register_rejects_unknown_events_and_unregister():
    h = Hooks(FakeServer())
    with pytest.raises(ValueError):
        h.register("on_dvr_typo", print)
    fn = lambda ev: False  # noqa: E731
    h.register("on_play", fn)
    h.unregister("on_play", fn)
    h.on_play(rtmp_req(), "c")
    assert set(h.callables) == set(EVENTS)


def test_a_hanging_callable_costs_at_most_the_timeout():
    h = Hooks(FakeServer("http_hooks { timeout 0.3; }"))
    h.register("on_play", lambda ev: gevent.sleep(10))
    t0 = time.monotonic()
    with pytest.raises(HookRefused, match=r"within 0\.3s"):
        h.on_play(rtmp_req(), "c")
    assert time.monotonic() - t0 < 1.0


def test_notifications_do_not_block_and_see_the_request_as_it_was():
    h = Hooks(FakeServer())
    got = []
    h.register("on_stop", lambda ev: (gevent.sleep(0.2), got.append(ev)))
    h.register("on_close", lambda ev: 1 / 0)  # failures are logged, never raised
    req = rtmp_req()
    t0 = time.monotonic()
    h.on_stop(req, "c1")
    h.on_close(req, "c1", 1, 2)
    assert time.monotonic() - t0 < 0.1
    req.stream = "changed"
    h.drain(2)
    assert got and got[0]["stream"] == "s" and got[0]["action"] == "on_stop"
    assert len(h.pending) == 0
