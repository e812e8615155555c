"""RTMP client sessions against the in-process server and small fake servers."""

import socket
import struct
import time

import gevent
import gevent.event
import pytest
from gevent.server import StreamServer

from helpers.media import wait_until
from helpers.relay import assert_same_from_keyframe, wait_frames_from_keyframe
from srspy.client import open_pull
from srspy.client.flvfile import read_flv_file
from srspy.client.rtmp import RtmpClientError, RtmpPullSession, RtmpPushSession
from srspy.client.session import CLOSED, DISPOSED, ERROR, ConnectError, SessionDisposed
from srspy.errors import ClientClosed, Timeout
from srspy.rtmp.message import ACKNOWLEDGEMENT, UC_PING_REQUEST, UC_PING_RESPONSE, USER_CONTROL
from srspy.kernel.message import AUDIO, MediaMessage
from srspy.rtmp.protocol import user_control_msg, window_ack_size_msg
from srspy.request import Request
from srspy.rtmp.server import RtmpServer

pytestmark = pytest.mark.timeout(60)


def url(srv, path="/live/s"):
    return f"rtmp://127.0.0.1:{srv.rtmp_ports[0]}{path}"


def av(items):
    """(type, timestamp, payload) of the audio/video among FlvTags or RtmpMessages."""
    out = []
    for it in items:
        t, ts, p = (it[0], it[1], it[2]) if isinstance(it, tuple) else (it.type, it.timestamp, it.payload)
        if t in (8, 9):
            out.append((t, ts, bytes(p)))
    return out


def test_push_then_pull_every_tag_and_timestamp(make_server, short_flv):
    srv = make_server()
    pull = RtmpPullSession(url(srv, "/live/s?token=1"), read_timeout=10).start()
    assert pull.unique_key.startswith("RTMPPULL") and pull.stream_id >= 1
    assert [s["code"] for s in pull.statuses][-1] == "NetStream.Play.Start"
    got = []
    reader = gevent.spawn(lambda: got.extend(pull))
    push = RtmpPushSession(url(srv), write_timeout=10).start()
    assert push.unique_key.startswith("RTMPPUSH") and push.statuses[-1]["code"] == "NetStream.Publish.Start"
    tags = list(read_flv_file(short_flv))
    for t in tags:
        push.write_flv_tag(t)
    want = av(tags)
    wait_until(lambda: len(av(got)) >= len(want), 15, what="every tag")
    assert av(got) == want
    assert got[0].type == 18 and b"onMetaData" in got[0].payload  # metadata first, @setDataFrame unwrapped
    push.dispose()
    assert push.wait(5).reason == DISPOSED
    pull.dispose()
    pull.dispose()  # idempotent
    assert pull.wait(5).reason == DISPOSED
    reader.join(5)
    assert reader.dead
    st = push.get_stat()
    assert st.wrote_bytes > sum(len(t.payload) for t in tags) and st.read_bytes > 3073
    assert pull.get_stat().read_bytes > st.wrote_bytes - 10_000
    assert pull.remote_addr == f"127.0.0.1:{srv.rtmp_ports[0]}"


def test_flash_publish_complex_handshake_and_buffered_writes(make_server, short_flv):
    srv = make_server()
    got = []
    pull = RtmpPullSession(url(srv), got.append, complex_handshake=True).start()
    assert pull.handshake_complex  # srspy answers the digest handshake
    push = RtmpPushSession(url(srv), fmle=False, write_buffer=256 * 1024, complex_handshake=True).start()
    assert push.handshake_complex
    tags = list(read_flv_file(short_flv))
    for t in tags[:50]:
        push.write_flv_tag(t.encode())  # raw tag bytes are accepted too
    gevent.sleep(0.3)
    assert not got or all(m.type != AUDIO for m in got[3:])  # still buffered
    push.flush()
    wait_until(lambda: len(av(got)) >= len(av(tags[:50])), 10, what="flushed tags")
    assert av(got) == av(tags[:50])
    push.dispose()
    pull.dispose()


def test_pull_from_srspy_while_publishing_matches_from_keyframe(make_server, short_flv, procs):
    from helpers.media import publish_args, wait_published

    srv = make_server()
    procs(publish_args(short_flv, url(srv), loop=True))
    wait_published(srv)
    gevent.sleep(1.0)
    got = []
    pull = open_pull(url(srv), got.append, read_timeout=5).start()
    wait_frames_from_keyframe(got)
    pull.dispose()
    assert_same_from_keyframe(list(read_flv_file(short_flv)), got)


def test_second_publisher_is_refused_with_the_status(make_server):
    srv = make_server()
    a = RtmpPushSession(url(srv)).start()
    with pytest.raises(RtmpClientError) as ei:
        RtmpPushSession(url(srv)).start()
    assert ei.value.status_code == "NetStream.Publish.BadName"
    assert "busy" in str(ei.value)
    a.dispose()


