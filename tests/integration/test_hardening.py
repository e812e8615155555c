"""One socket-level regression test per hole of the hardening issue (README.md, Hardening).

Each sends the attack over a real socket to an in-process server, asserts its bound (the
connection is dropped, memory held, or time taken) and that a player of another stream
keeps receiving media from its publisher all along (no gap over a second).
"""

from __future__ import annotations

import base64
import time

import gevent
import pytest
from helpers.flvclient import http_get
from helpers.net import free_port, shrink_server_sndbuf
from helpers.rtmpraw import RawRtmp, conn_of, read_time_with_unfinished, unfinished_heads
from loguru import logger

from srspy.kernel import amf0
from srspy.kernel.message import AMF0_DATA, VIDEO, MediaMessage

pytestmark = pytest.mark.timeout(90)

API = "http_api { enabled on; listen 0; }"
MiB = 1024 * 1024


def publishing_attacker(make_server, bystander):
    """A server, a bystander on /live/ok, and a raw client publishing /live/evil."""
    srv = make_server()
    other = bystander(srv.rtmp_ports[0])
    evil = RawRtmp(srv.rtmp_ports[0])
    evil.handshake()
    evil.publish("evil")
    return srv, other, evil


# ------------------------------------------------------------------ AMF0 references

def doubling_references(levels: int) -> bytes:
    """onMetaData whose ECMA array holds a strict array of ``levels`` strict arrays, each
    holding two references to the one before: once resolved, its encoding doubles per level."""
    arrays = [b"\x0a\x00\x00\x00\x00"]
    for i in range(1, levels):
        arrays.append(b"\x0a\x00\x00\x00\x02" + (b"\x07" + (i + 1).to_bytes(2, "big")) * 2)
    return (amf0.encode_all("@setDataFrame", "onMetaData") + b"\x08\x00\x00\x00\x01\x00\x01x"
            + b"\x0a" + levels.to_bytes(4, "big") + b"".join(arrays) + b"\x00\x00\x09")


def test_amf0_references_in_metadata_are_dropped_and_the_publish_goes_on(make_server, bystander):
    srv, other, evil = publishing_attacker(make_server, bystander)
    port = srv.rtmp_ports[0]
    data = doubling_references(32)
    assert len(data) < 400  # resolved, 2**32 leaves: a few hundred bytes once froze the server
    t0 = time.monotonic()
    evil.send(MediaMessage(AMF0_DATA, 0, 1, data), 4)
    evil.send(MediaMessage(VIDEO, 0, 1, bytes([0x17, 0, 0, 0, 0]) + b"k" * 100), 6)
    source = srv.sources.sources["/live/evil"]
    # the publish goes on: a player of the stream gets the next frames, and no metadata
    player = RawRtmp(port)
    player.handshake()
    player.play("evil")
    for ts in range(40, 400, 40):
        evil.send(MediaMessage(VIDEO, ts, 1, bytes([0x27, 1, 0, 0, 0]) + b"p" * 100), 6)
    while not any(m.type == VIDEO and m.payload[0] == 0x27 for m in player.msgs):
        player.read()
    assert time.monotonic() - t0 < 3.0
    assert source.meta.metadata is None
    assert not any(m.type == AMF0_DATA and amf0.decode_all(m.payload)[0] == "onMetaData" for m in player.msgs)
    assert srv.sources.sources["/live/evil"].publishing
    other.assert_fed_since(t0)


# ------------------------------------------------------------------ chunk streams

def test_chunk_stream_ids_beyond_the_cap_drop_the_connection_before_connect(make_server, bystander, capfd):
    srv = make_server(level="trace")
    port = srv.rtmp_ports[0]
    other = bystander(port)
    evil = RawRtmp(port)
    evil.handshake()
    conn = conn_of(srv, evil)
    t0 = time.monotonic()
    # A one-byte audio message on each of 2,000 chunk stream ids (3-byte basic headers).
    data = b"".join(bytes((0x01, (cs - 64) & 0xFF, (cs - 64) >> 8)) + bytes(3) + b"\x00\x00\x01\x08" + bytes(4) + b"a"
                    for cs in range(400, 2400))
    try:
        evil.sock.sendall(data)
    except OSError:
        pass  # dropped while sending
    assert evil.closed_within(5.0)
    decoder = conn.rtmp.proto.decoder
    assert decoder.chunk_streams == 64  # the cap: the 65th id ended the connection
    assert "chunk stream 65, more than 64" in capfd.readouterr().err
    other.assert_fed_since(t0)


