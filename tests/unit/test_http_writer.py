"""ResponseWriter framing on a fake socket: exact bytes, one sendmsg per batch, partial sends."""

import pytest

from srspy import SERVER
from srspy.errors import SrsError
from srspy.http.message import HttpHeaders
from srspy.http.writer import ResponseWriter, detect_content_type


class FakeSocket:
    """Records what is sent; ``limit`` bytes at most per call (a kernel doing partial sends)."""

    def __init__(self, limit=None):
        self.limit = limit
        self.data = bytearray()
        self.calls = []  # number of iovecs per sendmsg call

    def sendmsg(self, bufs):
        bufs = list(bufs)
        self.calls.append(len(bufs))
        room = self.limit if self.limit is not None else 1 << 62
        sent = 0
        for b in bufs:
            b = bytes(b)[: room - sent]
            self.data += b
            sent += len(b)
            if sent >= room:
                break
        return sent

    def sendall(self, data):
        self.data += data


def split(raw: bytes):
    head, _, body = bytes(raw).partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    return lines[0], [tuple(x.split(": ", 1)) for x in lines[1:]], body


def test_header_names_are_normalized_and_keep_order():
    h = HttpHeaders()
    h["content-type"] = "video/x-flv"
    h.set("x-my-HEADER", "1")
    h.add("set-cookie", "a=1")
    h.add("Set-Cookie", "b=2")
    h["CONTENT-TYPE"] = "text/plain"
    assert list(h) == ["Content-Type", "X-My-Header", "Set-Cookie"]
    assert h["content-type"] == "text/plain" and h.get("missing") is None
    assert h.get_all("set-cookie") == ["a=1", "b=2"]
    assert list(h.pairs())[-2:] == [("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")]
    h.delete("x-my-header")
    assert "X-My-Header" not in h and len(h) == 2


def test_write_header_only_records_and_headers_go_with_first_write():
    sock = FakeSocket()
    w = ResponseWriter(sock)
    w.header()["Content-Type"] = "text/plain"
    w.header()["Content-Length"] = "5"
    w.write_header(201)
    assert sock.data == b"" and not w.header_sent and w.status == 201
    w.write(b"hello")
    assert sock.calls == [2]  # status line + headers and the body: one sendmsg
    assert bytes(sock.data) == (b"HTTP/1.1 201 Created\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n"
                                b"Server: " + SERVER.encode() + b"\r\nConnection: Keep-Alive\r\n\r\nhello")
    w.final_request()
    assert w.keep_alive and w.bytes_sent == len(sock.data)


