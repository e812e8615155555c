"""HTTP-FLV pull session: small gevent test servers for each way a response can go, and srspy."""

import shutil
import ssl
import time

import gevent
import pytest
from gevent import ssl as gssl
from gevent import subprocess
from gevent.server import StreamServer

from helpers.media import wait_until
from srspy.client.flvfile import read_flv_file
from srspy.client.httpflv import HttpFlvPullSession, HttpStatusError, TooManyRedirects, make_ssl_context
from srspy.client.rtmp import RtmpPushSession
from srspy.client.session import CLOSED, ERROR
from srspy.client.url import UrlError
from srspy.errors import ProtocolError, Timeout
from srspy.kernel.flv import encode_tag, flv_header

pytestmark = pytest.mark.timeout(60)

TAGS = [(18, 0, b"\x02\x00\x0aonMetaData\x08\x00\x00\x00\x00\x00\x00\x09"),
        (8, 0, b"\xaf\x00\x12\x10"),
        (9, 0, b"\x17\x00\x00\x00\x00\x01\x64\x00\x1f"),
        (9, 40, b"\x17\x01\x00\x00\x00" + bytes(3000)),
        (8, 23, b"\xaf\x01" + bytes(300)),
        (9, 80, b"\x27\x01\x00\x00\x00" + bytes(900))]
BODY = flv_header(True, True) + b"".join(encode_tag(*t) for t in TAGS)


class FakeServer:
    """A gevent server whose ``route(path) -> (status, headers, body or callable)`` answers."""

    def __init__(self, route, ssl_args=None):
        self.route = route
        self.requests = []
        kw = dict(ssl_args) if ssl_args else {}
        self.server = StreamServer(("127.0.0.1", 0), self.handle, **kw)
        self.server.start()
        self.port = self.server.server_port

    def handle(self, sock, addr):
        data = b""
        sock.settimeout(5)
        try:
            while b"\r\n\r\n" not in data:
                d = sock.recv(4096)
                if not d:
                    return
                data += d
        except OSError:
            return
        head = data.split(b"\r\n\r\n")[0].decode()
        self.requests.append(head)
        path = head.split()[1]
        answer = self.route(path)
        if answer is None:  # never answer
            gevent.sleep(30)
            return
        status, headers, body = answer
        out = f"HTTP/1.1 {status} X\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        try:
            sock.sendall(out.encode())
            if callable(body):
                body(sock)
            else:
                sock.sendall(body)
        except OSError:
            pass
        finally:
            try:
                sock.close()
            except OSError:
                pass

    def stop(self):
        self.server.stop(timeout=1)


@pytest.fixture
def serve():
    servers = []

    def make(route, ssl_args=None):
        s = FakeServer(route, ssl_args)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.stop()


def tags_of(msgs):
    return [(m.type, m.timestamp, m.payload) for m in msgs]


def test_close_delimited_body_and_request_head(serve):
    s = serve(lambda path: (200, {"Content-Type": "video/x-flv"}, BODY))
    pull = HttpFlvPullSession(f"http://127.0.0.1:{s.port}/live/s.flv?token=a%20b").start()
    assert pull.status == 200 and pull.headers["content-type"] == "video/x-flv"
    msgs = list(pull)
    assert tags_of(msgs) == TAGS
    assert pull.flv_header == (True, True)
    assert pull.wait(1).reason == CLOSED
    head = s.requests[0].split("\r\n")
    assert head[0] == "GET /live/s.flv?token=a%20b HTTP/1.1"
    assert f"Host: 127.0.0.1:{s.port}" in head
    assert pull.unique_key.startswith("FLVPULL") and pull.get_stat().read_bytes > len(BODY)


def test_chunked_body_split_across_tags(serve):
    def body(sock):
        for i in range(0, len(BODY), 7):  # chunks that cut tags and headers anywhere
            part = BODY[i:i + 7]
            sock.sendall(f"{len(part):x}\r\n".encode() + part + b"\r\n")
        sock.sendall(b"0\r\n\r\n")
        gevent.sleep(5)  # keep the connection: the final chunk alone ends the body

    s = serve(lambda path: (200, {"Transfer-Encoding": "chunked"}, body))
    t0 = time.monotonic()
    pull = HttpFlvPullSession(f"http://127.0.0.1:{s.port}/live/s.flv").start()
    assert tags_of(list(pull)) == TAGS
    assert time.monotonic() - t0 < 3
    assert pull.wait(1).reason == CLOSED


def test_content_length_body(serve):
    s = serve(lambda path: (200, {"Content-Length": str(len(BODY))}, BODY))
    got = []
    pull = HttpFlvPullSession(f"http://127.0.0.1:{s.port}/live/s.flv", got.append).start()
    assert pull.wait(5).reason == CLOSED
    assert tags_of(got) == TAGS


def test_redirect_302_to_another_path_is_followed(serve):
    def route(path):
        if path.startswith("/live/s.flv"):
            return 302, {"Location": "/edge/s.flv?from=302", "Content-Length": "0"}, b""
        if path == "/edge/s.flv?from=302":
            return 200, {}, BODY
        return 404, {"Content-Length": "0"}, b""

    s = serve(route)
    pull = HttpFlvPullSession(f"http://127.0.0.1:{s.port}/live/s.flv").start()
    assert pull.final_url == f"http://127.0.0.1:{s.port}/edge/s.flv?from=302"
    assert pull.redirects == [pull.final_url]
    assert tags_of(list(pull)) == TAGS
    assert [r.split()[1] for r in s.requests] == ["/live/s.flv", "/edge/s.flv?from=302"]