def test_unfinished_messages_are_bounded_across_chunk_streams(make_server, bystander):
    srv, other, evil = publishing_attacker(make_server, bystander)
    conn = conn_of(srv, evil)
    t0 = time.monotonic()
    # 32 messages announcing 8 MiB each on 32 chunk streams (ids 74..105, 2-byte basic
    # headers), then 768 KiB more of each,
    # round robin (24 MiB in all; the cap of unfinished bytes is 16 MiB).
    heads = unfinished_heads(range(10, 42), 8 * MiB)
    evil.sock.sendall(heads)
    body = b"".join(bytes((0xC0, cs)) + b"b" * 128 for cs in range(10, 42))  # fmt 3, same 2-byte ids
    closed = False
    try:
        for _ in range(6 * 1024):
            evil.sock.sendall(body)
    except OSError:
        closed = True
    assert closed or evil.closed_within(5.0)
    decoder = conn.rtmp.proto.decoder
    assert decoder.pending_bytes <= 16 * MiB + 128  # dropped at the cap, never beyond
    assert decoder.pending_bytes > 15 * MiB
    assert time.monotonic() - t0 < 10
    other.assert_fed_since(t0)


def test_reads_cost_the_same_whatever_the_number_of_unfinished_messages(make_server, bystander):
    srv = make_server()
    port = srv.rtmp_ports[0]
    other = bystander(port)
    t0 = time.monotonic()
    few = min(read_time_with_unfinished(srv, port, 1, 2 * MiB) for _ in range(2))
    many = min(read_time_with_unfinished(srv, port, 60, 2 * MiB) for _ in range(2))  # 60 unfinished messages, under both caps
    assert many < 2.5 * few + 0.1, (few, many)
    other.assert_fed_since(t0)


# ------------------------------------------------------------------ set-up deadlines

def test_silent_sockets_are_dropped_after_idle_timeout(make_server, bystander):
    srv = make_server("limits { idle_timeout 1; } " + API)
    other = bystander(srv.rtmp_ports[0])
    import socket

    t0 = time.monotonic()
    silent = [socket.create_connection(("127.0.0.1", p), timeout=5) for p in (srv.rtmp_ports[0], srv.http_port, srv.api_port)]
    for s in silent:
        assert s.recv(1) == b""  # closed by the server
    took = time.monotonic() - t0
    assert 0.8 < took < 3.0
    other.assert_fed_since(t0)


# ------------------------------------------------------------------ the API

def test_jsonp_callback_must_be_an_identifier_and_method_override_is_off(make_server, bystander):
    srv = make_server(API)
    other = bystander(srv.rtmp_ports[0])
    t0 = time.monotonic()
    port = srv.api_port
    status, h, body = http_get(port, "/api/v1/versions?callback=%3Cscript%3Ealert(1)%3C/script%3E")
    assert status == 400 and b"<script>" not in body and h["x-content-type-options"] == "nosniff"
    status, h, body = http_get(port, "/api/v1/versions?callback=jQuery1_2.cb$")
    assert status == 200 and h["content-type"] == "text/javascript" and body.startswith(b"jQuery1_2.cb$({")
    assert h["x-content-type-options"] == "nosniff"
    # A JSONP GET naming DELETE kicks no one while jsonp_method_override is off.
    victim = next(c for c in srv.conns.values() if getattr(c, "type", "") == "rtmp-play")
    status, _, body = http_get(port, f"/api/v1/clients/{victim.cid}?callback=cb&method=DELETE")
    assert status == 200 and b'"client":' in body  # answered as a GET
    assert victim.cid in srv.conns and not victim.expired
    other.assert_fed_since(t0)


def test_jsonp_method_override_when_turned_on(make_server, bystander):
    srv = make_server("http_api { enabled on; listen 0; jsonp_method_override on; }")
    other = bystander(srv.rtmp_ports[0])
    victim = next(c for c in srv.conns.values() if getattr(c, "type", "") == "rtmp-play")
    status, _, body = http_get(srv.api_port, f"/api/v1/clients/{victim.cid}?callback=cb&method=DELETE")
    assert status == 200 and body.startswith(b'cb({"code":0')
    other.g.join(5.0)
    assert other.g.dead  # kicked: the console's way, as SRS


def test_basic_auth_password_with_colon_and_metrics_behind_auth(make_server, bystander):
    srv = make_server("http_api { enabled on; listen 0; auth { enabled on; username admin; password \"p:a:ss\"; } }"
                      f" exporter {{ enabled on; listen {free_port()}; }}")
    other = bystander(srv.rtmp_ports[0])
    t0 = time.monotonic()
    good = {"Authorization": "Basic " + base64.b64encode(b"admin:p:a:ss").decode()}
    assert http_get(srv.api_port, "/api/v1/versions", headers=good)[0] == 200
    assert http_get(srv.api_port, "/api/v1/versions")[0] == 401
    assert http_get(srv.api_port, "/metrics")[0] == 401  # host name, kernel, pid
    status, _, body = http_get(srv.api_port, "/metrics", headers=good)
    assert status == 200 and b"srs_clients" in body
    assert http_get(srv.exporter_port, "/metrics")[0] == 200  # the exporter's own port, as SRS
    other.assert_fed_since(t0)


