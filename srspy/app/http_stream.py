"""Port of SrsHttpStreamServer, SrsLiveEntry and SrsLiveStream: the HTTP stream players.

On publish the server mounts each of the vhost's ``http_remux.mount`` templates expanded
for the stream (``[vhost]/[app]/[stream].flv``, ``.ts``, ``.aac``, ``.mp3``;
``__defaultVhost__/`` stripped) into the stream mux; on unpublish it unmounts them and
every player gets a clean end of body. The template's extension picks the container: one
generic player (``HttpStreamPlayer``) reads a LiveConsumer and sends each merged batch,
made by the container's muxer (muxer.py), as ONE HTTP chunk with ONE sendmsg; while it is
parked, the hub does the same writes for it (docs/architecture.md, the hot path).
"""

from __future__ import annotations

import re
import time

from loguru import logger

from ..config import is_edge
from ..errors import AccessDenied, ClientClosed, HttpError
from ..http import ws
from ..live.consumer import Sink
from ..live.hub import SourceListener
from ..request import DEFAULT_VHOST, Request, request_from_http
from .stream_aac import AacMuxer
from .stream_flv import FlvMuxer
from .stream_mp3 import Mp3Muxer
from .stream_ts import TsStreamMuxer

FLV_PLAY = "flv-play"  # SRS's client type for every http_remux container
DEFAULT_MOUNT = "[vhost]/[app]/[stream].flv"

#: The containers, by the mount template's extension.
MUXERS = {m.ext: m for m in (FlvMuxer, TsStreamMuxer, AacMuxer, Mp3Muxer)}


def expand_mount(template: str, req: Request) -> str:
    """The mount path of a stream: template expanded, the default vhost's prefix stripped."""
    mount = template.replace("[vhost]", req.vhost).replace("[app]", req.app).replace("[stream]", req.stream)
    if mount.startswith(DEFAULT_VHOST + "/"):
        mount = mount[len(DEFAULT_VHOST):]
    elif not mount.startswith("/") and req.vhost == DEFAULT_VHOST:
        mount = "/" + mount
    return mount


def template_regex(template: str) -> re.Pattern:
    """A regex of the paths a template can produce (SRS's slash-count and extension rule)."""
    t = template
    if t.startswith("[vhost]/"):
        t = t[len("[vhost]"):]
    out = re.escape(t)
    out = out.replace(re.escape("[vhost]"), "[^/]+").replace(re.escape("[app]"), "(?P<app>[^/]+)")
    out = out.replace(re.escape("[stream]"), "(?P<stream>[^/]+)")
    if not out.startswith("/"):
        out = "/" + out
    return re.compile(out + r"\Z")


def template_ext(template: str) -> str:
    dot = template.rfind(".")
    return template[dot:].lower() if dot > template.rfind("/") else ""


def admit_player(srv, vconf: dict, req, cid: str, conn, type_: str) -> AccessDenied | None:
    """A player of ``req`` joins the statistics as ``type_``, then the vhost's security
    rules and the on_play hook decide; a refusal (returned) takes it out again."""
    srv.stat.on_client(cid, req, conn, type_)
    try:
        srv.check_access(vconf, "play", req)
        srv.hooks.on_play(req, cid)
    except AccessDenied as e:
        srv.stat.on_disconnect(cid)
        logger.warning("http: play of {} refused: {}", req.stream_url, e)
        return e
    return None


class LiveEntry:
    """One mounted stream: its request, mount path and handler."""

    def __init__(self, req: Request, mount: str, stream: "LiveStream"):
        self.req = req
        self.mount = mount
        self.stream = stream
        self.enabled = True


