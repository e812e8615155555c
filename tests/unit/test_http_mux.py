"""HttpServeMux rules as a table (SRS srs.md 1.4), and HttpServer dispatch; no sockets."""

import pytest
from helpers.recording import RecordingWriter

from srspy.errors import ERROR_HTTP_PATTERN_DUPLICATED, ERROR_HTTP_PATTERN_EMPTY, HttpError, SrsError
from srspy.http.message import HttpHeaders, HttpRequest
from srspy.http.mux import HttpServeMux, NotFoundHandler, RedirectHandler, UrlNotClean
from srspy.http.server import HttpServer


class Named:
    def __init__(self, name):
        self.name = name

    def serve_http(self, w, r):
        w.write(self.name.encode())

    def __repr__(self):
        return self.name


PATTERNS = ["/", "/api/", "/api/v1/versions", "/live/", "/live/a.flv", "/tree/", "/exact",
            "ossrs.net/live/", "ossrs.net/live/b.flv", "/over/", "/over"]


@pytest.fixture
def mux():
    m = HttpServeMux()
    for p in PATTERNS:
        m.handle(p, Named(p))
    return m


@pytest.mark.parametrize("url, host, want", [
    ("/", "", "/"),
    ("/index.html", "", "/"),
    ("/api/v1/versions", "", "/api/v1/versions"),  # exact beats the /api/ prefix
    ("/api/v1/versions/", "", "/api/"),  # the exact pattern does not match by prefix
    ("/api/v1/streams", "", "/api/"),
    ("/live/a.flv", "", "/live/a.flv"),
    ("/live/a.flv?x=1", "", "/live/a.flv"),
    ("/live/c.flv", "", "/live/"),
    ("/exact", "", "/exact"),
    ("/exact/sub", "", "/"),
    ("/tree/x/y", "", "/tree/"),
    ("/tree", "", "redirect:/tree/"),  # implicit redirect
    ("/over", "", "/over"),  # explicit /over overrides the redirect of /over/
    ("/over/", "", "/over/"),
    ("/live/b.flv", "ossrs.net", "ossrs.net/live/b.flv"),  # vhost pattern via Host
    ("/live/b.flv", "OSSRS.net:8080", "ossrs.net/live/b.flv"),
    ("/live/z.flv", "ossrs.net", "ossrs.net/live/"),
    ("/live/a.flv", "ossrs.net", "ossrs.net/live/"),  # the vhost's prefix wins for its Host
    ("/api/v1/versions", "ossrs.net", "/api/v1/versions"),  # falls back to non-vhost patterns
    ("/live/b.flv", "other.com", "/live/"),
    ("/live/b.flv", "", "/live/"),
])
def test_match_table(mux, url, host, want):
    r = HttpRequest("GET", url, {"Host": host} if host else None)
    handler, pattern = mux.find_handler(r)
    if want.startswith("redirect:"):
        assert isinstance(handler, RedirectHandler) and handler.url == want[len("redirect:"):]
    else:
        assert repr(handler) == want and pattern == want


def test_nothing_found_is_not_found_handler():
    m = HttpServeMux()
    m.handle("/live/", Named("/live/"))
    handler, pattern = m.find_handler(HttpRequest("GET", "/other"))
    assert isinstance(handler, NotFoundHandler) and pattern is None
    w = RecordingWriter()
    handler.serve_http(w, HttpRequest("GET", "/other"))
    assert (w.status, bytes(w.body)) == (404, b"Not Found")
    assert w.headers["Content-Type"] == "text/plain; charset=utf-8" and w.headers["Content-Length"] == "9"


@pytest.mark.parametrize("url, location", [
    ("/tree", "/tree/"),
    ("/tree?a=1&b=2", "/tree/?a=1&b=2"),
])
def test_implicit_redirect_response(mux, url, location):
    w = RecordingWriter()
    mux.serve_http(w, HttpRequest("GET", url))
    assert w.status == 302 and w.headers["Location"] == location
    assert bytes(w.body) == f"Redirect to {location}".encode()
    assert w.headers["Content-Type"].startswith("text/plain")


def test_vhost_redirect_goes_to_the_path():
    m = HttpServeMux()
    m.handle("ossrs.net/hls/", Named("x"))
    handler, _ = m.find_handler(HttpRequest("GET", "/hls", {"Host": "ossrs.net"}))
    assert isinstance(handler, RedirectHandler) and handler.url == "/hls/"


def test_explicit_registration_after_the_redirect_replaces_it():
    m = HttpServeMux()
    m.handle("/tree/", Named("/tree/"))
    m.handle("/tree", Named("/tree"))  # not a duplicate: the redirect was implicit
    assert repr(m.find_handler(HttpRequest("GET", "/tree"))[0]) == "/tree"


@pytest.mark.parametrize("url", ["/../etc/passwd", "/live/../../x", "/%2e%2e/etc/passwd", "/a/%2E%2E",
                                 "/a/..%2fb", "/..", "/a\\..\\b"])
def test_dot_dot_refused(mux, url):
    with pytest.raises(UrlNotClean) as e:
        mux.find_handler(HttpRequest("GET", url))
    assert isinstance(e.value, HttpError) and e.value.status == 400 and e.value.close


