"""srspy's own pages over real sockets: served after the user's files, /srspy.json, the banner, CORS."""

import base64
import json
import pathlib
import re

import pytest
from helpers.flvclient import FlvPlayer, http_get
from helpers.media import publish_args, wait_published, wait_until
from helpers.net import free_port, rtmp_url

from srspy.app import pages
from srspy.http.static import WWW_DIR

pytestmark = pytest.mark.timeout(60)

AUTH = "auth { enabled on; username admin; password secret; }"
BASIC = {"Authorization": "Basic " + base64.b64encode(b"admin:secret").decode()}


@pytest.mark.parametrize("path, ctype, marker", [
    ("/", "text/html; charset=utf-8", b"Push a stream, then play it"),
    ("/players/", "text/html; charset=utf-8", b"srspy player"),
    ("/console/", "text/html; charset=utf-8", b"srspy console"),
    ("/srspy.css", "text/css; charset=utf-8", b"--accent"),
    ("/srspy.js", "text/javascript; charset=utf-8", b"window.srspy"),
    ("/js/mpegts.js", "text/javascript; charset=utf-8", b"mpegts"),
    ("/js/hls.min.js", "text/javascript; charset=utf-8", b"Hls"),
    ("/js/LICENSE.mpegts.js.txt", "text/plain; charset=utf-8", b"Apache License"),
    ("/js/LICENSE.hls.js.txt", "text/plain; charset=utf-8", b"Apache License"),
])
def test_built_in_pages_and_players_are_served(make_server, path, ctype, marker):
    srv = make_server()
    status, h, body = http_get(srv.http_port, path)
    assert status == 200 and h["content-type"] == ctype and marker in body
    assert int(h["content-length"]) == len(body)


def test_pages_request_nothing_from_other_sites():
    """Every page's scripts, styles, links and icons are local, and no code names another site."""
    for page in ("index.html", "players/index.html", "console/index.html", "srspy.js", "srspy.css"):
        text = (pathlib.Path(WWW_DIR) / page).read_text()
        refs = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", text) + re.findall(r"url\(([^)]*)\)", text)
        assert page.endswith((".js", ".css")) or refs, page
        assert all(not re.match(r"^(?:[a-z]+:)?//", r) or r.startswith("data:") for r in refs), (page, refs)
        assert not re.findall(r"\b(?:https?|wss?)://[a-z0-9-]+\.[a-z0-9.-]+", text), page


def test_a_users_file_wins_then_the_built_in_page(make_server, tmp_path):
    srv = make_server()
    html = tmp_path / "html"
    (html / "players").mkdir()
    (html / "index.html").write_text("<p>my own start page</p>")
    (html / "players" / "index.html").write_text("<p>my own player</p>")
    assert http_get(srv.http_port, "/")[2] == b"<p>my own start page</p>"
    assert http_get(srv.http_port, "/players/")[2] == b"<p>my own player</p>"
    assert b"srspy console" in http_get(srv.http_port, "/console/")[2]  # not in the user's dir: srspy's
    (html / "players" / "index.html").unlink()
    assert b"srspy player" in http_get(srv.http_port, "/players/")[2]
    assert http_get(srv.http_port, "/missing.html")[:3:2] == (404, b"Not Found")


def test_a_page_folder_without_its_slash_redirects(make_server):
    srv = make_server()
    status, h, _ = http_get(srv.http_port, "/players?url=x")
    assert status == 301 and h["location"] == "/players/?url=x"
    status, h, _ = http_get(srv.http_port, "/console")
    assert status == 301 and h["location"] == "/console/"


def test_pages_dont_hide_the_api_when_it_is_elsewhere(make_server):
    srv = make_server(extra=f"http_api {{ enabled on; listen {free_port()}; }}")
    assert http_get(srv.http_port, "/api/v1/versions")[0] == 404


def test_info_names_the_bound_ports_and_outputs(make_server):
    api_port = free_port()
    srv = make_server(extra=f"http_api {{ enabled on; listen {api_port}; {AUTH} }}")
    status, h, body = http_get(srv.http_port, "/srspy.json")
    assert status == 200 and h["content-type"] == "application/json" and h["cache-control"] == "no-store"
    doc = json.loads(body)
    assert doc["rtmp"] == {"port": srv.rtmp_ports[0]} and doc["http"] == {"port": srv.http_port}
    assert doc["api"] == {"port": api_port, "shared": False, "auth": True}
    assert (doc["app"], doc["stream"]) == ("live", "livestream")
    assert doc["outputs"] == [
        {"name": "RTMP", "scheme": "rtmp", "port": srv.rtmp_ports[0], "path": "/live/livestream",
         "template": "/[app]/[stream]"},
        {"name": "HTTP-FLV", "scheme": "http", "port": srv.http_port, "path": "/live/livestream.flv",
         "template": "/[app]/[stream].flv"},
        {"name": "WS-FLV", "scheme": "ws", "port": srv.http_port, "path": "/live/livestream.flv",
         "template": "/[app]/[stream].flv"},
    ]
    assert http_get(srv.http_port, "/srspy.json", method="HEAD")[2] == b""


