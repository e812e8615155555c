"""RTMP command sequences as SRS sends them, checked on the wire with a raw client."""

import gevent
import pytest
from helpers.media import wait_until
from helpers.rtmpraw import RawRtmp

from srspy.kernel import amf0
from srspy.rtmp.message import SET_CHUNK_SIZE, SET_PEER_BANDWIDTH, USER_CONTROL, WINDOW_ACK_SIZE
from srspy.kernel.message import AMF0_COMMAND, AMF0_DATA, AUDIO, VIDEO, MediaMessage

pytestmark = pytest.mark.timeout(30)
AVC_SH = bytes([0x17, 0, 0, 0, 0, 1, 0x42, 0xC0, 0x1E, 0xFF, 0xE1, 0, 4, 0x67, 0x42, 0xC0, 0x1E, 1, 0, 4, 0x68, 0xCE, 0x3C, 0x80])


def commands(c):
    return [amf0.decode_all(m.payload) for m in c.msgs if m.type == AMF0_COMMAND]


def status_codes(c):
    return [v[3]["code"] for v in commands(c) if v[0] in ("onStatus", "onFCPublish") and isinstance(v[3], dict)]


def connected(port, app="live", tc=None):
    c = RawRtmp(port)
    c.handshake()
    c.connect(app, tc)
    return c


def test_connect_reply_sequence(make_server):
    srv = make_server()
    c = connected(srv.rtmp_ports[0])
    kinds = [m.type for m in c.msgs]
    assert kinds[:4] == [WINDOW_ACK_SIZE, SET_PEER_BANDWIDTH, SET_CHUNK_SIZE, AMF0_COMMAND]
    assert int.from_bytes(c.msgs[0].payload, "big") == 2500000
    assert int.from_bytes(c.msgs[2].payload, "big") == 60000
    result = commands(c)[0]
    assert result[0] == "_result" and result[1] == 1.0
    assert result[2]["fmsVer"] == "FMS/3,5,3,888" and result[2]["capabilities"] == 127.0
    info = result[3]
    assert info["code"] == "NetConnection.Connect.Success" and info["level"] == "status"
    assert info["data"]["srs_sig"] == "srspy"
    while not any(v[0] == "onBWDone" for v in commands(c)):
        c.read()


def test_unknown_call_gets_null_result(make_server):
    srv = make_server()
    c = connected(srv.rtmp_ports[0])
    c.command("_checkbw", 5.0, None)
    v = c.until_command("_result")
    assert v[1] == 5.0 and v[2] is None and v[3] is None


def start_publish(port, kind, stream="s"):
    c = connected(port)
    if kind == "fmle":
        c.command("releaseStream", 2.0, None, stream)
        c.command("FCPublish", 3.0, None, stream)
        c.command("createStream", 4.0, None)
        c.until_command("_result")
        c.command("publish", 5.0, None, stream, "live", stream_id=1)
    elif kind == "flash":
        c.command("createStream", 2.0, None)
        c.until_command("_result")
        c.command("publish", 3.0, None, stream, "live", stream_id=1)
    else:  # haivision
        c.command("createStream", 2.0, None)
        c.until_command("_result")
        c.command("FCPublish", 3.0, None, stream)
        c.command("publish", 4.0, None, stream, "live", stream_id=1)
    c.until_command("onStatus", "NetStream.Publish.Start")
    return c


@pytest.mark.parametrize("kind, type_, fc", [("fmle", "fmle-publish", True), ("flash", "flash-publish", False), ("haivision", "haivision-publish", True)])
def test_publishers_identified_as_srs_does(make_server, kind, type_, fc):
    srv = make_server()
    c = start_publish(srv.rtmp_ports[0], kind)
    codes = status_codes(c)
    assert codes == (["NetStream.Publish.Start"] * 2 if fc else ["NetStream.Publish.Start"])
    assert [v[0] for v in commands(c) if v[0] in ("onFCPublish", "onStatus")] == (["onFCPublish", "onStatus"] if fc else ["onStatus"])
    wait_until(lambda: any(cl.type == type_ for cl in srv.stat.clients.values()), 5, what=f"a {type_} client")


def play(port, stream="s"):
    c = RawRtmp(port)
    c.handshake()
    c.play(stream)
    return c


