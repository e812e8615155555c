"""Writes that never wait (the publisher's side writing for a parked player), on real
loopback TCP sockets with small buffers: the kernel takes part of a batch, the rest is
kept and goes out first on the owner's next send, and the reader gets every byte in order.
Also the cooperative ``os.sendfile`` of static files (netio.sendfile_all) on such sockets:
it waits for room instead of failing, lets other greenlets run meanwhile, and honours the
socket's timeout."""

import os
import socket as stdsocket

import gevent
import pytest
from gevent import socket

from srspy.http.writer import ResponseWriter
from srspy.netio import send_nowait, sendfile_all
from srspy.rtmp.chunk import ChunkDecoder
from srspy.kernel.message import AUDIO, VIDEO, MediaMessage
from srspy.rtmp.protocol import RtmpProtocol

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def tcp_pair():
    """(server side, client side) of a loopback TCP connection; the server side has a
    small send buffer and the client a small receive buffer, so sends fill them fast."""
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)
    client = socket.socket()
    client.setsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_RCVBUF, 4096)
    client.connect(lsock.getsockname())
    server, _ = lsock.accept()
    lsock.close()
    server.setsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_SNDBUF, 4096)
    client.settimeout(10)  # a missing byte fails the read, not the whole test's timeout
    yield server, client
    server.close()
    client.close()


def read_to_eof(sock) -> bytes:
    out = bytearray()
    while True:
        data = sock.recv(65536)
        if not data:
            return bytes(out)
        out += data


def read_all(sock, n: int) -> bytes:
    out = bytearray()
    while len(out) < n:
        data = sock.recv(65536)
        assert data, f"eof after {len(out)} of {n} bytes"
        out += data
    return bytes(out)


def test_send_nowait_returns_the_rest_when_the_kernel_is_full(tcp_pair):
    server, client = tcp_pair
    header = bytearray(b"H" * 15)
    payload = os.urandom(3 << 20)  # far more than both buffers hold
    sent, rest = send_nowait(server, [header, payload], len(header) + len(payload))
    assert 0 < sent < len(header) + len(payload)
    assert rest is not None and len(rest) == 1
    assert sent + len(rest[0]) == len(header) + len(payload)
    header[:] = b"X" * 15  # the caller reuses its header buffer: the rest is a copy
    reader = gevent.spawn(read_all, client, len(header) + len(payload))
    server.sendall(rest[0])
    assert reader.get(timeout=20) == b"H" * 15 + payload


def test_send_nowait_sends_everything_when_there_is_room(tcp_pair):
    server, client = tcp_pair
    assert send_nowait(server, [b"ab", memoryview(b"cdef")[1:]], 5) == (5, None)
    assert read_all(client, 5) == b"abdef"


def test_send_nowait_keeps_errors_for_the_owner():
    a, b = socket.socketpair()
    b.close()
    sent, rest = send_nowait(a, [b"x" * 10], 10)
    assert sent == 0 and b"".join(rest) == b"x" * 10
    with pytest.raises(OSError):
        a.sendmsg(rest)
    a.close()


def test_try_send_body_keeps_chunk_framing_across_a_partial_send(tcp_pair):
    server, client = tcp_pair
    w = ResponseWriter(server)
    w.header()["Content-Type"] = "video/x-flv"
    w.write(b"FLV")  # headers + first chunk, blocking
    bodies = [os.urandom(700_000), os.urandom(500_000), os.urandom(10)]
    results = [w.try_send_body(*w.chunk_iov([memoryview(b)], len(b)), len(b)) for b in bodies]
    assert results[0] is False  # did not fit: kept
    assert w.backlog is not None
    assert results[1] is False and results[2] is False  # queued behind it, in order
    reader = gevent.spawn(read_to_eof, client)  # drain while the owner flushes
    w.flush()
    assert w.backlog is None
    w.final_request()
    server.shutdown(stdsocket.SHUT_WR)
    got = reader.get(timeout=20)
    body = got[got.index(b"\r\n\r\n") + 4:]
    expect = b"3\r\nFLV\r\n" + b"".join(b"%x\r\n%s\r\n" % (len(b), b) for b in bodies) + b"0\r\n\r\n"
    assert body == expect
    assert w.bytes_sent == len(got)