def test_chunked_framing_exact_bytes():
    sock = FakeSocket()
    w = ResponseWriter(sock, close_header=True)
    w.header()["Content-Type"] = "video/x-flv"
    w.write_header(200)
    w.write(b"FLV\x01\x05\x00\x00\x00\x09")
    w.write(b"")  # an empty write is not the last chunk
    w.write(b"\x00" * 4)
    w.writev([b"ab", memoryview(b"cde"), b"f"])
    w.final_request()
    assert bytes(sock.data) == (
        b"HTTP/1.1 200 OK\r\nConnection: Close\r\nContent-Type: video/x-flv\r\nServer: " + SERVER.encode() +
        b"\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"9\r\nFLV\x01\x05\x00\x00\x00\x09\r\n" b"4\r\n\x00\x00\x00\x00\r\n" b"6\r\nabcdef\r\n" b"0\r\n\r\n")
    assert w.keep_alive  # SRS's Connection: Close does not end a keep-alive request


def test_writev_is_one_sendmsg_per_batch():
    sock = FakeSocket()
    w = ResponseWriter(sock)
    bufs = [b"x" * 11, b"payload" * 100, b"\x00\x00\x02\xcb"] * 30
    w.writev(bufs)  # the first one carries the headers too
    w.writev(bufs)
    assert sock.calls == [1 + 2 + 90, 2 + 90]
    _, headers, body = split(sock.data)
    assert ("Transfer-Encoding", "chunked") in headers
    size = sum(map(len, bufs))
    chunk = b"%x\r\n" % size + b"".join(bufs) + b"\r\n"
    assert body == chunk * 2


def test_writev_partial_sends_are_resumed():
    whole = FakeSocket()
    ResponseWriter(whole).writev([b"abc", b"", memoryview(b"defgh"), b"ij" * 50])
    for k in (1, 3, 7, 64):
        sock = FakeSocket(limit=k)
        w = ResponseWriter(sock)
        w.writev([b"abc", b"", memoryview(b"defgh"), b"ij" * 50])
        assert sock.data == whole.data
        assert len(sock.calls) >= len(whole.data) // k
        assert w.bytes_sent == len(whole.data)


def test_writev_splits_only_over_iov_max():
    sock = FakeSocket()
    w = ResponseWriter(sock)
    w.header()["Content-Length"] = "3000"
    w.writev([b"x"] * 1000)  # 1 + 1000 iovecs: one call
    w.writev([b"y"] * 2000)  # over 1024: split
    assert sock.calls[0] == 1001
    assert sum(sock.calls[1:]) == 2000 and max(sock.calls[1:]) <= 1024 and len(sock.calls) == 3
    assert split(sock.data)[2] == b"x" * 1000 + b"y" * 2000


def test_head_sends_headers_only():
    sock = FakeSocket()
    w = ResponseWriter(sock, is_head=True)
    w.header()["Content-Type"] = "video/x-flv"
    w.write(b"FLV...")
    w.writev([b"more"])
    w.final_request()
    status, headers, body = split(sock.data)
    assert status == "HTTP/1.1 200 OK" and body == b""
    assert sock.data.endswith(b"\r\n\r\n")


def test_final_request_without_body_sends_content_length_zero():
    sock = FakeSocket()
    w = ResponseWriter(sock)
    w.write_header(401)
    w.final_request()
    status, headers, body = split(sock.data)
    assert status == "HTTP/1.1 401 Unauthorized"
    assert ("Content-Length", "0") in headers and body == b""
    w.final_request()  # idempotent
    assert len(sock.calls) == 1


def test_final_request_keeps_chunked_when_asked():
    sock = FakeSocket()
    w = ResponseWriter(sock)
    w.header()["Transfer-Encoding"] = "chunked"
    w.final_request()
    assert sock.data.endswith(b"Transfer-Encoding: chunked\r\nServer: " + SERVER.encode() +
                              b"\r\nConnection: Keep-Alive\r\n\r\n0\r\n\r\n")


def test_server_header_not_overridden():
    sock = FakeSocket()
    w = ResponseWriter(sock)
    w.header()["Server"] = "mine"
    w.write(b"x")
    assert ("Server", "mine") in split(sock.data)[1]


def test_http10_without_length_closes_instead_of_chunking():
    sock = FakeSocket()
    w = ResponseWriter(sock, version="1.0")
    w.write(b"<html>hi</html>")
    w.final_request()
    _, headers, body = split(sock.data)
    assert body == b"<html>hi</html>" and not w.keep_alive
    assert ("Connection", "Close") in headers and ("Content-Type", "text/html; charset=utf-8") in headers


def test_body_over_content_length_is_an_error():
    w = ResponseWriter(FakeSocket())
    w.header()["Content-Length"] = "2"
    w.write(b"ab")
    with pytest.raises(SrsError):
        w.write(b"c")


def test_short_body_forces_close():
    w = ResponseWriter(FakeSocket())
    w.header()["Content-Length"] = "10"
    w.write(b"ab")
    w.final_request()
    assert not w.keep_alive


def test_handler_connection_close_ends_keep_alive():
    w = ResponseWriter(FakeSocket())
    w.header()["Connection"] = "close"
    w.final_request()
    assert not w.keep_alive


def test_second_write_header_is_ignored():
    w = ResponseWriter(FakeSocket())
    w.write_header(404)
    w.write_header(200)
    assert w.status == 404


@pytest.mark.parametrize("data, ctype", [
    (b"hello", "text/plain; charset=utf-8"),
    (b"<!DOCTYPE html><html>", "text/html; charset=utf-8"),
    (b"FLV\x01\x05", "video/x-flv"),
    (b"\x00\x01\xff", "application/octet-stream"),
])
def test_detect_content_type(data, ctype):
    assert detect_content_type(data) == ctype