@pytest.mark.parametrize("url", ["/a..b/c", "/..a", "/x/...", "/live/a.flv?x=../y"])
def test_dots_that_are_not_a_segment_pass(mux, url):
    assert mux.find_handler(HttpRequest("GET", url))[0] is not None


def test_registration_errors():
    m = HttpServeMux()
    with pytest.raises(SrsError) as e:
        m.handle("", Named("x"))
    assert e.value.code == ERROR_HTTP_PATTERN_EMPTY
    m.handle("/a", Named("x"))
    with pytest.raises(SrsError) as e:
        m.handle("/a", Named("y"))
    assert e.value.code == ERROR_HTTP_PATTERN_DUPLICATED
    with pytest.raises(TypeError):
        m.handle("/b", 42)


def test_unhandle_at_run_time():
    m = HttpServeMux()
    m.handle("/", Named("/"))
    m.handle("/live/", Named("/live/"))
    m.handle("ossrs.net/live/s.flv", Named("vhost"))
    r = HttpRequest("GET", "/live/s.flv", {"Host": "ossrs.net"})
    assert repr(m.find_handler(r)[0]) == "vhost"
    m.unhandle("ossrs.net/live/s.flv")
    assert "ossrs.net" not in m.vhosts
    assert repr(m.find_handler(r)[0]) == "/live/"
    m.unhandle("/live/")
    assert repr(m.find_handler(HttpRequest("GET", "/live"))[0]) == "/"  # the implicit redirect went too
    m.handle("/live/", Named("again"))  # and it can be mounted again
    assert repr(m.find_handler(r)[0]) == "again"


def test_plain_function_is_adapted():
    m = HttpServeMux()
    m.handle("/hello", lambda w, r: w.write(b"hi " + r.args["name"].encode()))
    w = RecordingWriter()
    m.serve_http(w, HttpRequest("GET", "/hello?name=srs"))
    assert bytes(w.body) == b"hi srs"


class Hijacker:
    def __init__(self):
        self.calls = []

    def hijack(self, r, handler):
        self.calls.append((r.path, handler))
        if r.path.endswith(".flv") and (handler is None or repr(handler) == "/"):
            return Named("hijacked")
        return None


def test_hijacker_called_on_every_lookup():
    m = HttpServeMux()
    root = Named("/")
    m.handle("/", root)
    m.handle("/live/a.flv", Named("/live/a.flv"))
    h = Hijacker()
    m.hijack(h)
    m.hijack(h)  # once only
    assert repr(m.find_handler(HttpRequest("GET", "/live/a.flv"))[0]) == "/live/a.flv"
    assert repr(m.find_handler(HttpRequest("GET", "/live/b.flv"))[0]) == "hijacked"
    assert repr(m.find_handler(HttpRequest("GET", "/x.txt"))[0]) == "/"
    assert [c[0] for c in h.calls] == ["/live/a.flv", "/live/b.flv", "/x.txt"]
    assert h.calls[1][1] is root
    m.unhijack(h)
    assert repr(m.find_handler(HttpRequest("GET", "/live/b.flv"))[0]) == "/"


def test_hijacker_sees_none_when_nothing_matched():
    m = HttpServeMux()
    h = Hijacker()
    m.hijack(h)
    assert repr(m.find_handler(HttpRequest("GET", "/live/b.flv"))[0]) == "hijacked"
    assert h.calls == [("/live/b.flv", None)]


@pytest.mark.parametrize("url, want", [
    ("/live/s.flv", "stream"),  # stream mux first
    ("/live/other.flv", "static-root"),  # not found there: static fallback
    ("/api/v1/versions", "api"),
    ("/api/live/s.flv", "static-root"),  # /api/ never asks the stream mux
    ("/console/x", "static-root"),
])
def test_http_server_dispatch(url, want):
    srv = HttpServer()
    srv.stream_mux.handle("/live/s.flv", Named("stream"))
    srv.stream_mux.handle("/api/live/s.flv", Named("stream-api"))
    srv.handle("/", Named("static-root"))
    srv.mux.handle("/api/v1/versions", Named("api"))
    w = RecordingWriter()
    srv.serve_http(w, HttpRequest("GET", url))
    assert bytes(w.body) == want.encode()


@pytest.mark.parametrize("url, path, query", [
    ("/live/s-1.ts", "/live/s-1.ts", ""),
    ("/live/s-1.ts?hls_ctx=ab&x=1", "/live/s-1.ts", "hls_ctx=ab&x=1"),
    ("/live/a%20b.ts", "/live/a b.ts", ""),
    ("/live/%C3%A9.ts", "/live/\u00e9.ts", ""),
    ("/live/\u00c3\u00a9.ts", "/live/\u00e9.ts", ""),  # raw UTF-8 bytes, read by the parser as latin-1
    ("/live/a+b.ts#frag", "/live/a+b.ts", ""),
])
def test_request_path_is_the_percent_decoded_utf8_path(url, path, query):
    r = HttpRequest("GET", url)
    assert (r.path, r.query) == (path, query)


def test_header_names_normalized_whatever_their_case():
    h = HttpHeaders([("content-TYPE", "a"), ("x-my-header", "b"), ("HOST", "c")])
    assert list(h) == ["Content-Type", "X-My-Header", "Host"]
    assert (h["content-type"], h.get("Host")) == ("a", "c")
