"""livego's HTTP-FLV port (``flv_listen``, livego's 7001): ``/{app}/{room}.flv`` and ``/streams``.

A play is served by srspy's HTTP-FLV player (``srspy.app.http_stream.LiveStream``) from the
room's live source, whatever the vhost's ``http_remux`` says, as livego serves any
published stream there. livego's answers are kept: a path that is not ``/{app}/{room}.flv``
is ``400 invalid path``, a room nobody publishes ``404 invalid path`` (plain text), and
the stream carries ``Access-Control-Allow-Origin: *``. ``/streams`` lists publishers and
players (RTMP and HTTP-FLV) as ``{"publishers": [{"key": "live/room", "id": ...}], ...}``,
without the API's envelope.
"""

from __future__ import annotations

from ...app.http_stream import LiveStream
from ...http.mux import HttpServeMux
from ...request import DEFAULT_VHOST, request_from_http
from .api import go_json, go_text


class FlvPort:
    def __init__(self, plugin):
        self.plugin = plugin
        self.mux = HttpServeMux()
        self.mux.handle("/streams", self.streams)
        self.mux.handle("/", self.play)

    def streams(self, w, r):
        body = go_json(self.plugin.meters.streams())
        h = w.header()
        h["Content-Type"] = "application/json"
        h["Content-Length"] = str(len(body))
        w.write_header(200)
        w.write(body)

    def play(self, w, r):
        path = r.path
        parts = path.lstrip("/").removesuffix(".flv").split("/") if path.endswith(".flv") else []
        if len(parts) != 2 or not all(parts):
            return go_text(w, 400, "invalid path")
        server = self.plugin.server
        source = server.sources.sources.get(f"/{parts[0]}/{parts[1]}")
        if source is None or not source.publishing:
            return go_text(w, 404, "invalid path")
        w.header()["Access-Control-Allow-Origin"] = "*"
        req = request_from_http(path, r.query, r.host, r.remote_ip)
        LiveStream(server, DEFAULT_VHOST, path, req).serve_http(w, r)


__all__ = ["FlvPort"]
