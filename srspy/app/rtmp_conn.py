"""Port of SrsRtmpConn: the greenlet serving one RTMP client, publisher or player.

handshake -> connect_app -> (on_connect) -> identify_client -> publishing() or playing();
an FMLE unpublish or a closeStream loops back to identify_client, as SRS does.
"""

from __future__ import annotations

import socket
import time

import gevent
from loguru import logger

from ..errors import (
    ERROR_RTMP_NO_VHOST, ERROR_RTMP_STREAM_NAME_EMPTY, AccessDenied, ClientClosed, RtmpProtocolError, SrsError,
    StreamBusyError,
    Timeout, is_client_gracefully_close,
)
from ..live.consumer import Sink
from ..log import new_cid, spawn_with_context
from ..request import Request, discover_tc_url
from ..kernel.message import AMF0_COMMAND, AMF3_COMMAND, MediaMessage
from ..rtmp.protocol import decode_command
from ..rtmp.server import FMLE_PUBLISH, HAIVISION_PUBLISH, RTMP_PLAY, RtmpServer, transaction_id

RTMP_TIMEOUT = 30.0  # SRS_CONSTS_RTMP_TIMEOUT
MAX_QUEUED_COMMANDS = 64  # a player's commands not handled yet (it sends pause, seek... rarely)
PAUSED_RECV_TIMEOUT = 180.0


class _Republish(Exception):
    """The client unpublished (FMLE) or closed its stream: identify it again."""


