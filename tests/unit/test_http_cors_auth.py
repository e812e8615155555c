"""HttpCorsMux and HttpAuthMux (srs.md 2.1, 2.2) through a recording writer; no sockets."""

import base64

import pytest
from helpers.recording import RecordingWriter

from srspy.http.auth import HttpAuthMux
from srspy.http.cors import HttpCorsMux
from srspy.http.message import HttpRequest

CORS = [
    ("Access-Control-Allow-Origin", "*"),
    ("Access-Control-Allow-Headers", "*, Authorization"),  # the wildcard alone does not cover it
    ("Access-Control-Allow-Methods", "*"),
    ("Access-Control-Expose-Headers", "*"),
    ("Access-Control-Allow-Credentials", "false"),
    ("Access-Control-Request-Private-Network", "true"),
]


class Ok:
    def __init__(self):
        self.served = []

    def serve_http(self, w, r):
        self.served.append(r.path)
        w.write(b"ok")


def basic(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def serve(handler, method="GET", url="/", **headers):
    w = RecordingWriter()
    handler.serve_http(w, HttpRequest(method, url, {k.replace("_", "-"): v for k, v in headers.items()}))
    return w


def test_cors_headers_only_with_origin():
    inner = Ok()
    cors = HttpCorsMux(inner, True)
    w = serve(cors, url="/live/a.flv", Origin="http://player.example")
    assert list(w.headers.pairs()) == CORS and bytes(w.body) == b"ok"
    w = serve(cors, url="/live/a.flv")
    assert list(w.headers.pairs()) == [] and bytes(w.body) == b"ok"
    cors.enabled = False  # config reload
    w = serve(cors, url="/live/a.flv", Origin="http://player.example")
    assert list(w.headers.pairs()) == []


@pytest.mark.parametrize("enabled, origin, status, headers", [
    (True, "http://x", 200, CORS + [("Content-Length", "0")]),
    (True, None, 200, [("Content-Length", "0")]),
    (False, "http://x", 405, [("Content-Length", "0")]),
])
def test_options_answered_by_cors(enabled, origin, status, headers):
    inner = Ok()
    auth = HttpAuthMux(inner, True, "admin", "secret")
    kw = {"Origin": origin} if origin else {}
    w = serve(HttpCorsMux(auth, enabled), "OPTIONS", "/api/v1/streams/", **kw)
    assert w.status == status and w.finished and bytes(w.body) == b""
    assert list(w.headers.pairs()) == headers
    assert inner.served == []  # never reaches auth nor the handler


@pytest.mark.parametrize("url, authorization, served", [
    ("/api/v1/versions", None, False),
    ("/api/v1/versions", basic("admin", "secret"), True),
    ("/api/v1/versions", basic("admin", "wrong"), False),
    ("/api/v1/versions", basic("other", "secret"), False),
    ("/api/v1/versions", "basic " + basic("admin", "secret")[6:], True),
    ("/api/v1/versions", "Bearer abc", False),
    ("/api/v1/versions", "Basic !!!not-base64", False),
    ("/api/v1/versions", "Basic " + base64.b64encode(b"admin:secret:x").decode(), False),
    ("/api/v1/versions", "Basic " + base64.b64encode(b"adminsecret").decode(), False),
    ("/api/v1/versions", "Basic " + base64.b64encode(b"admin:secre").decode(), False),
    ("/api/v1/versions", "Basic " + base64.b64encode(b"admin:secret\xff").decode(), False),
    ("/app/api/x", None, False),  # /api/ anywhere in the path
    ("/live/a.flv", None, True),
    ("/rtc/v1/play/", None, True),
    ("/metrics", None, False),  # host name, kernel and pid: behind auth when it is on
    ("/metrics", basic("admin", "secret"), True),
    ("/metrics/x", None, True),
    ("/api", None, True),
])
def test_basic_auth(url, authorization, served):
    inner = Ok()
    kw = {"Authorization": authorization} if authorization else {}
    w = serve(HttpAuthMux(inner, True, "admin", "secret"), url=url, **kw)
    if served:
        assert inner.served == [url.partition("?")[0]] and w.status == 200
    else:
        assert inner.served == [] and w.status == 401 and w.finished and bytes(w.body) == b""
        assert w.headers["WWW-Authenticate"] == "Basic"


def test_password_with_colons_splits_at_the_first_colon():
    inner = Ok()
    auth = HttpAuthMux(inner, True, "admin", "p:a:ss")
    assert serve(auth, url="/api/v1/x", Authorization=basic("admin", "p:a:ss")).status == 200
    assert serve(auth, url="/api/v1/x", Authorization=basic("admin", "p:a")).status == 401


def test_exporter_listener_leaves_metrics_open():
    inner = Ok()
    auth = HttpAuthMux(inner, True, "admin", "secret", metrics=False)
    assert serve(auth, url="/metrics").status == 200
    assert serve(auth, url="/api/v1/versions").status == 401


def test_auth_disabled_and_reconfigured():
    inner = Ok()
    auth = HttpAuthMux(inner, False, "admin", "secret")
    assert serve(auth, url="/api/v1/x").status == 200
    auth.enabled, auth.username, auth.password = True, "u", "p"
    assert serve(auth, url="/api/v1/x").status == 401
    assert serve(auth, url="/api/v1/x", Authorization=basic("u", "p")).status == 200


def test_cors_headers_on_a_401():
    inner = Ok()
    w = serve(HttpCorsMux(HttpAuthMux(inner, True, "a", "b"), True), url="/api/v1/x", Origin="http://x")
    assert w.status == 401 and list(w.headers.pairs())[:6] == CORS