# ------------------------------------------------------------------ logging

def test_client_strings_cannot_forge_or_lose_log_records(make_server, bystander):
    srv = make_server(level="trace")
    other = bystander(srv.rtmp_ports[0])
    records: list[str] = []
    sink = logger.add(lambda m: records.append(m), format="{message}", level="DEBUG")
    try:
        t0 = time.monotonic()
        evil = RawRtmp(srv.rtmp_ports[0])
        evil.handshake()
        app = "live" + b"\xff\xfe".decode("utf-8", "surrogateescape")
        tc_url = "rtmp://127.0.0.1/" + app + "\n[2026-01-01 00:00:00.000][INFO ][1][forged00] admin logged in"
        evil.command("connect", 1.0, {"app": app, "tcUrl": tc_url, "objectEncoding": 0.0})
        evil.until_command("_result")
        evil.close()
        deadline = time.monotonic() + 5
        while not any("client disconnect" in r for r in records):
            assert time.monotonic() < deadline, records
            gevent.sleep(0.02)
    finally:
        logger.remove(sink)
    connect = [r for r in records if r.startswith("connect app, tcUrl=")]
    assert len(connect) == 1
    line = connect[0]
    assert line.count("\n") == 1 and line.endswith("\n")  # one line: the record's own end
    assert "live\\xff\\xfe\\n[2026-01-01" in line
    assert not any(r.startswith("[2026-01-01") for r in records)
    other.assert_fed_since(t0)


# ------------------------------------------------------------------ smaller defects

def test_check_access_has_no_fail_open_path(make_server):
    """The rules are imported with the server (no lazy import that could fail open), and
    a deny rule denies."""
    from srspy import security, server
    from srspy.errors import AccessDenied
    from srspy.request import Request

    assert server.security is security
    srv = make_server(vhost_extra="security { enabled on; deny publish all; }")
    req = Request()
    req.ip = "127.0.0.1"
    with pytest.raises(AccessDenied):
        srv.check_access(srv.config.root["vhost"]["__defaultVhost__"], "publish", req)


def test_reload_keeps_the_log_sinks_of_an_embedding_application(make_server):
    from srspy import log

    srv = make_server(level="warn")
    got: list[str] = []
    sink = logger.add(lambda m: got.append(m), format="{message}", level="INFO")
    try:
        srv.reload()
        log.set_level("trace")  # what a reload that changes srs_log_level does: srspy's sink again
        logger.info("after reload")
    finally:
        logger.remove(sink)
    assert any(m.startswith("after reload") for m in got)


def test_api_beyond_loopback_without_auth_warns_at_start(make_server, capfd):
    make_server("http_api { enabled on; listen 0.0.0.0:0; }")
    assert "beyond loopback without auth" in capfd.readouterr().err
    make_server("http_api { enabled on; listen 127.0.0.1:0; }")
    make_server("http_api { enabled on; listen 0.0.0.0:0; auth { enabled on; username a; password b; } }")
    assert "beyond loopback" not in capfd.readouterr().err


# ------------------------------------------------------------------ stalls and lockouts

def _stuck_client(port: int, request: bytes | None = None):
    """A client with a 4 KiB receive buffer that never reads what it asked for."""
    import socket

    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    if request:
        s.sendall(request)
    return s


def test_an_http_player_that_stops_reading_is_dropped_after_send_timeout(make_server, bystander):
    srv = make_server(extra="limits { send_timeout 1; }")
    other = bystander(srv.rtmp_ports[0])
    records: list = []
    sink = logger.add(lambda m: records.append(m.record), level="WARNING")
    t0 = time.monotonic()
    stuck = _stuck_client(srv.http_port, b"GET /live/ok.flv HTTP/1.1\r\nHost: x\r\n\r\n")
    src = srv.sources.sources["/live/ok"]
    deadline = time.monotonic() + 5
    while not any(c.type == "flv-play" for c in srv.stat.clients.values()):
        assert time.monotonic() < deadline
        gevent.sleep(0.02)
    assert shrink_server_sndbuf(srv, stuck)
    # the bystander's stream flows at ~14 KB/s: the 4 KiB buffers fill, the write blocks
    deadline = time.monotonic() + 15
    while any(c.type == "flv-play" for c in srv.stat.clients.values()):
        assert time.monotonic() < deadline, "the stuck HTTP player was never dropped"
        gevent.sleep(0.05)
    assert len(src.consumers) == 1  # only the bystander's RTMP player: the consumer is disposed
    assert not any(getattr(c, "remote_port", None) == stuck.getsockname()[1] for c in srv.conns.values())
    other.assert_fed_since(t0)
    stuck.close()
    logger.remove(sink)
    # one warning line that names the bound, no error record with a traceback
    dropped = [r for r in records if "limits.send_timeout" in r["message"]]
    assert len(dropped) == 1 and dropped[0]["level"].name == "WARNING", [r["message"] for r in records]
    assert not [r for r in records if r["level"].no >= 40 or r["exception"] is not None]


