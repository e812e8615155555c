"""Client URL parsing: app, stream and query as lal documents them; what each protocol needs."""

import pytest

from srspy.client.url import UrlError, parse_httpflv_url, parse_rtmp_url, parse_url
from srspy.app.relay import split_host_port, upstream_url
from srspy.request import Request


def test_rtmp_url_with_nested_app_and_query():
    u = parse_rtmp_url("rtmp://host:19350/a/b/stream?x=1")
    assert (u.scheme, u.host, u.port) == ("rtmp", "host", 19350)
    assert (u.app, u.stream, u.raw_query) == ("a/b", "stream", "x=1")
    assert u.tc_url == "rtmp://host:19350/a/b"
    assert u.stream_with_query == "stream?x=1"


def test_rtmp_default_port_and_plain_names():
    u = parse_rtmp_url("rtmp://127.0.0.1/live/livestream")
    assert u.port == 1935 and u.app == "live" and u.stream == "livestream" and u.raw_query == ""
    assert u.stream_with_query == "livestream"
    assert u.tc_url == "rtmp://127.0.0.1:1935/live"
    assert parse_rtmp_url("rtmps://h/live/s").port == 443


def test_httpflv_url_strips_extension():
    u = parse_httpflv_url("http://host/a/b/stream.flv?x=1")
    assert (u.app, u.stream, u.raw_query, u.port) == ("a/b", "stream", "x=1", 80)
    assert u.file_name == "stream.flv"
    assert u.path_with_query == "/a/b/stream.flv?x=1"
    assert u.host_port == "host"
    assert parse_httpflv_url("https://h:8443/live/s.flv").host_port == "h:8443"


def test_ipv6_literal():
    u = parse_url("http://[::1]:8080/live/s.flv")
    assert u.host == "::1" and u.port == 8080 and u.host_port == "[::1]:8080"
    assert parse_rtmp_url("rtmp://[::1]/live/s").tc_url == "rtmp://[::1]:1935/live"


@pytest.mark.parametrize("url", [
    "rtmp://host/stream",          # no app
    "rtmp://host/live/",           # no stream
    "rtmp:///live/s",              # no host
    "ftp://host/live/s",           # scheme
    "rtmp://host:99999/live/s",    # port
])
def test_bad_rtmp_urls(url):
    with pytest.raises(UrlError):
        parse_rtmp_url(url)


def test_http_url_single_level_path_is_allowed():
    u = parse_httpflv_url("http://h/s.flv")
    assert u.app == "" and u.stream == "s"


def test_scheme_restrictions():
    with pytest.raises(UrlError):
        parse_rtmp_url("http://h/live/s.flv")
    with pytest.raises(UrlError):
        parse_httpflv_url("rtmp://h/live/s")


def _req(app="live", stream="s", param="", vhost="__defaultVhost__", protocol="rtmp"):
    r = Request()
    r.app, r.stream, r.param, r.vhost, r.protocol = app, stream, param, vhost, protocol
    return r


def test_upstream_urls_for_relays():
    assert upstream_url("rtmp", "10.0.0.1:19350", _req(param="?k=v")) == "rtmp://10.0.0.1:19350/live/s?k=v"
    assert upstream_url("rtmp", "10.0.0.1", _req()) == "rtmp://10.0.0.1:1935/live/s"
    # a source made by an HTTP player: its stream is named without the extension
    assert upstream_url("flv", "o:8080", _req(stream="s.flv", protocol="flv")) == "http://o:8080/live/s.flv"
    assert upstream_url("rtmp", "o:1", _req(stream="a.b")) == "rtmp://o:1/live/a.b"  # an RTMP name is whole
    assert upstream_url("flvs", "o", _req()) == "https://o:443/live/s.flv"
    assert upstream_url("rtmp", "o:1", _req(vhost="v.example")) == "rtmp://o:1/live/s?vhost=v.example"
    assert upstream_url("rtmp", "o:1", _req(), vhost="up") == "rtmp://o:1/live/s?vhost=up"
    assert upstream_url("rtmp", "[::1]:5", _req()) == "rtmp://[::1]:5/live/s"


def test_split_host_port():
    assert split_host_port("h:1", 9) == ("h", 1)
    assert split_host_port("h", 9) == ("h", 9)
    assert split_host_port("1936", 9) == ("127.0.0.1", 1936)
    assert split_host_port("[::1]:7", 9) == ("::1", 7)
    assert split_host_port("[::1]", 9) == ("::1", 9)


NASTY = ["a/b", "s?x=1", "s#frag", "a b", "s\r\nHost: evil", "..", ".", "%41", "中文", "s.flv?y"]


@pytest.mark.parametrize("name", NASTY)
@pytest.mark.parametrize("protocol", ["rtmp", "flv"])
def test_upstream_url_escapes_names_and_round_trips(protocol, name):
    req = _req(app=f"live/{name}", stream=name, param="?k=v", protocol="rtmp")
    url = upstream_url(protocol, "o:1", req)
    scheme = "rtmp" if protocol == "rtmp" else "http"
    prefix = f"{scheme}://o:1/"
    assert url.startswith(prefix)
    rest = url[len(prefix):]
    # one query, no fragment, nothing that ends a request line, the path's items unchanged in number
    assert rest.count("?") == 1 and "#" not in rest and not any(c in rest for c in " \r\n\t")
    path, _, query = rest.partition("?")
    items = path.split("/")
    assert len(items) == len([i for i in req.app.split("/") if i]) + 1 and ".." not in items and "." not in items
    assert query == "k=v"
    u = parse_url(url)
    app = "/".join(i for i in f"live/{name}".split("/") if i)
    assert (u.app, u.stream, u.raw_query) == (app, name, "k=v")  # the relay's .flv is removed again


@pytest.mark.parametrize("param, query", [
    ("?k=v&t=a%20b", "k=v&t=a%20b"),                  # escapes already there are kept
    ("?k=v?x=1", "k=v%3Fx=1"),                        # a second ? cannot start a second query
    ("?k=v#/../../admin", "k=v%23/../../admin"),      # nor # a fragment
    ("?k=a b\r\nX-Evil: 1", "k=a%20b%0D%0AX-Evil:%201"),  # nor space, CR, LF end the request line
    ("?k=100%", "k=100%25"),                          # a stray % is escaped
    ("?k=é", "k=%C3%A9"),
])
def test_upstream_url_params_stay_one_query(param, query):
    assert upstream_url("flv", "o:1", _req(param=param)) == f"http://o:1/live/s.flv?{query}"
    assert upstream_url("rtmp", "o:1", _req(param=param)) == f"rtmp://o:1/live/s?{query}"
    assert parse_url(upstream_url("rtmp", "o:1", _req(param=param))).raw_query == query


def test_upstream_vhost_is_escaped_as_one_param():
    assert upstream_url("rtmp", "o:1", _req(), vhost="v&x=1 #") == "rtmp://o:1/live/s?vhost=v%26x=1%20%23"


def test_client_urls_decode_names_but_keep_the_request_target():
    u = parse_httpflv_url("http://h/live%2Fx/a%20b.flv?t=a%20b")
    assert (u.app, u.stream, u.file_name, u.raw_query) == ("live/x", "a b", "a b.flv", "t=a%20b")
    assert u.path_with_query == "/live%2Fx/a%20b.flv?t=a%20b"
    r = parse_rtmp_url("rtmp://h/live/a%3Fb?t=1")
    assert (r.app, r.stream, r.stream_with_query) == ("live", "a?b", "a?b?t=1")
