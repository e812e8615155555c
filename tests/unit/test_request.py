"""SrsRequest's identification: tcUrl and stream name, then strip()."""

from srspy.request import DEFAULT_APP, Request, discover_tc_url


def test_strip_removes_blanks_everywhere_and_slashes_around():
    req = discover_tc_url("rtmp://ex ample.com:1936/li ve\t/", "/str\r\neam/?token=a b", Request())
    assert (req.host, req.vhost, req.port) == ("example.com", "example.com", 1936)
    assert (req.app, req.stream, req.param) == ("live", "stream", "?token=a b")
    assert req.stream_url == "example.com/live/stream"


def test_app_and_stream_from_the_tc_url_alone():
    req = discover_tc_url("rtmp://127.0.0.1/live/cam1", "", Request())
    assert (req.vhost, req.app, req.stream) == ("127.0.0.1", "live", "cam1")
    req = discover_tc_url("rtmp://127.0.0.1", "s", Request())
    assert (req.app, req.stream, req.port) == (DEFAULT_APP, "s", 1935)
