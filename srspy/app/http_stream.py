"""Port of SrsHttpStreamServer, SrsLiveEntry and SrsLiveStream: HTTP-FLV.

On publish the server mounts the vhost's ``http_remux.mount`` template expanded for the
stream (``[vhost]/[app]/[stream].flv``; ``__defaultVhost__/`` stripped) into the stream
mux; on unpublish it unmounts it and every player gets a clean end of body. A player
reads from a LiveConsumer and sends each merged batch of FLV tags as ONE HTTP chunk with
ONE sendmsg (DESIGN.md, the hot path).
"""

from __future__ import annotations

import re
import time

from loguru import logger

from ..errors import AccessDenied, ClientClosed
from ..kernel.flv import FlvTagPacker, flv_header
from ..kernel.codec import F_SEQUENCE_HEADER
from ..live.consumer import Sink
from ..request import DEFAULT_VHOST, Request, request_from_http
from ..kernel.message import AUDIO, VIDEO

FLV_PLAY = "flv-play"
GUESS_MIN_FRAMES = 30  # frames of one kind, none of the other, before the other is ruled out
DEFAULT_MOUNT = "[vhost]/[app]/[stream].flv"


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


class LiveEntry:
    """One mounted stream: its request, mount path and handler."""

    def __init__(self, req: Request, mount: str, stream: "LiveStream"):
        self.req = req
        self.mount = mount
        self.stream = stream
        self.enabled = True


class LiveStream:
    """Port of SrsLiveStream: serves one stream to HTTP-FLV players."""

    def __init__(self, server, vhost: str, mount: str, req: Request | None = None):
        self.server = server
        self.vhost = vhost
        self.mount = mount
        self.req = req
        self.players: set = set()

    def serve_http(self, w, r):
        srv = self.server
        conn = r.conn
        cid = getattr(conn, "cid", "")
        req = request_from_http(r.path, r.query, r.host, r.remote_ip, page_url=r.header("Referer") or "")
        if self.req is not None:  # a mounted stream: play what was mounted, whatever the template
            req.app, req.stream = self.req.app, self.req.stream
        found = srv.config.resolve_vhost(self.vhost if self.vhost else req.vhost)
        if found is None:
            return _not_found(w)
        req.vhost, vconf = found
        srv.stat.on_client(cid, req, conn, FLV_PLAY)
        try:
            srv.check_access(vconf, "play", req)
            srv.hooks.on_play(req, cid)
        except AccessDenied as e:
            srv.stat.on_disconnect(cid)
            logger.warning("flv: play of {} refused: {}", req.stream_url, e)
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
                source.consumer_dumps(consumer)
            elif self._wait_publisher(consumer, source, remux["wait_publisher"]):
                # there before the publisher, as SRS's consumer: everything it published
                consumer.start_at([], source.epoch_start, False)
            else:
                return _not_found(w)
            logger.info("flv: start play {}, mount={}", req.stream_url, self.mount)
            self._serve(w, conn, consumer, remux, vconf)
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

    def _serve(self, w, conn, consumer, remux: dict, vconf: dict):
        h = w.header()
        h["Connection"] = "Close"
        h["Content-Type"] = "video/x-flv"
        w.write_header(200)
        player = _FlvPlayer(w, conn, consumer, remux)
        watcher = conn.watch_close(player.on_peer_close)
        try:
            player.run()
        finally:
            consumer.sink = None
            watcher.kill(block=False)


class _FlvPlayer(Sink):
    """The send side of one HTTP-FLV player: its greenlet's loop, and the consumer's sink,
    the same writes done from the hub while this greenlet is parked (no switch)."""

    __slots__ = ("w", "conn", "consumer", "packer", "header", "has_audio", "has_video", "drop",
                 "guess", "held", "closed", "remux", "_variant")

    def __init__(self, w, conn, consumer, remux: dict):
        self.w = w
        self.conn = conn
        self.consumer = consumer
        self.packer = FlvTagPacker()
        self.header = None
        self.has_audio = self.has_video = True
        self.drop = remux["drop_if_not_match"]
        self.guess = remux["guess_has_av"]
        self.remux = remux
        self.held: list = []  # a first batch with neither audio nor video waits for media
        self.closed = False
        self._variant = None

    def on_peer_close(self):
        self.closed = True
        self.consumer.sink = None
        self.consumer.wakeup()

    def run(self):
        consumer = self.consumer
        w = self.w
        while True:
            # woken, never polled: by the source (a merged write due, an event, a publisher
            # that paused) or by the close watcher when the client goes away
            consumer.wait(None)
            if self.closed or self.conn.closed:
                raise ClientClosed("flv: player closed")
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
                logger.info("flv: stream unpublished, end of body")
                w.final_request()
                return
            if self.header is not None and not self.closed and consumer.sink is None:
                drop = self.drop
                self._variant = ("flv", self.has_audio or not drop, self.has_video or not drop, self.w.chunked)
                consumer.sink = self

    def _pack(self, msgs: list):
        bufs = []
        if self.header is None:
            if self.guess:
                guessed = guess_av(msgs)
                if guessed is None:
                    self.held = msgs
                    return None
                self.has_audio, self.has_video = guessed
            else:
                self.has_audio, self.has_video = self.remux["has_audio"], self.remux["has_video"]
            self.header = flv_header(self.has_audio, self.has_video)
            bufs.append(self.header)
        self._tags(msgs, self.consumer.timestamp_base(), bufs)
        return bufs

    def _tags(self, msgs: list, base: int, bufs: list) -> int:
        """The FLV tags of ``msgs`` (without the kinds the header rules out, when asked)."""
        if self.drop and not (self.has_audio and self.has_video):
            a, v = self.has_audio, self.has_video
            msgs = [m for m in msgs if (m.type != AUDIO or a) and (m.type != VIDEO or v)]
        return self.packer.iovecs(msgs, base, bufs)

    # -- Sink: in the hub, while run() is parked -------------------------------------
    def variant(self):
        if self.closed or self.w.backlog is not None:
            return None
        return self._variant

    def pack_shared(self, msgs: list, base: int) -> tuple:
        bufs = []
        size = self._tags(msgs, base, bufs)
        iov, wire = self.w.chunk_iov(bufs, size)
        return iov, wire, size

    def send_shared(self, iov: list, wire: int, media: int) -> bool:
        return self.w.try_send_body(iov, wire, media)