class LiveStream:
    """Port of SrsLiveStream: serves one stream to the players of one container."""

    def __init__(self, server, vhost: str, mount: str, req: Request | None = None, muxer=FlvMuxer):
        self.server = server
        self.vhost = vhost
        self.mount = mount
        self.req = req
        self.muxer = muxer
        self.players: set = set()

    def serve_http(self, w, r):
        srv = self.server
        conn = r.conn
        cid = getattr(conn, "cid", "")
        upgrade = None
        if ws.is_websocket(r):  # WS-FLV, WS-TS: the same stream in WebSocket messages
            if not self.muxer.websocket:
                raise HttpError(400, f"websocket: not served for {self.muxer.ext}")
            upgrade = ws.accept(r)
        req = request_from_http(r.path, r.query, r.host, r.remote_ip, page_url=r.header("Referer") or "")
        if self.req is not None:  # a mounted stream: play what was mounted, whatever the template
            req.app, req.stream = self.req.app, self.req.stream
        found = srv.config.resolve_vhost(self.vhost if self.vhost else req.vhost)
        if found is None:
            return _not_found(w)
        req.vhost, vconf = found
        e = admit_player(srv, vconf, req, cid, conn, FLV_PLAY)
        if e is not None:
            w.header()["Content-Type"] = "text/plain; charset=utf-8"
            w.write_header(403)
            w.write(f"Forbidden: {e}\n".encode())
            return
        source = srv.sources.fetch_or_create(req)
        play = vconf["play"]
        remux = vconf["http_remux"]
        consumer = source.create_consumer(0 if vconf["min_latency"] else play["mw_msgs"], play["mw_latency"], owner=conn)
        self.players.add(consumer)
        try:
            if source.publishing:
                back = int(remux["fast_cache"] * 1000) if self.muxer.audio_only else 0
                source.consumer_dumps(consumer, back_ms=back)
            elif self._wait_publisher(consumer, source, remux["wait_publisher"]):
                # there before the publisher, as SRS's consumer: everything it published
                consumer.start_at([], source.publish_start, False)
            else:
                return _not_found(w)
            logger.info("{}: start play {}, mount={}", "websocket" if upgrade else "http", req.stream_url, self.mount)
            if upgrade is not None:
                w.hijacked()  # the connection writes nothing more of its own
                wsconn, handshake = upgrade
                w = ws.WsWriter(conn.sock, conn=conn, ws=wsconn, handshake=handshake)
                self._serve(w, conn, consumer, self.muxer(source, remux), r.upgrade_data)
            else:
                self._serve(w, conn, consumer, self.muxer(source, remux))
        finally:
            self.players.discard(consumer)
            consumer.dispose()
            srv.hooks.on_stop(req, cid)

    @staticmethod
    def _wait_publisher(consumer, source, seconds: float) -> bool:
        """For on-demand publishing (an on_play hook starts one): wait up to ``seconds``."""
        deadline = time.monotonic() + seconds
        while not source.publishing:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            consumer.wait(min(left, 1.0))
            consumer.pop_events()
        consumer.epoch = source.epoch  # start at this publish, not as a republish
        return True

    def _serve(self, w, conn, consumer, muxer, upgrade_data: bytes | None = None):
        h = w.header()
        h["Connection"] = "Close"
        h["Content-Type"] = muxer.content_type
        w.write_header(200)
        player = HttpStreamPlayer(w, conn, consumer, muxer)
        if upgrade_data is None:
            watcher = conn.watch_close(player.on_peer_close)
        else:
            watcher = conn.watch_close(player.on_peer_close, player.on_ws_data)
            if upgrade_data:
                player.on_ws_data(upgrade_data)
        try:
            player.run()
        finally:
            consumer.sink = None
            watcher.kill(block=False)


class HttpStreamPlayer(Sink):
    """The send side of one HTTP stream player, whatever the container: its greenlet's
    loop, and the consumer's sink, the same writes done from the hub while this greenlet
    is parked (no switch)."""

    __slots__ = ("w", "conn", "consumer", "muxer", "started", "held", "closed", "_variant")

    def __init__(self, w, conn, consumer, muxer):
        self.w = w
        self.conn = conn
        self.consumer = consumer
        self.muxer = muxer
        self.started = False  # the header went out
        self.held: list = []  # a first batch the muxer cannot start with yet waits for more
        self.closed = False
        self._variant = None

    def on_peer_close(self):
        self.closed = True
        self.consumer.sink = None
        self.consumer.wakeup()

    def on_ws_data(self, data: bytes):
        """A WebSocket player's frames (in the event loop): pings answered, a close ends it."""
        if not self.w.on_data(data):
            self.on_peer_close()
        elif self.w.backlog is not None:
            self.consumer.wakeup()  # a control frame waits behind an unsent rest: flush it

    def run(self):
        consumer = self.consumer
        w = self.w
        while True:
            # woken, never polled: by the source (a merged write due, an event, a publisher
            # that paused) or by the close watcher when the client goes away
            consumer.wait(None)
            if self.closed or self.conn.closed:
                raise ClientClosed("http: player closed")
            w.flush()
            ending = "unpublish" in consumer.pop_events()
            while True:  # once unpublished, send what is still queued, then end the body
                msgs = consumer.dump()
                if self.held and msgs:
                    msgs, self.held = self.held + msgs, []
                if not msgs:
                    break
                bufs = self._pack(msgs)
                if bufs is None:
                    break
                w.writev(bufs)
                if not ending:
                    break
            if ending:
                logger.info("http: stream unpublished, end of body")
                w.final_request()
                return
            if self.started and not self.closed and consumer.sink is None:
                self._variant = (self.muxer.variant(), self.w.framing)
                consumer.sink = self

    def _pack(self, msgs: list):
        bufs = []
        if not self.started:
            head = self.muxer.header(msgs)
            if head is None:
                self.held = msgs
                return None
            self.started = True
            if head:
                bufs.append(head)
        self.muxer.pack(msgs, self.consumer.timestamp_base(), bufs)
        return bufs

    # -- Sink: in the hub, while run() is parked -------------------------------------
    def variant(self):
        if self.closed or self.w.backlog is not None:
            return None
        return self._variant

    def pack_shared(self, msgs: list, base: int) -> tuple:
        bufs = []
        size = self.muxer.pack(msgs, base, bufs)
        iov, wire = self.w.chunk_iov(bufs, size)
        return iov, wire, size

    def send_shared(self, iov: list, wire: int, media: int) -> bool:
        return self.w.try_send_body(iov, wire, media)


