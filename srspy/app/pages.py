"""What srspy's own pages and its start-up banner tell a user: where to push, where to play.

srspy/www holds the pages (the landing page ``/``, the player ``/players/``, the console
``/console/``); srspy/http/static.py serves them after the user's ``http_server.dir``. They
are static files, so the server's ports reach them through one small JSON document,
``GET /srspy.json`` (:class:`InfoHandler`): the ports really bound (``listen 0`` included),
where the API is, whether it asks for credentials, and the play outputs the default vhost
has enabled. The pages build every URL from that and the host name the browser used.

Outputs are found in the config, one function per kind (:func:`play_outputs`): RTMP
always; each ``http_remux`` mount by its extension (``.flv`` HTTP-FLV, ``.ts`` HTTP-TS,
``.aac``/``.mp3``); HLS when the vhost's ``hls`` is on. A new output adds its line there and
appears on the landing page, in the player's list and in the banner.
"""

from __future__ import annotations

import json

from .. import SERVER, __version__
from ..request import DEFAULT_VHOST, Request
from .http_stream import DEFAULT_MOUNT, expand_mount

INFO_PATH = "/srspy.json"
SAMPLE_APP = "live"
SAMPLE_STREAM = "livestream"
#: Output names by the extension of an ``http_remux`` mount.
REMUX_OUTPUTS = {".flv": "HTTP-FLV", ".ts": "HTTP-TS", ".aac": "HTTP-AAC", ".mp3": "HTTP-MP3"}
WS_OUTPUTS = {".flv": "WS-FLV", ".ts": "WS-TS"}
DEFAULT_HLS_M3U8 = "[app]/[stream].m3u8"
_ANY_ADDRESS = ("", "0.0.0.0", "::")
#: ffmpeg's own test picture and tone, encoded as a live stream: nothing to download first.
TEST_SOURCE = ("ffmpeg -re -f lavfi -i testsrc2=size=1280x720:rate=30 -f lavfi -i sine=frequency=440 "
               "-c:v libx264 -preset veryfast -tune zerolatency -g 60 -pix_fmt yuv420p -c:a aac -f flv")


def _sample_request(app: str, stream: str) -> Request:
    req = Request()
    req.vhost, req.app, req.stream = DEFAULT_VHOST, app, stream
    return req


def _as_list(value) -> list[str]:
    if not value:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def play_outputs(server, app: str = SAMPLE_APP, stream: str = SAMPLE_STREAM) -> list[dict]:
    """The ways to play ``app/stream`` of the default vhost, as ``{name, scheme, port, path}``.

    Ports are the ones bound (``server.start()`` has run); the host is left to the caller.
    With ``app="[app]", stream="[stream]"`` the paths are templates.
    """
    out = []
    if server.rtmp_ports:
        out.append({"name": "RTMP", "scheme": "rtmp", "port": server.rtmp_ports[0], "path": f"/{app}/{stream}"})
    vconf = server.config.vhost(DEFAULT_VHOST)
    if vconf is None or server.http_port is None:
        return out
    req = _sample_request(app, stream)
    remux = vconf.get("http_remux") or {}
    if remux.get("enabled"):
        for template in _as_list(remux.get("mount")) or [DEFAULT_MOUNT]:
            path = expand_mount(template, req)
            ext = path[path.rfind("."):] if "." in path.rsplit("/", 1)[-1] else ""
            name = REMUX_OUTPUTS.get(ext.lower())
            if name:
                out.append({"name": name, "scheme": "http", "port": server.http_port, "path": path})
            if ext.lower() in WS_OUTPUTS:  # every .flv and .ts mount answers a WebSocket upgrade too
                out.append({"name": WS_OUTPUTS[ext.lower()], "scheme": "ws", "port": server.http_port, "path": path})
    hls = vconf.get("hls") or {}
    if hls.get("enabled"):
        path = expand_mount(hls.get("hls_m3u8_file") or DEFAULT_HLS_M3U8, req)
        out.append({"name": "HLS", "scheme": "http", "port": server.http_port, "path": path})
    return out


def info(server) -> dict:
    """The document ``/srspy.json`` answers."""
    root = server.config.root
    api = None
    if server.api_port is not None:
        api = {"port": server.api_port, "shared": server.api_port == server.http_port,
               "auth": bool(root["http_api"]["auth"]["enabled"])}
    return {
        "server": SERVER,
        "version": __version__,
        "app": SAMPLE_APP,
        "stream": SAMPLE_STREAM,
        "rtmp": {"port": server.rtmp_ports[0]} if server.rtmp_ports else None,
        "http": {"port": server.http_port} if server.http_port is not None else None,
        "api": api,
        "outputs": [{**out, "template": tpl["path"]}
                    for out, tpl in zip(play_outputs(server), play_outputs(server, "[app]", "[stream]"))],
    }


class InfoHandler:
    """``GET /srspy.json``: :func:`info` of ``server``, never cached."""

    def __init__(self, server):
        self.server = server

    def serve_http(self, w, r):
        body = json.dumps(info(self.server), separators=(",", ":")).encode()
        h = w.header()
        h["Content-Type"] = "application/json"
        h["Cache-Control"] = "no-store"
        h["Content-Length"] = str(len(body))
        w.write_header(200)
        if r.method != "HEAD":
            w.write(body)


def _url(host: str, scheme: str, port: int, path: str) -> str:
    return f"{scheme}://{host}:{port}{path}"


def banner(server) -> str:
    """One log block: where to push and play from, the pages and the API, on the bound ports."""
    host = "127.0.0.1"
    for lst in server.listeners:
        if lst.host not in _ANY_ADDRESS:
            host = f"[{lst.host}]" if ":" in lst.host else lst.host
            break
    lines = [f"{SERVER} is ready (from another machine, use this one's address instead of {host}):"]
    if server.rtmp_ports:
        push = _url(host, "rtmp", server.rtmp_ports[0], f"/{SAMPLE_APP}")
        lines.append(f"  push     OBS server {push}, stream key {SAMPLE_STREAM}")
        lines.append(f"  ffmpeg   {TEST_SOURCE} {push}/{SAMPLE_STREAM}")
    for out in play_outputs(server):
        lines.append(f"  play     {out['name']:<9}{_url(host, out['scheme'], out['port'], out['path'])}")
    if server.http_port is not None:
        web = _url(host, "http", server.http_port, "/")
        lines.append(f"  page     {web}")
        lines.append(f"  player   {web}players/")
        lines.append(f"  console  {web}console/")
    if server.api_port is not None:
        auth = ", Basic auth" if server.config.root["http_api"]["auth"]["enabled"] else ""
        lines.append(f"  api      {_url(host, 'http', server.api_port, '/api/v1/')}{auth}")
    return "\n".join(lines)


def mount(server) -> None:
    """Serve ``/srspy.json`` on the HTTP server (the pages themselves are its static fallback)."""
    server.http.handle(INFO_PATH, InfoHandler(server))


__all__ = ["INFO_PATH", "TEST_SOURCE", "InfoHandler", "banner", "info", "mount", "play_outputs"]
