"""A player's protocol replies (ping responses) while its media write is blocked.

The player's recv side answers pings; the play side owns the media writes. A reply must
neither wait on the socket the blocked play side waits on, nor land inside a media
message that is only partly written: it goes out between messages, in order."""

import struct

import gevent
import pytest
from helpers.media import wait_published
from helpers.net import shrink_server_sndbuf
from helpers.rtmpraw import RawRtmp

from srspy.rtmp.message import UC_PING_REQUEST, UC_PING_RESPONSE, USER_CONTROL
from srspy.kernel.message import VIDEO, MediaMessage

pytestmark = pytest.mark.timeout(60)

AVC_SH = bytes([0x17, 0, 0, 0, 0, 1, 0x42, 0xC0, 0x1E, 0xFF, 0xE1, 0, 4, 0x67, 0x42, 0xC0, 0x1E, 1, 0, 4, 0x68, 0xCE, 0x3C, 0x80])
FRAME = 2000  # bytes: 25 frames a second fill 4 KiB buffers within the stall


def frame(i: int) -> bytes:
    return bytes([0x17 if i % 25 == 0 else 0x27, 1, 0, 0, 0]) + struct.pack(">I", i) * (FRAME // 4)


def feed(pub: RawRtmp, count: int):
    pub.send(MediaMessage(VIDEO, 0, 1, AVC_SH), 6)
    for i in range(count):
        pub.send(MediaMessage(VIDEO, 40 * i, 1, frame(i)), 6)
        gevent.sleep(0.04)


def test_ping_replies_while_the_media_write_waits(make_server):
    srv = make_server()
    port = srv.rtmp_ports[0]
    pub = RawRtmp(port)
    pub.handshake()
    pub.publish("big")
    feeder = gevent.spawn(feed, pub, 250)
    wait_published(srv, "/live/big")
    player = RawRtmp(port, timeout=20)
    player.handshake()
    player.play("big")
    assert shrink_server_sndbuf(srv, player.sock)
    cid = next(c for c, cl in srv.stat.clients.items() if cl.type == "rtmp-play")
    # stop reading for a second and ping meanwhile: the server's media write blocks
    pings = list(range(1000, 1010))
    for n in pings:
        player.send(MediaMessage(USER_CONTROL, 0, 0, struct.pack(">HI", UC_PING_REQUEST, n)), 2)
        gevent.sleep(0.1)
    frames, pongs = [], []
    deadline = gevent.time.time() + 20
    while len(frames) < 80 or len(pongs) < len(pings):
        assert gevent.time.time() < deadline, f"{len(frames)} frames, pongs {pongs}"
        for m in player.read():
            if m.type == VIDEO and m.payload[1] == 1:
                frames.append(struct.unpack(">I", m.payload[5:9])[0])
                assert m.payload == frame(frames[-1])  # whole and unmixed
            elif m.type == USER_CONTROL and struct.unpack(">H", m.payload[:2])[0] == UC_PING_RESPONSE:
                pongs.append(struct.unpack(">I", m.payload[2:6])[0])
    assert pongs == pings
    assert frames == list(range(frames[0], frames[0] + len(frames)))  # no gap, no repeat
    assert cid in srv.conns  # the player is still served
    player.close()
    feeder.kill()
    pub.close()