def test_try_send_iov_then_flush_keeps_the_chunk_stream_whole(tcp_pair):
    server, client = tcp_pair
    proto = RtmpProtocol(server)
    proto.out_chunk_size = 4096
    msgs = [MediaMessage(VIDEO if i % 2 else AUDIO, 40 * i, 1, os.urandom(9000 + i)) for i in range(200)]
    ok = [proto.try_send_iov(*proto.pack_media(msgs[i:i + 20], 0, 1)) for i in range(0, 200, 20)]
    assert ok[0] is False and proto.backlog is not None  # ~1.8 MB cannot fit
    assert not any(ok[1:])  # later batches queue behind the first
    total = proto.send_bytes + sum(len(b) for b in proto.backlog)
    reader = gevent.spawn(read_all, client, total)
    proto.flush()
    assert proto.backlog is None and proto.send_bytes == total
    dec = ChunkDecoder()
    dec.set_chunk_size(4096)
    got = dec.feed(reader.get(timeout=20))
    assert [(m.type, m.timestamp, bytes(m.payload)) for m in got] == [(m.type, m.timestamp, m.payload) for m in msgs]


def test_send_nowait_copies_what_it_could_not_send_at_all(tcp_pair):
    server, client = tcp_pair
    filler = os.urandom(1 << 16)
    for _ in range(1000):  # fill both buffers until the kernel takes nothing
        sent, rest = send_nowait(server, [filler], len(filler))
        if sent == 0:
            break
    assert sent == 0, "the kernel kept taking data"
    header = bytearray(b"h" * 12)
    sent, rest = send_nowait(server, [header, b"payload"], 19)
    assert sent == 0
    header[:] = b"Z" * 12  # reused by the caller for its next batch
    assert rest == [b"h" * 12 + b"payload"]
    many = [b"x"] * 2000  # more iovecs than one sendmsg takes
    assert send_nowait(server, many, 2000) == (0, [b"x" * 2000])


class CountingSocket:
    """The server side of a pair, counting the calls that write."""

    def __init__(self, sock):
        self.sock = sock
        self.sendmsg_calls = []
        self.sendall_calls = 0

    def sendmsg(self, bufs, *args):
        self.sendmsg_calls.append(len(bufs))
        return self.sock.sendmsg(bufs, *args)

    def sendall(self, data):
        self.sendall_calls += 1
        return self.sock.sendall(data)


def test_a_batch_of_messages_goes_out_in_one_send(tcp_pair):
    from srspy.kernel import amf0
    from srspy.rtmp.protocol import set_chunk_size_msg, window_ack_size_msg

    server, client = tcp_pair
    counting = CountingSocket(server)
    proto = RtmpProtocol(counting)
    with proto.batch():
        proto.send_message(window_ack_size_msg(2500000))
        proto.send_message(set_chunk_size_msg(60000))
        proto.send_command("_result", 1.0, {"fmsVer": "FMS/3,5,3,888"}, {"code": "NetConnection.Connect.Success"})
        assert counting.sendmsg_calls == [] and proto.send_bytes == 0
    assert counting.sendmsg_calls == [3] and counting.sendall_calls == 0
    assert proto.out_chunk_size == 60000
    proto.send_command("onBWDone", 0.0, None)  # after the batch: on its own, at the new chunk size
    assert counting.sendmsg_calls == [3, 1] and counting.sendall_calls == 0
    got = ChunkDecoder().feed(read_all(client, proto.send_bytes))
    assert [m.type for m in got] == [5, 1, 20, 20]
    assert [amf0.decode_all(m.payload)[0] for m in got[2:]] == ["_result", "onBWDone"]