def test_connection_refused_fails_at_once():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    push = RtmpPushSession(f"rtmp://127.0.0.1:{port}/live/s", start_timeout=5)
    t0 = time.monotonic()
    with pytest.raises(ConnectError):
        push.start()
    assert time.monotonic() - t0 < 2
    assert push.wait(1).reason == ERROR


def _silent_server():
    conns = []

    def handle(sock, addr):
        conns.append(sock)
        gevent.sleep(30)

    s = StreamServer(("127.0.0.1", 0), handle)
    s.start()
    return s


def test_start_timeout_when_the_server_never_answers():
    s = _silent_server()
    try:
        pull = RtmpPullSession(f"rtmp://127.0.0.1:{s.server_port}/live/s", start_timeout=0.5)
        t0 = time.monotonic()
        with pytest.raises(Timeout, match="start timeout"):
            pull.start()
        assert 0.4 < time.monotonic() - t0 < 2
        end = pull.wait(1)
        assert end.reason == ERROR and isinstance(end.error, Timeout)
    finally:
        s.stop(timeout=1)


def test_dispose_while_starting_from_another_greenlet():
    s = _silent_server()
    try:
        pull = RtmpPullSession(f"rtmp://127.0.0.1:{s.server_port}/live/s", start_timeout=10)
        gevent.spawn_later(0.3, pull.dispose)
        t0 = time.monotonic()
        with pytest.raises(SessionDisposed):
            pull.start()
        assert time.monotonic() - t0 < 2
        assert pull.wait(1).reason == DISPOSED
    finally:
        s.stop(timeout=1)


def test_read_timeout_when_nothing_is_published(make_server):
    srv = make_server()
    pull = RtmpPullSession(url(srv, "/live/none"), read_timeout=0.5).start()
    t0 = time.monotonic()
    assert pull.read() is None
    assert 0.4 < time.monotonic() - t0 < 3
    end = pull.wait(1)
    assert end.reason == ERROR and "read timeout" in str(end.error)


def test_peer_close_ends_the_session_as_closed(make_server):
    srv = make_server()
    pull = RtmpPullSession(url(srv), lambda m: None).start()  # a callback: the session reads by itself
    push = RtmpPushSession(url(srv)).start()
    for conn in list(srv.conns.values()):
        conn.expire()
    assert pull.wait(5).reason == CLOSED
    assert push.wait(5).reason == CLOSED
    with pytest.raises(ClientClosed):
        push.write(MediaMessage(AUDIO, 0, 1, b"\xaf\x01\x00"))


def test_pull_answers_pings_and_acknowledges_by_window():
    """A fake server: play, then a ping request, a 20 000-byte window and 100 kB of audio."""
    seen = {"pong": None, "acks": []}
    done = gevent.event.Event()

    def handle(sock, addr):
        rtmp = RtmpServer(sock)
        try:
            sock.settimeout(10)
            rtmp.handshake()
            req = rtmp.connect_app(Request())
            rtmp.response_connect_app(req, out_ack_size=2500000, in_ack_size=0, chunk_size=4096)
            rtmp.identify_client()
            rtmp.start_play()
            p = rtmp.proto
            orig = p.on_control

            def on_control(m):
                if m.type == ACKNOWLEDGEMENT:
                    seen["acks"].append(struct.unpack(">I", m.payload)[0])
                orig(m)

            p.on_control = on_control
            p.send_message(window_ack_size_msg(20000))
            p.send_message(user_control_msg(UC_PING_REQUEST, 1234))
            for k in range(5):  # 5 x 20 kB, apart: the client reads (and acknowledges) several times
                p.send_media([MediaMessage(AUDIO, i * 23, 1, b"\xaf\x01" + bytes(998)) for i in range(k * 20, k * 20 + 20)], 0, 1)
                gevent.sleep(0.1)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and (seen["pong"] is None or len(seen["acks"]) < 3):
                for m in p.read_some():
                    if m.type == USER_CONTROL and struct.unpack(">H", m.payload[:2])[0] == UC_PING_RESPONSE:
                        seen["pong"] = struct.unpack(">I", m.payload[2:6])[0]
        finally:
            done.set()
            gevent.sleep(1)
            sock.close()

    s = StreamServer(("127.0.0.1", 0), handle)
    s.start()
    try:
        got = []
        pull = RtmpPullSession(f"rtmp://127.0.0.1:{s.server_port}/live/s", got.append).start()
        done.wait(10)
        assert seen["pong"] == 1234
        assert len(seen["acks"]) >= 3 and seen["acks"] == sorted(seen["acks"]) and seen["acks"][0] >= 20000
        wait_until(lambda: len(got) == 100, 5, what="100 audio messages")
        assert [m.timestamp for m in got] == [i * 23 for i in range(100)]
        pull.dispose()
    finally:
        s.stop(timeout=1)


def test_connect_rejected_is_a_clear_error(make_server):
    srv = make_server(text="""
listen 0; daemon off; srs_log_level warn;
vhost allowed.example { }
""")
    with pytest.raises((RtmpClientError, ClientClosed)) as ei:
        RtmpPushSession(url(srv)).start()
    assert "vhost" in str(ei.value) or isinstance(ei.value, ClientClosed)