def guess_av(msgs: list):
    """SRS's guess_has_av over a first batch: (has_audio, has_video), None if neither.

    A kind with frames in the batch is present. A kind with only a sequence header counts
    as present too, unless the batch holds many frames of the other kind and none of its
    own (SRS's rule for a stream that declares audio or video and never sends it); srspy's
    first write is small, so a few video frames without audio yet are not enough to drop
    the audio."""
    audios = videos = audio_frames = video_frames = 0
    for m in msgs:
        if m.type == AUDIO:
            audios += 1
            if not m.flags & F_SEQUENCE_HEADER:
                audio_frames += 1
        elif m.type == VIDEO:
            videos += 1
            if not m.flags & F_SEQUENCE_HEADER:
                video_frames += 1
    has_audio, has_video = audios > 0, videos > 0
    if video_frames >= GUESS_MIN_FRAMES and not audio_frames:
        has_audio = False
    if audio_frames >= GUESS_MIN_FRAMES and not video_frames:
        has_video = False
    if not has_audio and not has_video:
        return None
    return has_audio, has_video


def _not_found(w):
    body = b"Not Found"
    h = w.header()
    h["Content-Type"] = "text/plain; charset=utf-8"
    h["Content-Length"] = str(len(body))
    w.write_header(404)
    w.write(body)


class HttpStreamServer:
    """Port of SrsHttpStreamServer: templates per vhost, mount on publish, unmount on unpublish."""

    def __init__(self, server, mux):
        self.server = server
        self.mux = mux
        self.entries: dict[str, LiveEntry] = {}
        self.templates: dict[str, str] = {}
        self.regexes: dict[str, re.Pattern] = {}
        self.reload_templates()
        mux.hijack(self)

    def reload_templates(self):
        self.templates.clear()
        self.regexes.clear()
        cfg = self.server.config
        for name in cfg.vhost_names():
            remux = cfg.vhost(name)["http_remux"]
            if remux["enabled"]:
                self.templates[name] = remux["mount"] or DEFAULT_MOUNT
                self.regexes[name] = template_regex(self.templates[name])

    def http_mount(self, req: Request):
        template = self.templates.get(req.vhost)
        if template is None:
            return
        sid = req.stream_url
        old = self.entries.pop(sid, None)
        if old is not None:
            self.mux.unhandle(old.mount)
        mount = expand_mount(template, req)
        stream = LiveStream(self.server, req.vhost, mount, req.copy())
        entry = LiveEntry(req.copy(), mount, stream)
        self.mux.handle(mount, stream)
        self.entries[sid] = entry
        logger.info("http: mount flv stream for sid={}, mount={}", sid, mount)

    def http_unmount(self, req: Request):
        entry = self.entries.pop(req.stream_url, None)
        if entry is None:
            return
        entry.enabled = False
        self.mux.unhandle(entry.mount)
        logger.info("http: unmount flv stream for sid={}, mount={}", req.stream_url, entry.mount)

    # -- hijack: wait for a publisher when the vhost asks for it ----------------------
    def hijack(self, r, handler):
        if handler is not None and getattr(handler, "serve_http", None) is not None and not _is_not_found(handler):
            return None
        if not self.templates:
            return None
        req = request_from_http(r.path, r.query, r.host, r.remote_ip)
        found = self.server.config.resolve_vhost(req.vhost)
        if found is None:
            return None
        vhost, vconf = found
        regex = self.regexes.get(vhost)
        if regex is None or not vconf["http_remux"]["wait_publisher"]:
            return None
        if not regex.match(r.path):
            return None
        req.vhost = vhost
        return LiveStream(self.server, vhost, r.path, req)


def _is_not_found(handler) -> bool:
    return type(handler).__name__ == "NotFoundHandler"