def test_media_inside_a_batch_keeps_its_headers(tcp_pair):
    from srspy.rtmp.protocol import command_msg

    server, client = tcp_pair
    counting = CountingSocket(server)
    proto = RtmpProtocol(counting)
    proto.out_chunk_size = 4096
    first = [MediaMessage(VIDEO, 40 * i, 1, os.urandom(5000 + i)) for i in range(5)]
    second = [MediaMessage(AUDIO, 7 + i, 1, os.urandom(100 + i)) for i in range(5)]
    reader = gevent.spawn(read_to_eof, client)
    with proto.batch():
        proto.send_message(command_msg("onStatus", 0.0, None, {"code": "NetStream.Play.Start"}, stream_id=1))
        proto.send_media(first, 0)
        proto.send_media(second, 0)  # packs into the same header buffer as the first batch
    server.shutdown(stdsocket.SHUT_WR)
    assert len(counting.sendmsg_calls) >= 1 and counting.sendall_calls == 0  # one call, resumed if cut
    dec = ChunkDecoder()
    dec.set_chunk_size(4096)
    data = reader.get(timeout=10)
    assert len(data) == proto.send_bytes
    got = dec.feed(data)
    assert [(m.type, m.timestamp, bytes(m.payload)) for m in got[1:]] == \
        [(m.type, m.timestamp, m.payload) for m in first + second]


@pytest.fixture
def big_file(tmp_path):
    data = os.urandom(3 * 1024 * 1024 + 17)
    path = tmp_path / "segment.ts"
    path.write_bytes(data)
    with open(path, "rb") as f:
        yield f, data


def test_sendfile_all_waits_for_room_and_sends_every_byte(tcp_pair, big_file):
    server, client = tcp_pair
    f, data = big_file
    ticks = []
    ticker = gevent.spawn(lambda: [ticks.append(gevent.sleep(0.001)) for _ in range(20)])
    reader = gevent.spawn(read_all, client, len(data) - 1000)
    assert sendfile_all(server, f, 1000, len(data) - 1000) == len(data) - 1000
    assert reader.get(timeout=20) == data[1000:]
    ticker.join(timeout=5)
    assert len(ticks) == 20  # the 4 kB buffers made it wait, and others ran meanwhile


def test_sendfile_all_stops_at_the_end_of_a_shorter_file(tcp_pair, big_file):
    server, client = tcp_pair
    f, data = big_file
    reader = gevent.spawn(read_to_eof, client)
    assert sendfile_all(server, f, len(data) - 10, 1000) == 10
    server.shutdown(stdsocket.SHUT_WR)
    assert reader.get(timeout=20) == data[-10:]


def test_sendfile_all_honours_the_socket_timeout(tcp_pair, big_file):
    server, _client = tcp_pair  # nobody reads
    f, data = big_file
    server.settimeout(0.3)
    with pytest.raises(stdsocket.timeout):
        sendfile_all(server, f, 0, len(data))


@pytest.mark.parametrize("size", [5000, 200_000])  # read and sent with the headers; os.sendfile after them
def test_response_writer_sendfile_sends_headers_then_the_range(tcp_pair, big_file, size):
    server, client = tcp_pair
    f, data = big_file
    w = ResponseWriter(server)
    w.header()["Content-Length"] = str(size)
    w.write_header(200)
    reader = gevent.spawn(read_all, client, size)
    w.sendfile(f, 123, size)
    w.final_request()
    assert w.body_sent == size and w.bytes_sent > size and w.keep_alive
    got = reader.get(timeout=20)
    head, _, body = got.partition(b"\r\n\r\n")
    body += read_all(client, size - len(body))
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and f"Content-Length: {size}".encode() in head
    assert body == data[123:123 + size]


@pytest.mark.parametrize("size", [5000, 200_000])
def test_response_writer_sendfile_of_a_shorter_file_ends_the_connection(tcp_pair, big_file, size):
    server, client = tcp_pair
    f, data = big_file
    w = ResponseWriter(server)
    w.header()["Content-Length"] = str(size)
    w.write_header(200)
    reader = gevent.spawn(read_to_eof, client)
    w.sendfile(f, len(data) - 100, size)
    w.final_request()
    assert w.body_sent == 100 and not w.keep_alive  # only a close can tell the client
    server.shutdown(stdsocket.SHUT_WR)
    assert reader.get(timeout=20).endswith(data[-100:])
