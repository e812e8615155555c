"""The embedding API: build a Server from a config, plug handlers, run it; plugins."""

import sys
import textwrap

import gevent
import pytest
from helpers.flvclient import FlvPlayer, http_get
from helpers.media import wait_until

from srspy.server import Server

pytestmark = pytest.mark.timeout(30)

CONF = "listen 0; daemon off; http_server { enabled on; listen 0; } vhost __defaultVhost__ { http_remux { enabled on; } }"


@pytest.fixture
def server():
    srv = Server.from_text(CONF)
    yield srv
    with gevent.Timeout(5):
        srv.stop()


def test_handler_kinds(server):
    class Hello:
        def serve_http(self, w, r):
            w.header()["Content-Type"] = "text/plain"
            w.write(f"hello {r.args.get('name', '')}".encode())

    def fn(w, r):
        w.write_header(201)
        w.write(b"created")

    def wsgi_app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [environ["PATH_INFO"].encode()]

    from srspy.http.wsgi import WsgiHandler

    server.http.mux.handle("/hello", Hello())
    server.http.mux.handle("/fn", fn)
    server.http.mux.handle("/admin/", WsgiHandler(wsgi_app, prefix="/admin"))
    server.start()
    assert http_get(server.http_port, "/hello?name=x")[2] == b"hello x"
    status, _, body = http_get(server.http_port, "/fn")
    assert (status, body) == (201, b"created")
    assert http_get(server.http_port, "/admin/a/b")[2] == b"/a/b"
    status, h, _ = http_get(server.http_port, "/admin")
    assert status == 302 and h["location"] == "/admin/"


def test_plugin_from_config_and_command_line(tmp_path, monkeypatch):
    (tmp_path / "myplug.py").write_text(textwrap.dedent('''
        def setup(server):
            server.http.mux.handle("/plug", lambda w, r: w.write(b"from config"))

        def other(server):
            server.http.mux.handle("/other", lambda w, r: w.write(b"from -p"))
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    srv = Server.from_text(CONF + " plugin myplug;")
    srv.load_plugin("myplug:other")  # what `srspy -p myplug:other` does
    srv.start()
    try:
        assert http_get(srv.http_port, "/plug")[2] == b"from config"
        assert http_get(srv.http_port, "/other")[2] == b"from -p"
    finally:
        srv.stop()
    sys.modules.pop("myplug", None)


def test_bad_plugin_is_a_config_error():
    from srspy.errors import ConfigError

    with pytest.raises(ConfigError, match="plugin no_such_module_here"):
        Server.from_text(CONF + " plugin no_such_module_here;")


def test_idle_player_close_is_noticed(make_server):
    """A player of a stream that sends nothing closes its socket: its consumer is freed."""
    from helpers.rtmpraw import RawRtmp

    srv = make_server()
    pub = RawRtmp(srv.rtmp_ports[0])
    pub.handshake()
    pub.publish("idle")
    from srspy.kernel.message import AUDIO, MediaMessage

    pub.send(MediaMessage(AUDIO, 0, 1, b"\xaf\x00\x12\x10"), 4)
    pub.send(MediaMessage(AUDIO, 20, 1, b"\xaf\x01" + b"a" * 20), 4)
    p = FlvPlayer(srv.http_port, "/live/idle.flv")
    assert p.read_head() == 200
    src = srv.sources.sources["/live/idle"]
    assert len(src.consumers) == 1
    p.close()
    t0 = gevent.time.time()
    wait_until(lambda: not src.consumers, 4, what="the closed player's consumer gone")
    assert gevent.time.time() - t0 < 4
