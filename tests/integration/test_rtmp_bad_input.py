"""Bad input closes only its own connection, with one clear log line; the server and the
other connections carry on (a publisher keeps feeding a player throughout)."""

import struct

import gevent
import pytest
from helpers.rtmpraw import Publisher, RawRtmp

from srspy.kernel import amf0
from srspy.kernel.message import AMF0_COMMAND, VIDEO, MediaMessage

pytestmark = pytest.mark.timeout(60)

def nested(depth: int) -> bytes:
    return b"\x03" * depth  # objects opening objects, never closed (key length bytes follow)


def deep_object(depth: int) -> bytes:
    body = b""
    for _ in range(depth):
        body = b"\x03\x00\x01k" + body
    return body


BAD_INPUTS = {
    "garbage": lambda port: _raw(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + b"\x00" * 2000),
    "c0_not_3": lambda port: _raw(port, b"\x06" + b"\x00" * 1536),
    "truncated_handshake": lambda port: _raw(port, b"\x03" + b"\x01" * 700, shutdown=True),
    "chunk_size_0": lambda port: _after_handshake(port, MediaMessage(1, 0, 0, struct.pack(">I", 0)), 2),
    "chunk_size_2_31": lambda port: _after_handshake(port, MediaMessage(1, 0, 0, struct.pack(">I", 1 << 31)), 2),
    "message_too_big": lambda port: _after_handshake_bytes(port, b"\x03\x00\x00\x00\xff\xff\xff\x14\x00\x00\x00\x00" + b"\x02" * 100),
    "amf0_nested_1000": lambda port: _after_handshake(port, MediaMessage(AMF0_COMMAND, 0, 0, amf0.encode_all("connect", 1.0) + deep_object(1000))),
    "amf0_unknown_marker": lambda port: _after_handshake(port, MediaMessage(AMF0_COMMAND, 0, 0, b"\x02\x00\x07connect\x00?\xf0\x00\x00\x00\x00\x00\x00\x42")),
    "amf0_truncated": lambda port: _after_handshake(port, MediaMessage(AMF0_COMMAND, 0, 0, b"\x02\x00\x07connect\x00?\xf0\x00")),
    "publish_before_connect": lambda port: _after_handshake(port, MediaMessage(AMF0_COMMAND, 0, 1, amf0.encode_all("publish", 3.0, None, "x", "live"))),
}


def _raw(port, data, shutdown=False):
    c = RawRtmp(port)
    c.sock.sendall(data)
    if shutdown:
        import socket

        c.sock.shutdown(socket.SHUT_WR)
    return c


def _after_handshake(port, msg, cs_id=3):
    c = RawRtmp(port)
    c.handshake()
    c.send(msg, cs_id)
    return c


def _after_handshake_bytes(port, data):
    c = RawRtmp(port)
    c.handshake()
    c.sock.sendall(data)
    return c


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_closes_only_its_connection(make_server, case, capfd):
    srv = make_server(level="trace")
    pub = Publisher(srv.rtmp_ports[0])
    player = RawRtmp(srv.rtmp_ports[0])
    player.handshake()
    player.play("ok")
    bad = BAD_INPUTS[case](srv.rtmp_ports[0])
    assert bad.closed_within(5.0), f"{case}: the server kept the bad connection open"
    # the player keeps receiving media from the publisher, and new clients still connect
    before = sum(1 for m in player.msgs if m.type == VIDEO)
    deadline = gevent.time.time() + 3
    while sum(1 for m in player.msgs if m.type == VIDEO) < before + 10 and gevent.time.time() < deadline:
        player.read()
    assert sum(1 for m in player.msgs if m.type == VIDEO) >= before + 10
    probe = RawRtmp(srv.rtmp_ports[0])
    probe.handshake()
    assert probe.connect()[0] == "_result"
    pub.g.kill()
    err = capfd.readouterr().err
    assert "RecursionError" not in err and "Traceback" not in err
    assert len(srv.conns) >= 3  # publisher, player, probe alive


def test_publish_timeouts(make_server):
    srv = make_server(vhost_extra="publish { firstpkt_timeout 1000; normal_timeout 1000; }")
    c = RawRtmp(srv.rtmp_ports[0])
    c.handshake()
    c.publish("silent")
    t0 = gevent.time.time()
    assert c.closed_within(4.0)
    assert 0.8 < gevent.time.time() - t0 < 3.0
    assert not srv.sources.sources.get("/live/silent") or not srv.sources.sources["/live/silent"].publishing
