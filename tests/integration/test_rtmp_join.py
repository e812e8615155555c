"""The RTMP join path: replies kept across connections, batches shared by players that
catch up together, the set-up deadline and the recv side started on demand."""

import gevent
import pytest
from helpers.media import wait_until
from helpers.rtmpraw import RawRtmp

from srspy.kernel import amf0
from srspy.app import rtmp_conn
from srspy.rtmp.chunk import ChunkDecoder
from srspy.rtmp.message import SET_CHUNK_SIZE, SET_PEER_BANDWIDTH, USER_CONTROL, WINDOW_ACK_SIZE
from srspy.kernel.message import AMF0_COMMAND, AMF0_DATA, AUDIO, VIDEO, MediaMessage
from srspy.rtmp.packer import RtmpChunkPacker, SharedPacks

pytestmark = pytest.mark.timeout(60)


def _u32(b: bytes) -> int:
    return int.from_bytes(b[:4], "big")


def _join(port: int, tid: float, stream: str = "s") -> tuple:
    """Connect (transaction ``tid``), createStream, play; return the connect reply messages
    and the play reply messages, decoded."""
    c = RawRtmp(port)
    c.handshake()
    c.command("connect", tid, {"app": "live", "tcUrl": "rtmp://127.0.0.1/live", "objectEncoding": 0.0})
    c.until_command("onBWDone")
    connect_reply = list(c.msgs)
    c.msgs.clear()
    c.command("createStream", tid + 1, None)
    c.until_command("_result")
    c.msgs.clear()
    c.command("play", 0.0, None, stream, -2.0, stream_id=1)
    while not any(m.type == AMF0_DATA for m in c.msgs):
        c.read()
    return c, connect_reply, list(c.msgs)


def _check_connect_reply(msgs: list, tid: float, cid: str):
    assert [m.type for m in msgs] == [WINDOW_ACK_SIZE, SET_PEER_BANDWIDTH, SET_CHUNK_SIZE, AMF0_COMMAND, AMF0_COMMAND]
    assert _u32(msgs[0].payload) == 2500000
    assert _u32(msgs[1].payload) == 2500000 and msgs[1].payload[4] == 2
    assert _u32(msgs[2].payload) == 60000
    name, got_tid, props, info = amf0.decode_all(msgs[3].payload)
    assert (name, got_tid) == ("_result", tid)
    assert props == {"fmsVer": "FMS/3,5,3,888", "capabilities": 127.0, "mode": 1.0}
    assert info["code"] == "NetConnection.Connect.Success" and info["objectEncoding"] == 0.0
    assert info["data"]["srs_id"] == cid
    assert info["data"]["srs_server_ip"] == "127.0.0.1"
    assert list(info["data"])[-1] == "srs_id"
    assert amf0.decode_all(msgs[4].payload) == ["onBWDone", 0.0, None]


def test_replies_kept_across_connections_are_each_connections_own(make_server):
    srv = make_server()
    port = srv.rtmp_ports[0]
    joined = []
    for tid in (1.0, 7.0, 1.0):
        before = set(srv.conns)
        c, connect_reply, play_reply = _join(port, tid)
        (cid,) = set(srv.conns) - before
        joined.append(c)
        _check_connect_reply(connect_reply, tid, cid)
        assert [m.type for m in play_reply] == [USER_CONTROL, AMF0_COMMAND, AMF0_COMMAND, AMF0_DATA]
        assert play_reply[0].payload == b"\x00\x00\x00\x00\x00\x01"  # StreamBegin 1
        reset, start = (amf0.decode_all(m.payload) for m in play_reply[1:3])
        assert reset[0] == "onStatus" and reset[3]["code"] == "NetStream.Play.Reset"
        assert start[3]["code"] == "NetStream.Play.Start" and start[3]["details"] == "stream"
        assert [m.stream_id for m in play_reply] == [0, 1, 1, 1]
        assert amf0.decode_all(play_reply[3].payload) == ["|RtmpSampleAccess", True, True]
    for c in joined:
        c.close()


