"""A hook server for the tests of http_hooks: records every POSTed event."""

import json
import time

import gevent
from gevent.pywsgi import WSGIServer


class HookServer:
    """Records every POST; answers by path: /ok (0), /okjson ({"code":0}), /one (1),
    /code1 ({"code":1}), /500, /garbage, /hang (never in time), /slow (2 s, then 0).
    A GET (on_hls_notify) is recorded in ``gets`` (path and query) and answered 200 with
    4 KiB."""

    def __init__(self):
        self.calls: list[tuple[str, dict, float]] = []
        self.gets: list[str] = []
        self.server = WSGIServer(("127.0.0.1", 0), self.app, log=None, error_log=None)
        self.server.start()
        self.port = self.server.server_port

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def app(self, environ, start_response):
        path = environ["PATH_INFO"]
        if environ["REQUEST_METHOD"] == "GET":
            self.gets.append(path + ("?" + environ["QUERY_STRING"] if environ.get("QUERY_STRING") else ""))
            start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "4096")])
            return [b"x" * 4096]
        body = environ["wsgi.input"].read()
        try:
            ev = json.loads(body)
        except ValueError:
            ev = {"raw": body.decode("latin-1")}
        assert environ["REQUEST_METHOD"] == "POST" and environ.get("CONTENT_TYPE") == "application/json"
        self.calls.append((path, ev, time.monotonic()))
        status, out = "200 OK", b"0"
        if path == "/okjson":
            out = b'{"code":0,"msg":"ok"}'
        elif path == "/one":
            out = b"1"
        elif path == "/code1":
            out = b'{"code":1}'
        elif path == "/500":
            status = "500 Internal Server Error"
        elif path == "/garbage":
            out = b"<html>oops</html>"
        elif path == "/hang":
            gevent.sleep(30)
        elif path == "/slow":
            gevent.sleep(2)
        start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(out)))])
        return [out]

    def actions(self, path=None):
        return [ev["action"] for p, ev, _ in self.calls if path is None or p == path]

    def events(self, action):
        return [ev for _, ev, _ in self.calls if ev.get("action") == action]

    def close(self):
        self.server.stop(timeout=1)