@pytest.mark.parametrize("remux, expected", [
    ("http_remux { enabled on; mount [vhost]/[app]/[stream].ts; }",
     [("HTTP-TS", "/live/livestream.ts"), ("WS-TS", "/live/livestream.ts")]),
    ("http_remux { enabled on; mount [vhost]/[app]/[stream].aac; }", [("HTTP-AAC", "/live/livestream.aac")]),
    ("http_remux { enabled on; mount [vhost]/[app]/[stream].mp3; }", [("HTTP-MP3", "/live/livestream.mp3")]),
    ("http_remux { enabled on; mount [vhost]/[app]/[stream]/live.flv; }",
     [("HTTP-FLV", "/live/livestream/live.flv"), ("WS-FLV", "/live/livestream/live.flv")]),
    ("http_remux { enabled on; mount [vhost]/[app]/[stream].flv [vhost]/[app]/[stream].mp3; }",
     [("HTTP-FLV", "/live/livestream.flv"), ("WS-FLV", "/live/livestream.flv"), ("HTTP-MP3", "/live/livestream.mp3")]),
    ("http_remux { enabled off; }", []),
])
def test_outputs_follow_the_remux_mount(make_server, remux, expected):
    srv = make_server(remux=remux)
    outs = pages.play_outputs(srv)
    assert outs[0]["name"] == "RTMP"
    assert [(o["name"], o["path"]) for o in outs[1:]] == expected


def test_banner_logged_at_start_with_every_url(make_server, capsys):
    api_port = free_port()
    srv = make_server(extra=f"http_api {{ enabled on; listen {api_port}; {AUTH} }}", level="info")
    log = capsys.readouterr().err
    assert log.count("is ready") == 1, log
    text = log[log.index("is ready"):]
    r, h = srv.rtmp_ports[0], srv.http_port
    for want in (f"OBS server rtmp://127.0.0.1:{r}/live, stream key livestream",
                 f"-f flv rtmp://127.0.0.1:{r}/live/livestream",
                 f"RTMP     rtmp://127.0.0.1:{r}/live/livestream",
                 f"HTTP-FLV http://127.0.0.1:{h}/live/livestream.flv",
                 f"page     http://127.0.0.1:{h}/\n", f"player   http://127.0.0.1:{h}/players/",
                 f"console  http://127.0.0.1:{h}/console/", f"api      http://127.0.0.1:{api_port}/api/v1/, Basic auth"):
        assert want in text, (want, text)


def test_preflight_allows_the_authorization_header_on_a_dedicated_api_port(make_server):
    api_port = free_port()
    srv = make_server(extra=f"http_api {{ enabled on; listen {api_port}; {AUTH} }}")
    status, h, body = http_get(api_port, "/api/v1/streams/", method="OPTIONS", headers={
        "Origin": f"http://127.0.0.1:{srv.http_port}", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization"})
    assert status == 200 and body == b""
    allowed = [v.strip().lower() for v in h["access-control-allow-headers"].split(",")]
    assert "authorization" in allowed and "*" in allowed
    assert h["access-control-allow-origin"] == "*"
    status, h, _ = http_get(api_port, "/api/v1/streams/", headers={"Origin": "http://x", **BASIC})
    assert status == 200 and h["access-control-allow-origin"] == "*"


def test_jsonp_kick_as_srs_console_sends_it(make_server, procs, short_flv):
    """SRS's own console reads the API by JSONP and kicks with ``?method=DELETE`` (when
    ``jsonp_method_override`` is on, see the README)."""
    srv = make_server(extra=f"http_api {{ enabled on; listen 0; jsonp_method_override on; {AUTH} }}")
    procs(publish_args(short_flv, rtmp_url(srv), loop=True))
    wait_published(srv)
    player = FlvPlayer(srv.http_port, "/live/s.flv")
    assert player.read_head() == 200
    status, h, body = http_get(srv.http_port, "/api/v1/clients/?callback=cb", headers=BASIC)
    assert status == 200 and h["content-type"] == "text/javascript" and body.startswith(b"cb(")
    clients = json.loads(body[3:-1])["clients"]
    cid = next(c["id"] for c in clients if c["type"] == "flv-play")
    body = http_get(srv.http_port, f"/api/v1/clients/{cid}?callback=k&method=DELETE", headers=BASIC)[2]
    assert body.startswith(b'k({"code":0')
    player.pump(5, until=lambda q: q.ended or q.eof)
    assert player.ended or player.eof
    wait_until(lambda: cid not in srv.stat.clients, 5, what="the kicked client gone")
    player.close()