def _not_found(w):
    body = b"Not Found"
    h = w.header()
    h["Content-Type"] = "text/plain; charset=utf-8"
    h["Content-Length"] = str(len(body))
    w.write_header(404)
    w.write(body)


class HttpStreamServer(SourceListener):
    """Port of SrsHttpStreamServer: templates per vhost, mount on publish, unmount on
    unpublish (a listener of the source manager), and the players of streams not mounted
    yet: an edge stream nobody plays yet (its first player starts the pull), or a vhost
    whose players wait for their publisher (``http_remux.wait_publisher``)."""

    def __init__(self, server, mux):
        self.server = server
        self.mux = mux
        self.entries: dict[str, list[LiveEntry]] = {}
        self.templates: dict[str, list[str]] = {}
        self.regexes: dict[str, list[tuple[re.Pattern, type]]] = {}
        self.reload_templates()
        mux.hijack(self)

    def reload_templates(self):
        self.templates.clear()
        self.regexes.clear()
        cfg = self.server.config
        for name in cfg.vhost_names():
            remux = cfg.vhost(name)["http_remux"]
            if not remux["enabled"]:
                continue
            templates = [t for t in (remux["mount"] or [DEFAULT_MOUNT]) if template_ext(t) in MUXERS]
            for t in remux["mount"] or []:
                if template_ext(t) not in MUXERS:
                    logger.warning("http: vhost {} mount {}: no such container (one of {})", name, t, " ".join(MUXERS))
            self.templates[name] = templates
            self.regexes[name] = [(template_regex(t), MUXERS[template_ext(t)]) for t in templates]

    # -- the source manager's listener ---------------------------------------------------
    def on_publish(self, source):
        self.http_mount(source.req)

    def on_unpublish(self, source):
        self.http_unmount(source.req)

    def http_mount(self, req: Request):
        templates = self.templates.get(req.vhost)
        if not templates:
            return
        self.http_unmount(req, quiet=True)
        sid = req.stream_url
        entries = []
        for template in templates:
            mount = expand_mount(template, req)
            stream = LiveStream(self.server, req.vhost, mount, req.copy(), MUXERS[template_ext(template)])
            self.mux.handle(mount, stream)
            entries.append(LiveEntry(req.copy(), mount, stream))
            logger.info("http: mount {} stream for sid={}, mount={}", stream.muxer.ext[1:], sid, mount)
        self.entries[sid] = entries

    def http_unmount(self, req: Request, quiet: bool = False):
        for entry in self.entries.pop(req.stream_url, []):
            entry.enabled = False
            self.mux.unhandle(entry.mount)
            if not quiet:
                logger.info("http: unmount stream for sid={}, mount={}", req.stream_url, entry.mount)

    # -- hijack: streams not mounted yet ---------------------------------------------------
    def hijack(self, r, handler):
        if handler is not None and not _is_not_found(handler):
            return None
        if not self.templates:
            return None
        req = request_from_http(r.path, r.query, r.host, r.remote_ip)
        found = self.server.config.resolve_vhost(req.vhost)
        if found is None:
            return None
        vhost, vconf = found
        if not (vconf["http_remux"]["wait_publisher"] or is_edge(vconf)):
            return None
        for regex, muxer in self.regexes.get(vhost, ()):
            if regex.match(r.path):
                req.vhost = vhost
                return LiveStream(self.server, vhost, r.path, req, muxer)
        return None


def _is_not_found(handler) -> bool:
    return type(handler).__name__ == "NotFoundHandler"
