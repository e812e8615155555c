"""The generic HTTP stack over real sockets: HttpConn -> CORS -> Auth -> HttpServer.

A gevent StreamServer on 127.0.0.1 port 0 runs one HttpConn per connection; every test
has a hard timeout so a hang fails fast.
"""

from __future__ import annotations

import base64
import os
import socket
import time

import gevent
import pytest
from gevent.event import Event
from gevent.server import StreamServer
from loguru import logger

from helpers.media import wait_until
from srspy.errors import ClientClosed, HttpError
from srspy.http.auth import HttpAuthMux
from srspy.http.conn import HttpConn
from srspy.http.cors import HttpCorsMux
from srspy.http.server import HttpServer
from srspy.http.wsgi import WsgiHandler

pytestmark = pytest.mark.timeout(30)

FLV = b"FLV\x01\x05\x00\x00\x00\x09" + bytes(range(256)) * 40  # 10249 bytes


class Stack:
    def __init__(self, root, request_timeout):
        self.http = HttpServer(dir=str(root))
        self.auth = HttpAuthMux(self.http, True, "admin", "secret")
        self.cors = HttpCorsMux(self.auth, True)
        self.request_timeout = request_timeout
        self.conns: list[HttpConn] = []
        self.server = StreamServer(("127.0.0.1", 0), self._handle)
        self.server.start()
        self.port = self.server.server_port

    def _handle(self, sock, addr):
        conn = HttpConn(sock, addr, self.cors, cid=f"c{len(self.conns):07d}", request_timeout=self.request_timeout,
                        max_header_bytes=4096)
        self.conns.append(conn)
        conn.serve()

    def connect(self) -> "Client":
        return Client(socket.create_connection(("127.0.0.1", self.port), timeout=5))