def test_redirect_to_another_server(serve):
    b = serve(lambda path: (200, {}, BODY))
    a = serve(lambda path: (301, {"Location": f"http://127.0.0.1:{b.port}/other/x.flv"}, b""))
    pull = HttpFlvPullSession(f"http://127.0.0.1:{a.port}/live/s.flv").start()
    assert tags_of(list(pull)) == TAGS
    assert f"Host: 127.0.0.1:{b.port}" in b.requests[0]


def test_redirect_loop_stops_at_the_limit(serve):
    s = serve(lambda path: (302, {"Location": "/a.flv" if path == "/b.flv" else "/b.flv"}, b""))
    pull = HttpFlvPullSession(f"http://127.0.0.1:{s.port}/a.flv", max_redirects=4)
    t0 = time.monotonic()
    with pytest.raises(TooManyRedirects, match="more than 4 redirects"):
        pull.start()
    assert time.monotonic() - t0 < 3
    assert len(s.requests) == 5
    assert pull.wait(1).reason == ERROR


def test_404_fails_at_once_with_the_status(serve):
    s = serve(lambda path: (404, {"Content-Length": "9"}, b"Not Found"))
    t0 = time.monotonic()
    with pytest.raises(HttpStatusError) as ei:
        HttpFlvPullSession(f"http://127.0.0.1:{s.port}/live/none.flv", start_timeout=10).start()
    assert time.monotonic() - t0 < 1
    assert ei.value.status == 404 and "404" in str(ei.value)


def test_server_that_never_answers_fails_at_the_start_timeout(serve):
    s = serve(lambda path: None)
    pull = HttpFlvPullSession(f"http://127.0.0.1:{s.port}/live/s.flv", start_timeout=0.6)
    t0 = time.monotonic()
    with pytest.raises(Timeout, match="start timeout"):
        pull.start()
    assert 0.5 < time.monotonic() - t0 < 2


def test_stream_that_stops_sending_fails_at_the_read_timeout(serve):
    def body(sock):
        sock.sendall(BODY)
        gevent.sleep(30)

    s = serve(lambda path: (200, {}, body))
    got = []
    pull = HttpFlvPullSession(f"http://127.0.0.1:{s.port}/live/s.flv", got.append, read_timeout=0.6).start()
    end = pull.wait(5)
    assert end.reason == ERROR and isinstance(end.error, Timeout) and "read timeout" in str(end.error)
    assert tags_of(got) == TAGS


def test_body_that_is_not_flv_is_an_error(serve):
    s = serve(lambda path: (200, {}, b"<html>nope</html>"))
    pull = HttpFlvPullSession(f"http://127.0.0.1:{s.port}/live/s.flv").start()
    assert list(pull) == []
    end = pull.wait(1)
    assert end.reason == ERROR and isinstance(end.error, ProtocolError) and "not FLV" in str(end.error)


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed to make a test certificate")
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem")], check=True, capture_output=True, timeout=60)
    return d / "cert.pem", d / "key.pem"


def test_https(serve, cert):
    crt, key = cert
    ctx = gssl.SSLContext(gssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(crt), str(key))
    s = serve(lambda path: (200, {}, BODY), ssl_args={"ssl_context": ctx})
    u = f"https://127.0.0.1:{s.port}/live/s.flv"
    # verified against the test certificate
    pull = HttpFlvPullSession(u, ssl_context=make_ssl_context(cafile=str(crt))).start()
    assert tags_of(list(pull)) == TAGS
    # any certificate when asked
    assert tags_of(list(HttpFlvPullSession(u, verify=False).start())) == TAGS
    # refused by default: an unknown authority
    with pytest.raises((ssl.SSLError, OSError)):
        HttpFlvPullSession(u).start()


def test_pull_from_srspy(make_server, short_flv):
    srv = make_server()
    push = RtmpPushSession(f"rtmp://127.0.0.1:{srv.rtmp_ports[0]}/live/s").start()
    tags = list(read_flv_file(short_flv))
    for t in tags[:3]:  # metadata and sequence headers: the stream exists
        push.write_flv_tag(t)
    wait_until(lambda: "/live/s" in srv.streams.entries, 5, what="mounted")
    got = []
    pull = HttpFlvPullSession(f"http://127.0.0.1:{srv.http_port}/live/s.flv", got.append, read_timeout=5).start()
    assert pull.headers.get("content-type") == "video/x-flv"
    for t in tags[3:]:
        push.write_flv_tag(t)
    want = [(t.type, t.payload) for t in tags if t.type in (8, 9)]
    wait_until(lambda: len([m for m in got if m.type in (8, 9)]) >= len(want), 15, what="every tag")
    got_av = [(m.type, m.payload) for m in got if m.type in (8, 9)]
    assert sorted(got_av[:2]) == sorted(want[:2])  # the sequence headers, in SRS's order
    assert got_av[2:] == want[2:]
    push.dispose()
    assert pull.wait(5).reason == CLOSED  # unpublish ends the body


def test_redirects_by_default_stop_after_five_and_never_leave_http(serve):
    s = serve(lambda path: (302, {"Location": f"/r{int(path[2:].split('.')[0] or 0) + 1}.flv" if path.startswith("/r")
                                  else "/r1.flv"}, b""))
    with pytest.raises(TooManyRedirects, match="more than 5 redirects"):
        HttpFlvPullSession(f"http://127.0.0.1:{s.port}/a.flv").start()
    assert len(s.requests) == 6  # the first request and five redirects followed
    t = serve(lambda path: (302, {"Location": "rtmp://127.0.0.1/live/s"}, b""))
    with pytest.raises(UrlError):
        HttpFlvPullSession(f"http://127.0.0.1:{t.port}/a.flv").start()