class RtmpConn:
    """One RTMP connection. ``server`` gives config, sources, hooks, stat and security."""

    is_relay = False  # a publisher the edge did not start (forward.py forwards its streams)

    def __init__(self, server, sock, addr):
        self.server = server
        self.sock = sock
        self.ip = addr[0]
        self.port = addr[1]
        self.cid = new_cid()
        limits = server.config.root["limits"]
        self.rtmp = RtmpServer(sock, server.max_message_size, max_chunk_streams=limits["rtmp_chunk_streams"],
                               max_pending_bytes=limits["rtmp_pending_bytes"])
        self.req = Request()
        self.req.ip = self.ip
        self.type = ""
        self.start_time = time.time()
        self.expired = False
        self.connected = False
        self.failed = False  # ended on an error, not a disconnect: counted in srs_clients_errs_total
        self.consumer = None
        self._recv_error = None
        self._commands: list = []
        self._read_watch = None  # while playing: starts the recv greenlet when the player sends

    # -- stats ---------------------------------------------------------------------
    @property
    def send_bytes(self) -> int:
        return self.rtmp.proto.send_bytes

    @property
    def recv_bytes(self) -> int:
        return self.rtmp.proto.recv_bytes

    @property
    def publishing_now(self) -> bool:
        return self.type not in ("", RTMP_PLAY)

    # -- lifecycle -------------------------------------------------------------------
    def serve(self):
        with logger.contextualize(cid=self.cid, ip=self.ip):
            logger.info("RTMP client ip={}:{}, fd={}", self.ip, self.port, self.sock.fileno())
            try:
                self.do_cycle()
            except BaseException as e:  # noqa: BLE001 - the top of the greenlet
                self._log_end(e)
                if not isinstance(e, Exception):
                    raise
            finally:
                self._cleanup()

    def _log_end(self, e: BaseException):
        if self.expired or is_client_gracefully_close(e) or isinstance(e, gevent.GreenletExit):
            logger.info("client disconnect peer. ret={}", getattr(e, "code", 0) or e.__class__.__name__)
        elif isinstance(e, TimeoutError):  # socket.timeout: a player's write blocked (limits.send_timeout)
            self.failed = True
            logger.warning("dropped: the socket blocked over {}s (limits.send_timeout)", self.sock.gettimeout())
        elif isinstance(e, (SrsError, OSError)):
            self.failed = True
            code = getattr(e, "code", 0)
            logger.warning("serve error code={} : {}", code, e)
        else:
            self.failed = True
            logger.exception("serve error: {!r}", e)

    def _cleanup(self):
        # The recv greenlet's exception holds its traceback, whose frames hold this
        # connection: dropped here, the connection's objects go when its last reference
        # does, not at the cyclic collector's next full pass.
        self._recv_error = None
        srv = self.server
        if self.connected:
            srv.hooks.on_close(self.req, self.cid, self.send_bytes, self.recv_bytes)
        srv.stat.on_disconnect(self.cid, error=self.failed)
        self.rtmp.proto.close()
        srv.on_conn_closed(self)

    def expire(self):
        """Kick this client (API DELETE, quit): its greenlets end within a second."""
        self.expired = True
        if self.consumer is not None:
            self.consumer.wakeup()
        if self._read_watch is not None:
            self._read_watch.stop()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.rtmp.proto.close()

    # -- the cycle -------------------------------------------------------------------
    def _deadline(self, what: str, seconds: float | None = None) -> gevent.Timeout:
        """One deadline over a whole step of the session set-up: ``limits.idle_timeout``
        for the handshake, SRS_CONSTS_RTMP_TIMEOUT for connect and for identify; one timer
        per step rather than one per read, so a client trickling bytes cannot stretch a
        step, and every connection publishes or plays within a bounded time or is closed."""
        if seconds is None:
            seconds = RTMP_TIMEOUT
        return gevent.Timeout(seconds, Timeout(f"rtmp: {what} timeout, {seconds:g}s"))

    def do_cycle(self):
        srv = self.server
        self.sock.settimeout(None)  # the set-up steps run under _deadline
        # Commands go out as several small writes (connect's reply is five messages): with
        # Nagle on, each exchange would wait for a delayed ACK (40 ms). Media goes out in
        # merged writes, so no vhost needs Nagle: TCP_NODELAY is always set.
        self._set_nodelay()
        with self._deadline("handshake", srv.config.root["limits"]["idle_timeout"]):
            self.rtmp.handshake()
        logger.info("RTMP {} handshake ok", "complex" if self.rtmp.handshake_complex else "simple")
        with self._deadline("connect"):
            req = self.rtmp.connect_app(self.req)
        req.ip = self.ip
        vconf = self._resolve_vhost(req)
        logger.info(
            "connect app, tcUrl={}, pageUrl={}, swfUrl={}, schema={}, vhost={}, port={}, app={}, args={}",
            req.tc_url, req.page_url, req.swf_url, req.schema, req.vhost, req.port, req.app, "(obj)" if req.args else "null",
        )
        try:
            srv.hooks.on_connect(req, self.cid)
        except AccessDenied as e:
            self.rtmp.response_connect_reject(str(e))
            raise
        chunk_size = vconf.get("chunk_size") or srv.config.get("chunk_size")
        self.rtmp.response_connect_app(
            req, out_ack_size=vconf["out_ack_size"], in_ack_size=vconf["in_ack_size"], chunk_size=chunk_size,
            server_ip=self._local_ip(), cid=self.cid,
        )
        self.connected = True
        while True:
            self.sock.settimeout(None)
            with self._deadline("identify"):
                ident = self.rtmp.identify_client()
            self.sock.settimeout(RTMP_TIMEOUT)
            try:
                self.service(ident)
                return
            except _Republish:
                logger.info("client identify again (republish or closeStream)")
                self.type = ""
                continue

    def _local_ip(self) -> str:
        """The address the client reached us at (srs_server_ip); empty on a Unix socket."""
        try:
            name = self.sock.getsockname()
        except OSError:
            return ""
        return name[0] if isinstance(name, tuple) else ""

    def _resolve_vhost(self, req: Request) -> dict:
        found = self.server.config.resolve_vhost(req.vhost)
        if found is None:
            self.rtmp.response_connect_reject(f"no vhost {req.vhost}")
            raise SrsError(f"rtmp: no vhost {req.vhost}", ERROR_RTMP_NO_VHOST)
        name, vconf = found
        if not vconf["enabled"]:
            self.rtmp.response_connect_reject(f"vhost {name} disabled")
            raise AccessDenied(f"rtmp: vhost {name} is disabled")
        req.vhost = name
        return vconf

    def service(self, ident):
        """Port of SrsRtmpConn::stream_service_cycle."""
        req = self.req
        discover_tc_url(req.tc_url, ident.stream, req)
        req.ip = self.ip
        vconf = self._resolve_vhost(req)
        if not req.stream:
            raise SrsError("rtmp: empty stream name", ERROR_RTMP_STREAM_NAME_EMPTY)
        req.duration = ident.duration
        logger.info(
            "client identified, type={}, vhost={}, app={}, stream={}, param={}, duration={}",
            ident.type, req.vhost, req.app, req.stream, req.param or "", req.duration,
        )
        self.type = ident.type
        if ident.type == RTMP_PLAY:
            self.playing(vconf)
        else:
            self.publishing(ident, vconf)

    # -- publish -------------------------------------------------------------------
    def publishing(self, ident, vconf: dict):
        srv = self.server
        req = self.req
        rtmp = self.rtmp
        srv.check_access(vconf, "publish", req)
        if ident.type == FMLE_PUBLISH:
            rtmp.start_fmle_publish()
        elif ident.type == HAIVISION_PUBLISH:
            rtmp.start_haivision_publish()
        values = getattr(rtmp, "publish_values", None)
        if values and len(values) > 3 and isinstance(values[3], str) and values[3]:
            discover_tc_url(req.tc_url, values[3], req)
            req.ip = self.ip
            vconf = self._resolve_vhost(req)
        for publish_filter in srv.publish_filters:  # plugins: may rename req.stream, or refuse
            try:
                publish_filter(req)
            except AccessDenied as e:
                rtmp.on_status("NetStream.Publish.Denied", str(e) or "publish denied", level="error")
                raise
        srv.stat.on_client(self.cid, req, self, ident.type)
        try:
            srv.hooks.on_publish(req, self.cid)
        except AccessDenied as e:
            rtmp.on_status("NetStream.Publish.Denied", str(e) or "publish denied by hook", level="error")
            raise
        source = srv.sources.fetch_or_create(req)
        try:
            source.on_publish(self)
        except StreamBusyError:
            rtmp.on_status("NetStream.Publish.BadName", f"Stream {req.stream_url} is busy", level="error")
            raise
        try:
            rtmp.publish_started()
            logger.info("publish started, stream={}", req.stream_url)
            self.do_publishing(source, vconf)
        finally:
            source.on_unpublish()
            srv.hooks.on_unpublish(req, self.cid)
            logger.info("publish stopped, stream={}", req.stream_url)

    def do_publishing(self, source, vconf: dict):
        proto = self.rtmp.proto
        pub = vconf["publish"]
        self.sock.settimeout(pub["firstpkt_timeout"] / 1000.0)
        normal = pub["normal_timeout"] / 1000.0
        got_media = False
        on_message = source.on_message
        while True:
            try:
                msgs = proto.read_some()
            except Timeout as e:
                raise Timeout(
                    f"publish timeout: no {'message' if got_media else 'first packet'} in "
                    f"{(normal if got_media else pub['firstpkt_timeout'] / 1000.0):.1f}s"
                ) from e
            for m in msgs:
                if not on_message(m) and (m.type == AMF0_COMMAND or m.type == AMF3_COMMAND):
                    self._publish_command(m)
            if not got_media and msgs:
                got_media = True
                self.sock.settimeout(normal)
            if proto.last_read_full:
                gevent.sleep(0)  # a flood of input must not starve the players (SRS #2194)

    def _publish_command(self, m: MediaMessage):
        values = decode_command(m)
        if not values or not isinstance(values[0], str):
            return
        name = values[0]
        tid = transaction_id(values)
        if name == "FCUnpublish" and self.type == FMLE_PUBLISH:
            self.rtmp.fmle_unpublish(tid)
            raise _Republish()
        if name in ("closeStream", "deleteStream", "FCUnpublish") or (self.type != FMLE_PUBLISH and name in ("publish", "play")):
            raise _Republish()
        if tid > 0:
            self.rtmp.proto.send_command("_result", tid, None, None)

    # -- play ----------------------------------------------------------------------
    def playing(self, vconf: dict):
        srv = self.server
        req = self.req
        srv.check_access(vconf, "play", req)
        srv.stat.on_client(self.cid, req, self, RTMP_PLAY)
        try:
            srv.hooks.on_play(req, self.cid)
        except AccessDenied as e:
            self.rtmp.on_status("NetStream.Play.Failed", str(e) or "play denied by hook", level="error")
            raise
        source = srv.sources.fetch_or_create(req)
        # a write blocked this long drops the player (limits.send_timeout)
        self.sock.settimeout(srv.config.root["limits"]["send_timeout"])
        realtime = vconf["min_latency"]
        play = vconf["play"]
        consumer = source.create_consumer(0 if realtime else play["mw_msgs"], play["mw_latency"], owner=self)
        self.consumer = consumer
        source.consumer_dumps(consumer)
        proto = self.rtmp.proto
        with proto.batch():  # the play replies and the first picture in one send
            self.rtmp.start_play()
            msgs = consumer.dump()
            if msgs:
                proto.send_media(msgs, consumer.timestamp_base(), self.rtmp.stream_id, shared=True)
        # The recv side (SrsQueueRecvThread) starts when the player first sends something:
        # most players send nothing for seconds (an acknowledgement per window), and a
        # greenlet spawned per join is work done before the next player's join.
        recv = None

        def readable():
            nonlocal recv
            watch.stop()
            if recv is None and not self.expired:
                recv = spawn_with_context(self._recv_while_playing, cid=self.cid, ip=self.ip)

        watch = self._read_watch = gevent.get_hub().loop.io(self.sock.fileno(), 1)
        watch.start(readable)
        try:
            self.do_playing(consumer)
        finally:
            watch.stop()
            watch.close()
            self._read_watch = None
            if recv is not None:
                recv.kill()  # it must be gone before anyone reads this socket again
            consumer.sink = None
            consumer.dispose()
            self.consumer = None
            srv.hooks.on_stop(req, self.cid)

    def _set_nodelay(self):
        try:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass

    def _recv_while_playing(self):
        """Port of SrsQueueRecvThread: read the player's commands while we send it media."""
        proto = self.rtmp.proto
        proto.replies_nowait = True  # the play side owns the writes
        try:
            while True:
                try:
                    msgs = proto.read_some()
                except Timeout:
                    continue
                for m in msgs:
                    if m.type in (AMF0_COMMAND, AMF3_COMMAND):
                        self._commands.append(m)
                if len(self._commands) > MAX_QUEUED_COMMANDS:
                    raise RtmpProtocolError(f"rtmp: over {MAX_QUEUED_COMMANDS} commands queued by a player")
                if (self._commands or proto.backlog is not None) and self.consumer is not None:
                    self.consumer.wakeup()
        except BaseException as e:  # noqa: BLE001 - handed to the play loop
            self._recv_error = e if isinstance(e, Exception) else ClientClosed("rtmp: recv stopped")
            if self.consumer is not None:
                self.consumer.wakeup()

    def do_playing(self, consumer):
        rtmp = self.rtmp
        proto = rtmp.proto
        sid = rtmp.stream_id
        deadline = None
        if self.req.duration and self.req.duration > 0:
            deadline = time.monotonic() + self.req.duration / 1000.0
        while True:
            # first: playing() sent the first picture, the rest of the GOP waits its turn.
            # Woken, never polled: by the source (a merged write due, an event, a publisher
            # that paused), the recv side (a command, an error, a reply kept) or a kick;
            # only a play duration times out.
            consumer.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))
            if self._recv_error is not None:
                raise self._recv_error
            if self.expired:
                raise ClientClosed("rtmp: kicked")
            if self._commands:
                self._play_commands(consumer)
            events = consumer.pop_events()
            for ev in events:
                if ev == "unpublish":
                    rtmp.on_status("NetStream.Play.UnpublishNotify", "The stream is unpublished")
                elif ev == "publish":
                    rtmp.on_status("NetStream.Play.PublishNotify", "The stream is published")
            fresh = consumer.fresh
            msgs = consumer.dump()
            if msgs:
                proto.send_media(msgs, consumer.timestamp_base(), sid, shared=fresh)
            proto.flush()  # what the hub's write or the recv side's replies left
            if deadline is not None:
                if time.monotonic() >= deadline:
                    logger.info("play duration reached, stop")
                    return
            elif consumer.started and consumer.sink is None:
                consumer.sink = _RtmpSink(self, sid)

    def _play_commands(self, consumer):
        cmds, self._commands = self._commands, []
        for i, msg in enumerate(cmds):
            values = decode_command(msg)
            if not values or not isinstance(values[0], str):
                continue
            name = values[0]
            tid = transaction_id(values)
            if name == "pause":
                paused = bool(values[3]) if len(values) > 3 else True
                consumer.paused = paused
                self.rtmp.on_play_pause(paused)
                logger.info("play {}", "paused" if paused else "unpaused")
            elif name in ("closeStream", "deleteStream"):
                # what the client sent after it is for the next identify_client
                self.rtmp.proto.pending.extendleft(reversed(cmds[i + 1:]))
                raise _Republish()
            elif tid > 0:
                self.rtmp.proto.send_command("_result", tid, None, None)


class _RtmpSink(Sink):
    """The consumer's sink while do_playing is parked: writes done in the hub."""

    __slots__ = ("conn", "proto", "stream_id")

    def __init__(self, conn: RtmpConn, stream_id: int):
        self.conn = conn
        self.proto = conn.rtmp.proto
        self.stream_id = stream_id

    def variant(self):
        c = self.conn
        if c._commands or c._recv_error is not None or c.expired or self.proto.backlog is not None:
            return None  # for do_playing itself
        return ("rtmp", self.proto.out_chunk_size, self.stream_id)

    def pack_shared(self, msgs: list, base: int) -> tuple:
        bufs, size = self.proto.pack_media(msgs, base, self.stream_id)
        return bufs, size, size

    def send_shared(self, iov: list, wire: int, media: int) -> bool:
        return self.proto.try_send_iov(iov, wire)