def test_play_sequence_and_unpublish_republish_notify(make_server):
    srv = make_server()
    p = play(srv.rtmp_ports[0])
    i = next(i for i, m in enumerate(p.msgs) if m.type == USER_CONTROL)
    assert p.msgs[i].payload == b"\x00\x00\x00\x00\x00\x01"  # StreamBegin(1)
    assert status_codes(p) == ["NetStream.Play.Reset", "NetStream.Play.Start"]
    while not any(m.type == AMF0_DATA for m in p.msgs):
        p.read()
    data = next(m for m in p.msgs if m.type == AMF0_DATA)
    assert amf0.decode_all(data.payload) == ["|RtmpSampleAccess", True, True]
    pub = start_publish(srv.rtmp_ports[0], "fmle")
    p.until_command("onStatus", "NetStream.Play.PublishNotify")
    pub.send(MediaMessage(VIDEO, 0, 1, AVC_SH), 6)
    pub.send(MediaMessage(VIDEO, 0, 1, b"\x17\x01\x00\x00\x00" + b"k" * 100), 6)
    pub.close()
    p.until_command("onStatus", "NetStream.Play.UnpublishNotify")
    assert sum(1 for m in p.msgs if m.type == VIDEO) == 2
    pub2 = start_publish(srv.rtmp_ports[0], "flash")
    p.until_command("onStatus", "NetStream.Play.PublishNotify")
    sh2 = AVC_SH[:-1] + b"\x81"
    pub2.send(MediaMessage(VIDEO, 5000, 1, b"\x27\x01\x00\x00\x00" + b"p" * 10), 6)  # no keyframe yet: skipped
    pub2.send(MediaMessage(VIDEO, 5000, 1, sh2), 6)
    pub2.send(MediaMessage(VIDEO, 5040, 1, b"\x17\x01\x00\x00\x00" + b"K" * 100), 6)
    while sum(1 for m in p.msgs if m.type == VIDEO) < 4:
        p.read()
    videos = [m.payload for m in p.msgs if m.type == VIDEO]
    assert videos[2] == sh2 and videos[3][:2] == b"\x17\x01"


def test_pause_unpause_and_close_stream(make_server):
    srv = make_server()
    pub = start_publish(srv.rtmp_ports[0], "fmle")
    pub.send(MediaMessage(VIDEO, 0, 1, AVC_SH), 6)
    p = play(srv.rtmp_ports[0])
    p.command("pause", 0.0, None, True, 0.0, stream_id=1)
    p.until_command("onStatus", "NetStream.Pause.Notify")
    n = len(p.msgs)
    for t in range(10):
        pub.send(MediaMessage(AUDIO, t * 20, 1, b"\xaf\x01" + b"a" * 10), 4)
    gevent.sleep(0.8)
    p.sock.settimeout(0.3)
    try:
        p.read()
    except OSError:
        pass
    assert not any(m.type == AUDIO for m in p.msgs[n:])
    p.sock.settimeout(5)
    p.command("pause", 0.0, None, False, 0.0, stream_id=1)
    p.until_command("onStatus", "NetStream.Unpause.Notify")
    for t in range(10, 40):
        pub.send(MediaMessage(AUDIO, t * 20, 1, b"\xaf\x01" + b"a" * 10), 4)
    while not any(m.type == AUDIO for m in p.msgs[n:]):
        p.read()
    # closeStream ends the play; the same connection can play again
    p.command("closeStream", 0.0, None, stream_id=1)
    wait_until(lambda: not srv.sources.sources["/live/s"].consumers, 5, what="the play closed")
    p.command("play", 6.0, None, "s", stream_id=1)
    p.until_command("onStatus", "NetStream.Play.Start")


def test_vhost_by_query_and_unknown_vhost(make_server):
    srv = make_server(text=make_text())
    c = connected(srv.rtmp_ports[0], tc="rtmp://127.0.0.1/live?vhost=only.test")
    assert commands(c)[0][0] == "_result"
    bad = RawRtmp(srv.rtmp_ports[0])
    bad.handshake()
    bad.command("connect", 1.0, {"app": "live", "tcUrl": "rtmp://unknown.test/live"})
    v = bad.until_command("_error")
    assert v[3]["code"] == "NetConnection.Connect.Rejected"
    assert bad.closed_within(3)


def make_text():
    return "listen 0; daemon off; vhost only.test { }\n"


def test_amf3_command_connect_accepted(make_server):
    from srspy.kernel.message import AMF3_COMMAND

    srv = make_server()
    c = RawRtmp(srv.rtmp_ports[0])
    c.handshake()
    payload = b"\x00" + amf0.encode_all("connect", 1.0, {"app": "live", "tcUrl": "rtmp://127.0.0.1/live", "objectEncoding": 3.0})
    c.send(MediaMessage(AMF3_COMMAND, 0, 0, payload))
    v = c.until_command("_result")
    assert v[3]["code"] == "NetConnection.Connect.Success" and v[3]["objectEncoding"] == 3.0


def test_several_listen_endpoints_ipv4_and_ipv6(make_server):
    srv = make_server(text="listen 127.0.0.1:0 [::1]:0; daemon off; vhost __defaultVhost__ { }")
    assert len(srv.rtmp_ports) == 2
    c4 = RawRtmp(srv.rtmp_ports[0])
    c4.handshake()
    assert c4.connect()[0] == "_result"
    c6 = RawRtmp(srv.rtmp_ports[1], host="::1")
    c6.handshake()
    assert c6.connect()[0] == "_result"