def test_shared_packs_are_the_packers_bytes_and_shared():
    msgs = [MediaMessage(VIDEO, 1000 + i * 33, 1, bytes([0x17 if i == 0 else 0x27, 1]) + bytes(range(256)) * (40 if i == 0 else 3))
            for i in range(8)] + [MediaMessage(AUDIO, 1010, 1, b"\xaf\x01" + b"a" * 300)]
    packs = SharedPacks(limit=4)
    bufs, size = packs.pack(msgs, 1000, 4096, 1)
    again, size2 = packs.pack(list(msgs), 1000, 4096, 1)  # another player's dump: an equal list
    assert again is bufs and size2 == size
    own: list = []
    assert RtmpChunkPacker(1).iovecs(msgs, 1000, 4096, own) == size
    wire = b"".join(bytes(b) for b in bufs)
    assert wire == b"".join(bytes(b) for b in own) and len(wire) == size
    dec = ChunkDecoder()
    dec.feed(b"\x02\x00\x00\x00\x00\x00\x04\x01\x00\x00\x00\x00" + (4096).to_bytes(4, "big"))  # Set Chunk Size
    got = dec.feed(wire)
    assert [(m.type, m.timestamp, m.payload) for m in got] == [
        (m.type, m.timestamp - 1000 if m.type in (VIDEO, AUDIO) else 0, m.payload) for m in msgs]
    other, _ = packs.pack(msgs, 900, 4096, 1)  # another base: other timestamps
    assert other is not bufs
    for i in range(4):
        packs.pack(msgs[i:], 1000, 4096, 1)
    assert len(packs.entries) == 4  # bounded


def test_shared_catch_up_reaches_every_player_intact(make_server):
    """Players joining together share the chunks of their catch-up writes; each still gets
    every message of the GOP with its own stream's timestamps."""
    srv = make_server()
    port = srv.rtmp_ports[0]
    pub = RawRtmp(port)
    pub.handshake()
    pub.publish("gop")
    sh = bytes([0x17, 0, 0, 0, 0, 1, 0x42, 0xC0, 0x1E, 0xFF, 0xE1, 0, 4, 0x67, 0x42, 0xC0, 0x1E, 1, 0, 4, 0x68, 0xCE, 0x3C, 0x80])
    pub.send(MediaMessage(VIDEO, 0, 1, sh), 6)
    sent = []
    for i in range(60):  # one GOP: a keyframe, then 59 frames
        body = bytes([0x17 if i == 0 else 0x27, 1, 0, 0, 0]) + bytes([i]) * (3000 + i)
        pub.send(MediaMessage(VIDEO, 100 + i * 40, 1, body), 6)
        sent.append(body)
    wait_until(lambda: srv.sources.sources["/live/gop"].frames >= 60, 5, what="the GOP in the source")
    players = [_join(port, 1.0, "gop")[0] for _ in range(5)]
    stamps = []
    for p in players:
        while sum(1 for m in p.msgs if m.type == VIDEO and m.payload[1] == 1) < 60:
            p.read()
        frames = [m for m in p.msgs if m.type == VIDEO and m.payload[1] == 1]
        assert [m.payload for m in frames] == sent
        ts = [m.timestamp for m in frames]
        assert [b - a for a, b in zip(ts, ts[1:])] == [40] * 59
        stamps.append(ts)
        p.close()
    assert all(ts == stamps[0] for ts in stamps)  # one timeline: the base of the same keyframe
    pub.close()


def test_setup_deadline_closes_a_silent_client(make_server, monkeypatch):
    monkeypatch.setattr(rtmp_conn, "RTMP_TIMEOUT", 1.0)
    srv = make_server("limits { idle_timeout 1; }")
    port = srv.rtmp_ports[0]
    silent = RawRtmp(port)  # connects, never sends C0C1
    slow = RawRtmp(port)
    slow.handshake()  # then never sends connect
    t0 = gevent.time.time()
    assert silent.closed_within(4.0) and slow.closed_within(4.0)
    assert 0.8 < gevent.time.time() - t0 < 3.5
    c, connect_reply, _ = _join(port, 1.0)  # others are served as ever
    assert connect_reply[3].type == AMF0_COMMAND
    c.close()
    wait_until(lambda: not srv.conns, 3, what="every connection gone")


def test_a_client_over_a_unix_socket(make_server):
    """An embedding application may hand the server any stream socket: over a Unix socket
    the connect reply has no server address, and the session goes on."""
    import socket

    srv = make_server()
    ours, theirs = socket.socketpair()
    g = gevent.spawn(srv._handle_rtmp, ours, ("unix", 0))
    c = RawRtmp(sock=theirs)
    c.handshake()
    c.connect()
    result = next(amf0.decode_all(m.payload) for m in c.msgs if m.type == AMF0_COMMAND and amf0.decode_all(m.payload)[0] == "_result")
    assert result[3]["code"] == "NetConnection.Connect.Success"
    assert result[3]["data"]["srs_server_ip"] == ""
    c.command("createStream", 2.0, None)
    assert c.until_command("_result")[3] == 1.0
    c.close()
    g.join(5)
    assert g.dead