def test_an_rtmp_player_that_stops_reading_is_dropped_after_send_timeout(make_server, bystander):
    srv = make_server(extra="limits { send_timeout 1; }")
    other = bystander(srv.rtmp_ports[0])
    records: list = []
    sink = logger.add(lambda m: records.append(m.record), level="WARNING")
    t0 = time.monotonic()
    p = RawRtmp(srv.rtmp_ports[0])
    p.sock.setsockopt(__import__("socket").SOL_SOCKET, __import__("socket").SO_RCVBUF, 4096)
    p.handshake()
    p.play("ok")
    conn = conn_of(srv, p)
    conn.sock.setsockopt(__import__("socket").SOL_SOCKET, __import__("socket").SO_SNDBUF, 4096)
    deadline = time.monotonic() + 15
    while conn.cid in srv.conns:
        assert time.monotonic() < deadline, "the stuck RTMP player was never dropped"
        gevent.sleep(0.05)
    assert len(srv.sources.sources["/live/ok"].consumers) == 1
    other.assert_fed_since(t0)
    p.close()
    logger.remove(sink)
    dropped = [r for r in records if "limits.send_timeout" in r["message"]]
    assert len(dropped) == 1 and dropped[0]["level"].name == "WARNING", [r["message"] for r in records]
    assert not [r["message"] for r in records if r["level"].no >= 40 or r["exception"] is not None]


def _limited(tmp_path, http: str, api: str, max_connections: int) -> str:
    return f"""
listen 0; max_connections {max_connections}; daemon off; srs_log_tank console; srs_log_level warn;
limits {{ api_reserve 2; }}
http_server {{ enabled on; listen {http}; dir {tmp_path}/html; }}
http_api {{ enabled on; listen {api}; }}
vhost __defaultVhost__ {{ http_remux {{ enabled on; mount [vhost]/[app]/[stream].flv; }} }}
"""


def test_the_api_stays_reachable_when_players_hold_every_slot(make_server, bystander, tmp_path):
    srv = make_server(text=_limited(tmp_path, "0", "127.0.0.1:0", 4))
    other = bystander(srv.rtmp_ports[0])  # 2 connections: its publisher and player
    idle = [RawRtmp(srv.rtmp_ports[0]) for _ in range(2)]  # the last 2 slots, silent
    gevent.sleep(0.2)
    assert len(srv.conns) == 4
    # a fifth RTMP client is refused, the API on its own port is served from the reserve
    extra = RawRtmp(srv.rtmp_ports[0])
    assert extra.closed_within(3.0)
    status, _, body = http_get(srv.api_port, "/api/v1/summaries")
    assert status == 200 and b'"code":0' in body.replace(b" ", b"")
    other.wait_fed()
    for c in idle:
        c.close()


def test_the_reserve_on_a_shared_port_serves_only_the_api(make_server, bystander, tmp_path):
    port = free_port()
    srv = make_server(text=_limited(tmp_path, str(port), str(port), 3))
    assert srv.api_port == srv.http_port == port
    other = bystander(srv.rtmp_ports[0])
    idle = RawRtmp(srv.rtmp_ports[0])  # the third and last slot
    gevent.sleep(0.2)
    assert len(srv.conns) == 3
    status, _, body = http_get(port, "/api/v1/versions")  # admitted into the reserve: the API is served
    assert status == 200 and b"major" in body
    status, _, body = http_get(port, "/live/ok.flv")  # a player in the reserve: refused once its head is read
    assert status == 503 and b"kept for the API" in body
    other.wait_fed()
    idle.close()


def test_connections_per_ip(make_server, bystander):
    srv = make_server(extra="limits { connections_per_ip 3; }")
    other = bystander(srv.rtmp_ports[0])  # 2 connections from 127.0.0.1
    third = RawRtmp(srv.rtmp_ports[0])
    third.handshake()
    assert third.connect()[0] == "_result"
    fourth = RawRtmp(srv.rtmp_ports[0])
    assert fourth.closed_within(3.0)
    third.close()
    deadline = time.monotonic() + 5
    while len(srv.conns) > 2:
        assert time.monotonic() < deadline
        gevent.sleep(0.02)
    again = RawRtmp(srv.rtmp_ports[0])  # a slot of this address is free again
    again.handshake()
    assert again.connect()[0] == "_result"
    other.wait_fed()
    again.close()