class Client:
    """A raw HTTP/1.1 client: exact bytes out, responses parsed by hand."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()

    def send(self, data: bytes):
        self.sock.sendall(data)

    def get(self, url, method="GET", headers=None, body=b""):
        hdrs = {"Host": "127.0.0.1"}
        hdrs.update(headers or {})
        if body:
            hdrs["Content-Length"] = str(len(body))
        head = f"{method} {url} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items()) + "\r\n"
        self.send(head.encode() + body)
        return self.response(head_only=method == "HEAD")

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        self.buf += data
        return bool(data)

    def _take(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill():
                raise EOFError("closed in the middle of a body")
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            if not self._fill():
                raise EOFError("closed in the middle of a line")
        line, _, rest = bytes(self.buf).partition(b"\r\n")
        self.buf[:] = rest
        return line

    def response(self, head_only=False):
        while b"\r\n\r\n" not in self.buf:
            if not self._fill():
                raise EOFError("closed before a response")
        head, _, rest = bytes(self.buf).partition(b"\r\n\r\n")
        self.buf[:] = rest
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(": ")
            headers[k.lower()] = v
        body = b""
        if head_only:
            return status, headers, body
        if "content-length" in headers:
            body = self._take(int(headers["content-length"]))
        elif headers.get("transfer-encoding") == "chunked":
            while True:
                size = int(self._line(), 16)
                if size == 0:
                    self._line()
                    break
                body += self._take(size)
                self._take(2)
        return status, headers, body

    def closed(self, within=3.0) -> bool:
        """True if the server closes the connection (EOF or reset) within ``within`` seconds."""
        self.sock.settimeout(within)
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    return True
                self.buf += data
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()


@pytest.fixture
def root(tmp_path):
    d = tmp_path / "html"
    (d / "live").mkdir(parents=True)
    (d / "index.html").write_bytes(b"<html>srspy</html>")
    (d / "live" / "demo.flv").write_bytes(FLV)
    (d / "app.js").write_bytes(b"console.log(1)")
    (tmp_path / "secret.txt").write_bytes(b"TOP-SECRET")
    os.symlink(tmp_path / "secret.txt", d / "link.txt")
    return d


@pytest.fixture
def stack(root):
    s = Stack(root, request_timeout=1.0)
    yield s
    with gevent.Timeout(3, False):
        s.server.stop(timeout=1)


def test_keep_alive_two_requests_on_one_socket(stack):
    c = stack.connect()
    s1, h1, b1 = c.get("/index.html")
    s2, h2, b2 = c.get("/app.js")
    assert (s1, b1, s2, b2) == (200, b"<html>srspy</html>", 200, b"console.log(1)")
    assert h1["connection"] == h2["connection"] == "Keep-Alive"  # not SRS's Close: browsers believe it
    assert h2["content-type"] == "text/javascript; charset=utf-8" and h2["server"].startswith("srspy/")
    assert stack.conns[0].requests == 2 and len(stack.conns) == 1
    # the API's paths keep SRS's Connection: Close, and the connection goes on all the same
    s3, h3, _ = c.get("/api/v1/versions")
    assert (s3, h3["connection"]) == (401, "Close")
    assert c.get("/app.js")[2] == b"console.log(1)" and stack.conns[0].requests == 4 and len(stack.conns) == 1
    # HTTP/1.0 asking for keep-alive is told so, and kept
    c.send(b"GET /app.js HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    s5, h5, b5 = c.response()
    assert (s5, h5["connection"], b5) == (200, "Keep-Alive", b"console.log(1)") and stack.conns[0].requests == 5
    assert stack.conns[0].bytes_in > 0 and stack.conns[0].bytes_out > len(b1) + len(b2)
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert c.response()[2] == b"<html>srspy</html>"
    assert c.closed()


def test_pipelined_requests_answered_in_order(stack):
    c = stack.connect()
    c.send(b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\nHEAD /app.js HTTP/1.1\r\nHost: x\r\n\r\n"
           b"GET /app.js HTTP/1.0\r\n\r\n")
    assert c.response()[2] == b"<html>srspy</html>"
    assert c.response(head_only=True)[1]["content-length"] == "14"
    assert c.response()[2] == b"console.log(1)"
    assert c.closed()  # HTTP/1.0 without keep-alive


def test_expect_100_continue(stack):
    stack.http.handle("/echo", lambda w, r: w.write(r.body))
    c = stack.connect()
    c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
    assert c.response()[0] == 100
    c.send(b"hello")
    assert c.response()[0::2] == (200, b"hello")
    c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n")
    assert c.response()[0] == 413
    assert c.closed()


def test_head_sends_no_body(stack):
    c = stack.connect()
    status, headers, body = c.get("/live/demo.flv", method="HEAD")
    assert status == 200 and headers["content-length"] == str(len(FLV))
    assert headers["content-type"] == "video/x-flv"
    status, _, body = c.get("/index.html")  # no stray body bytes before this response
    assert (status, body) == (200, b"<html>srspy</html>")


def test_static_file_range(stack):
    c = stack.connect()
    status, headers, body = c.get("/live/demo.flv")
    assert (status, body, headers["content-type"]) == (200, FLV, "video/x-flv")
    status, headers, body = c.get("/live/demo.flv", headers={"Range": "bytes=9-18"})
    assert status == 206 and body == FLV[9:19] and headers["content-range"] == f"bytes 9-18/{len(FLV)}"
    status, headers, body = c.get("/live/demo.flv", headers={"Range": "bytes=-4"})
    assert status == 206 and body == FLV[-4:]
    status, headers, body = c.get("/live/demo.flv", headers={"Range": "bytes=10000-"})
    assert status == 206 and body == FLV[10000:]
    status, headers, body = c.get("/live/demo.flv", headers={"Range": "bytes=99999-"})
    assert status == 416 and headers["content-range"] == f"bytes */{len(FLV)}" and body == b""
    status, headers, body = c.get("/")
    assert (status, body, headers["content-type"]) == (200, b"<html>srspy</html>", "text/html; charset=utf-8")
    status, headers, body = c.get("/nope.flv")
    assert (status, body) == (404, b"Not Found")


@pytest.mark.parametrize("url", ["/../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/live/%2E%2E/../secret.txt",
                                 "/%2e%2e/"])
def test_dot_dot_refused_and_closed(stack, url):
    c = stack.connect()
    c.send(f"GET {url} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    status, _, body = c.response()
    assert status == 400 and b"root:" not in body and b"TOP-SECRET" not in body
    assert c.closed()


def test_symlink_out_of_root_not_served(stack):
    status, _, body = stack.connect().get("/link.txt")
    assert status == 404 and b"TOP-SECRET" not in body


def test_huge_headers_431_then_closed(stack):
    c = stack.connect()
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 200) for i in range(100))
           + b"\r\n")
    assert c.response()[0] == 431
    assert c.closed()


def test_garbage_400_then_closed(stack):
    c = stack.connect()
    c.send(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 garbage\r\n\r\n")
    assert c.response()[0] == 400
    assert c.closed()


def test_request_timeout_closes_half_sent_request(stack):
    c = stack.connect()
    c.send(b"GET /index.html HTTP/1.1\r\nHost: x\r\n")  # never finished
    t0 = time.monotonic()
    assert c.closed(within=5)
    assert c.buf == b"" and 0.8 < time.monotonic() - t0 < 4


def test_idle_keep_alive_closes_quietly(stack):
    c = stack.connect()
    assert c.get("/app.js")[0] == 200
    assert c.closed(within=5)


def test_function_and_wsgi_app_mounted(stack):
    stack.http.mux.handle("/hello", lambda w, r: w.write(f"hello {r.args.get('name')} from {r.remote_ip}".encode()))

    def app(environ, start_response):
        body = environ["wsgi.input"].read()
        text = f"{environ['REQUEST_METHOD']} {environ['SCRIPT_NAME']}|{environ['PATH_INFO']}|" \
               f"{environ['QUERY_STRING']}|{environ.get('HTTP_X_TEST')}|{body.decode()}"
        start_response("201 Created", [("Content-Type", "text/plain"), ("X-App", "1")])
        return [text.encode()]

    stack.http.handle("/admin/", WsgiHandler(app, prefix="/admin"))
    c = stack.connect()
    status, _, body = c.get("/hello?name=srs")
    assert (status, body) == (200, b"hello srs from 127.0.0.1")
    status, headers, body = c.get("/admin/users/1?x=2", method="POST", headers={"X-Test": "t"}, body=b"payload")
    assert status == 201 and headers["x-app"] == "1" and headers["content-length"] == str(len(body))
    assert body == b"POST /admin|/users/1|x=2|t|payload"
    status, headers, _ = c.get("/admin?q=1")
    assert status == 302 and headers["location"] == "/admin/?q=1"


def test_wsgi_streaming_body_is_chunked(stack):
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"one,"
        yield b""
        yield b"two"

    stack.http.handle("/gen/", WsgiHandler(app, prefix="/gen"))
    status, headers, body = stack.connect().get("/gen/")
    assert (status, headers["transfer-encoding"], body) == (200, "chunked", b"one,two")


def test_flask_app_mounted(stack):
    import flask
    app = flask.Flask("srspy-test")

    @app.route("/hi/<name>", methods=["GET", "POST"])
    def hi(name):
        return flask.jsonify(name=name, method=flask.request.method, script=flask.request.script_root,
                             data=flask.request.get_data(as_text=True))

    stack.http.handle("/flask/", WsgiHandler(app, prefix="/flask"))
    status, headers, body = stack.connect().get("/flask/hi/srs", method="POST", body=b"x=1")
    assert status == 200 and headers["content-type"] == "application/json"
    assert flask.json.loads(body) == {"name": "srs", "method": "POST", "script": "/flask", "data": "x=1"}


def test_options_preflight_with_cors_headers(stack):
    c = stack.connect()
    status, headers, body = c.get("/api/v1/streams/", method="OPTIONS", headers={"Origin": "http://p.example"})
    assert status == 200 and headers["content-length"] == "0" and body == b""
    assert headers["access-control-allow-origin"] == "*"
    assert headers["access-control-request-private-network"] == "true"
    status, headers, _ = c.get("/index.html", headers={"Origin": "http://p.example"})
    assert status == 200 and headers["access-control-allow-methods"] == "*"
    status, headers, _ = c.get("/index.html")
    assert "access-control-allow-origin" not in headers


def test_auth_on_api_only(stack):
    stack.http.handle("/api/v1/versions", lambda w, r: w.write(b'{"code":0}'))
    c = stack.connect()
    status, headers, body = c.get("/api/v1/versions")
    assert (status, headers["www-authenticate"], body) == (401, "Basic", b"")
    token = base64.b64encode(b"admin:secret").decode()
    status, _, body = c.get("/api/v1/versions", headers={"Authorization": f"Basic {token}"})
    assert (status, body) == (200, b'{"code":0}')
    assert c.get("/index.html")[0] == 200


def test_handler_errors(stack):
    def forbidden(w, r):
        raise HttpError(403, "no entry")

    def broken(w, r):
        raise ValueError("bug")

    def broken_late(w, r):
        w.write(b"partial")
        raise ValueError("bug after the headers")

    stack.http.handle("/forbidden", forbidden)
    stack.http.handle("/broken", broken)
    stack.http.handle("/late", broken_late)
    c = stack.connect()
    status, headers, body = c.get("/forbidden", headers={"Origin": "http://p.example"})
    assert (status, body, headers["access-control-allow-origin"]) == (403, b"no entry", "*")
    assert c.get("/broken")[0] == 500  # same connection: 403 kept it alive
    assert c.closed()
    c = stack.connect()
    c.send(b"GET /late HTTP/1.1\r\nHost: x\r\n\r\n")
    assert c.closed()  # headers were out: close instead of a 500
    assert bytes(c.buf).startswith(b"HTTP/1.1 200 OK\r\n") and bytes(c.buf).endswith(b"7\r\npartial\r\n")


class Streamer:
    """A streaming handler: writev batches until the close watcher fires."""

    def __init__(self, payload=b"x" * 1000, interval=0.05):
        self.payload = payload
        self.interval = interval
        self.started = Event()
        self.ended = Event()
        self.peer_closed = Event()
        self.error = None

    def serve_http(self, w, r):
        w.header()["Content-Type"] = "video/x-flv"
        w.write_header(200)
        r.conn.watch_close(self.peer_closed.set)
        self.started.set()
        try:
            while not self.peer_closed.is_set():
                w.writev([b"hdr", self.payload, b"tail"])
                if self.interval:
                    self.peer_closed.wait(self.interval)
        except Exception as e:
            self.error = e
            raise
        finally:
            self.ended.set()


def test_streaming_notices_client_close(stack):
    records = []
    sink = logger.add(lambda m: records.append(m.record), level="DEBUG")
    h = Streamer()
    stack.http.handle("/stream.flv", h)
    c = stack.connect()
    c.send(b"GET /stream.flv HTTP/1.1\r\nHost: x\r\n\r\n")
    while c.buf.count(b"hdr") < 3:
        assert c._fill()
    assert b"Transfer-Encoding: chunked" in bytes(c.buf)
    assert b"\r\n%x\r\nhdr" % (3 + 1000 + 4) in bytes(c.buf)  # one chunk per writev
    c.close()
    assert h.ended.wait(3) and h.peer_closed.is_set()
    wait_until(lambda: stack.conns[0].closed, 2, interval=0.01, what="the connection closed")
    logger.remove(sink)
    cid = stack.conns[0].cid
    lines = {r["message"].split(",")[0]: r["extra"].get("cid") for r in records}
    assert lines["HTTP #1 127.0.0.1:%d GET /stream.flv" % stack.conns[0].remote_port] == cid
    assert lines["http: recv thread ends"] == cid  # the helper greenlet logs in the same context


def test_expire_ends_a_stuck_stream(stack):
    h = Streamer(payload=b"y" * 256 * 1024, interval=0)
    stack.http.handle("/stuck.flv", h)
    c = stack.connect()
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    c.send(b"GET /stuck.flv HTTP/1.1\r\nHost: x\r\n\r\n")  # and never read: the writer blocks
    assert h.started.wait(3)
    gevent.sleep(0.3)
    assert not h.ended.is_set()
    conn = stack.conns[0]
    t0 = time.monotonic()
    gevent.spawn(conn.expire).join()
    assert h.ended.wait(1.0), "the stuck writer did not end within 1 s"
    assert time.monotonic() - t0 < 1.0 and conn.closed
    assert isinstance(h.error, ClientClosed)
    c.close()
