"""The sans-IO request parser and HttpRequest: whole and byte-by-byte, pipelining, limits."""

import pytest
from hypothesis import given, settings, strategies as st

from srspy.http.message import HttpRequest
from srspy.http.parser import HttpParseError, HttpParser

PIPELINE = (
    b"GET /live/a.flv?vhost=v&x=1&x=2 HTTP/1.1\r\nHost: Ossrs.NET:8080\r\nUser-Agent: t\r\n\r\n"
    b"POST /api/v1/x HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"
    b"PUT /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    b"GET /%E4%B8%AD%2e%2e/b HTTP/1.0\r\n\r\n"
)


def parse_all(data: bytes, step: int | None = None, **limits):
    p = HttpParser(**limits)
    out = []
    step = step or len(data)
    for i in range(0, len(data), step):
        p.feed(data[i:i + step])
        while (req := p.next_request()) is not None:
            out.append(req)
    return out


def summary(reqs):
    return [(r.method, r.url, r.version, r.headers, r.body, r.keep_alive) for r in reqs]


def test_pipelined_requests_whole_and_byte_by_byte():
    whole = parse_all(PIPELINE)
    assert summary(whole) == summary(parse_all(PIPELINE, 1))
    assert [(r.method, r.url, r.body, r.keep_alive) for r in whole] == [
        ("GET", "/live/a.flv?vhost=v&x=1&x=2", b"", True),
        ("POST", "/api/v1/x", b"hello", True),
        ("PUT", "/c", b"abcde", True),
        ("GET", "/%E4%B8%AD%2e%2e/b", b"", False),
    ]
    assert whole[0].headers == [("Host", "Ossrs.NET:8080"), ("User-Agent", "t")]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=len(PIPELINE) - 1), unique=True, max_size=12))
def test_split_invariance(cuts):
    p = HttpParser()
    out = []
    bounds = [0, *sorted(cuts), len(PIPELINE)]
    for a, b in zip(bounds, bounds[1:]):
        p.feed(PIPELINE[a:b])
        while (req := p.next_request()) is not None:
            out.append(req)
    assert summary(out) == summary(parse_all(PIPELINE))


def test_requests_before_an_error_are_handed_out_first():
    p = HttpParser()
    p.feed(b"GET /ok HTTP/1.1\r\n\r\n\x00GARBAGE\r\n\r\n")
    assert p.next_request().url == "/ok"
    with pytest.raises(HttpParseError) as e:
        p.next_request()
    assert e.value.status == 400 and e.value.close


@pytest.mark.parametrize("data, status", [
    (b"GARBAGE\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n", 400),
    (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n", 414),
    (b"GET / HTTP/1.1\r\n" + b"X-A: " + b"b" * 40000 + b"\r\n\r\n", 431),
    (b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: %s\r\n" % (i, b"v" * 100) for i in range(400)) + b"\r\n", 431),
    (b"POST / HTTP/1.1\r\nContent-Length: 2000000\r\n\r\n", 413),
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n100001\r\n" + b"z" * 0x100001 + b"\r\n0\r\n\r\n",
     413),
], ids=["garbage", "bad-length", "long-url", "long-header", "many-headers", "big-length", "big-chunked"])
def test_limits_and_errors(data, status):
    for step in (len(data), 1000):
        with pytest.raises(HttpParseError) as e:
            parse_all(data, step)
        assert e.value.status == status


def test_huge_header_refused_before_it_ends():
    p = HttpParser(max_request_line=100, max_header_bytes=1000)
    p.feed(b"GET / HTTP/1.1\r\nX-A: ")
    for _ in range(3):
        p.feed(b"b" * 500)  # never terminated
    with pytest.raises(HttpParseError) as e:
        p.next_request()
    assert e.value.status == 431


def test_expect_continue_and_upgrade():
    p = HttpParser()
    p.feed(b"POST /x HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n")
    assert p.expect_continue and p.started and p.next_request() is None
    p.feed(b"abc")
    assert p.next_request().body == b"abc" and not p.expect_continue
    p = HttpParser()
    p.feed(b"GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nframes")
    r = p.next_request()
    assert r.upgrade and not r.keep_alive


def test_http_request_fields():
    r = HttpRequest("get", "/live/%E4%B8%AD.flv?a=1&a=2&b=&c", {"host": "Ossrs.NET:8080", "origin": "x"},
                    version="1.1", remote=("::1", 5000))
    assert (r.method, r.path, r.query, r.args) == ("GET", "/live/中.flv", "a=1&a=2&b=&c", {"a": "1", "b": "", "c": ""})
    assert r.host == "ossrs.net" and r.header("ORIGIN") == "x" and r.header("nope", "d") == "d"
    assert r.keep_alive and not r.is_head and r.remote_ip == "::1" and r.attrs == {}
    assert HttpRequest("HEAD", "/", {"Host": "[::1]:80"}).host == "::1"
    assert HttpRequest("GET", "/", {"Connection": "close"}).keep_alive is False
    assert HttpRequest("GET", "/", version="1.0").keep_alive is False
    assert HttpRequest("GET", "/", {"Connection": "Keep-Alive"}, version="1.0").keep_alive is True
    proxy = HttpRequest("GET", "http://example.com:81/a%20b?q=1")
    assert (proxy.path, proxy.query, proxy.host) == ("/a b", "q=1", "example.com")
