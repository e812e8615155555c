"""livego's ``/control/pull`` and ``/control/push`` relays, on srspy's client sessions.

* A pull plays ``url`` (RTMP or HTTP-FLV, see ``srspy.client.open_pull``) and publishes it
  into the room ``app/name`` of this server, as an RTMP publisher would; players of the
  room get it.
* A push reads the room ``app/name`` and publishes it to ``url`` (RTMP). Started before the
  room is published, it waits for the publisher; it ends when that publisher leaves.

livego's relay is an RTMP client of its own port; these sessions go to the room's source
directly. Both are clients of their stream in the statistics (``/api/v1/clients``, types
``livego-pull`` and ``livego-push``) and the API's DELETE of that client stops them.
"""

from __future__ import annotations

import gevent
from loguru import logger

from ...client import open_pull
from ...client.rtmp import RtmpPushSession
from ...errors import SrsError, StreamBusyError
from ...request import DEFAULT_VHOST, Request
from ...session import PULL, PUSH, Session

START_TIMEOUT_S = 5.0  # connect through Play.Start / Publish.Start (the API call waits for it)
READ_TIMEOUT_S = 10.0  # a pull whose upstream sends nothing for this long ends
WRITE_TIMEOUT_S = 10.0  # a push whose blocked write lasts this long ends
FEED_YIELD = 64  # messages a pull feeds before letting other greenlets run
DRAIN_S = 2.0  # a push sends what is queued when the publisher leaves, for at most this long

LIVEGO_PULL = "livego-pull"
LIVEGO_PUSH = "livego-push"


def room_request(app: str, room: str, rtmp_port: int | None) -> Request:
    """The stream ``app/room`` of the default vhost, as a local RTMP client would ask for it."""
    req = Request()
    req.ip = "127.0.0.1"
    req.host = "127.0.0.1"
    req.vhost = DEFAULT_VHOST
    req.app = app
    req.stream = room
    req.port = rtmp_port or req.port
    req.tc_url = f"rtmp://127.0.0.1:{req.port}/{app}"
    return req


class _RoomRelay(Session):
    """What pull and push share: the room, the client session, the statistics record."""

    protocol = "LIVEGO"
    is_relay = True  # a relay's consumer is no player (edge pulls ignore it)
    publishing_now = False  # the server's graceful quit waits for real publishers only
    stat_type = ""

    def __init__(self, server, app: str, room: str, url: str):
        super().__init__(url, app, room)
        self.server = server
        self.cid = self.unique_key
        ports = getattr(server, "rtmp_ports", None) or [None]
        self.req = room_request(app, room, ports[0])
        self.session = None
        self.source = None
        self.greenlet = None
        self.stopped = False
        self._finished = False

    @property
    def send_bytes(self) -> int:
        return self.session.send_bytes if self.session is not None else 0

    @property
    def recv_bytes(self) -> int:
        return self.session.recv_bytes if self.session is not None else 0

    @property
    def alive(self) -> bool:
        return not self._finished

    def expire(self):
        """Kick (API DELETE, quit): same as stop."""
        self.stop()

    def stop(self):
        """Stop the relay (idempotent, from any greenlet)."""
        self.stopped = True
        g = self.greenlet
        if g is not None and g is not gevent.getcurrent():
            g.kill(block=False)
        self._finish()

    def _run(self):
        with logger.contextualize(cid=self.cid):
            try:
                self._loop()
            except (SrsError, OSError) as e:
                if not self.stopped:
                    logger.warning("livego: {} {} ended: {}", self.stat_type, self.url, e)
            finally:
                self._finish()

    def _loop(self):
        raise NotImplementedError

    def _finish(self):
        if self._finished:
            return
        self._finished = True
        self._release()
        if self.session is not None:
            self.session.dispose()
        self.server.stat.on_disconnect(self.cid)
        logger.info("livego: {} {}/{} {} stopped", self.stat_type, self.app_name, self.stream_name, self.url)

    def _release(self):
        """Give the room back (the source's publish, or the consumer)."""


class RoomPull(_RoomRelay):
    """Plays ``url`` into the room: livego's ``/control/pull?oper=start``."""

    role = PULL
    stat_type = LIVEGO_PULL

    def start(self) -> "RoomPull":
        """Connect (up to START_TIMEOUT_S) and take the room; raises when either fails."""
        session = open_pull(self.url, start_timeout=START_TIMEOUT_S, read_timeout=READ_TIMEOUT_S)
        session.start()
        source = self.server.sources.fetch_or_create(self.req)
        try:
            source.on_publish(self)
        except StreamBusyError:
            session.dispose()
            raise StreamBusyError(f"stream {self.app_name}/{self.stream_name} is already published") from None
        self.session, self.source = session, source
        stat = self.server.stat
        stat.on_client(self.cid, self.req, self, self.stat_type)  # the stream: statistics' listener
        logger.info("livego: pull {} into {}/{} ({})", self.url, self.app_name, self.stream_name, self.cid)
        self.greenlet = gevent.spawn(self._run)
        return self

    def _loop(self):
        on_message = self.source.on_message
        for n, m in enumerate(self.session, 1):
            try:
                on_message(m)
            except SrsError as e:
                logger.warning("livego: bad message from {}: {}", self.url, e)
            if n % FEED_YIELD == 0:
                gevent.sleep(0)
        if not self.stopped:
            logger.warning("livego: pull {} ended: {}", self.url, self.session.wait(0))

    def _release(self):
        source = self.source
        if source is not None and source.publisher is self:
            source.on_unpublish()


class RoomPush(_RoomRelay):
    """Publishes the room to ``url``: livego's ``/control/push?oper=start``."""

    role = PUSH
    stat_type = LIVEGO_PUSH

    def __init__(self, server, app: str, room: str, url: str):
        super().__init__(server, app, room, url)
        self.consumer = None

    def start(self) -> "RoomPush":
        """Connect (up to START_TIMEOUT_S) and read the room; raises when the connection fails."""
        srv = self.server
        found = srv.config.resolve_vhost(self.req.vhost)
        play = found[1]["play"] if found else srv.config.vhost_get(self.req.vhost, "play")
        chunk_size = (found[1].get("chunk_size") if found else None) or srv.config.root["chunk_size"]
        session = RtmpPushSession(self.url, start_timeout=START_TIMEOUT_S, write_timeout=WRITE_TIMEOUT_S,
                                  chunk_size=chunk_size)
        session.start()
        self.session = session
        self.source = srv.sources.fetch_or_create(self.req)
        self.consumer = self.source.create_consumer(play["mw_msgs"], play["mw_latency"], owner=self, player=False)
        srv.stat.on_client(self.cid, self.req, self, self.stat_type)
        logger.info("livego: push {}/{} to {} ({})", self.app_name, self.stream_name, self.url, self.cid)
        self.greenlet = gevent.spawn(self._run)
        return self

    def _loop(self):
        source, consumer, session = self.source, self.consumer, self.session
        epoch = None  # the publish being pushed; None until there is one
        while not self.stopped:
            if epoch is None and source.publishing:
                epoch = consumer.epoch = source.epoch  # start at this publish, not as a republish
                source.consumer_dumps(consumer)
            if epoch is not None:
                if source.epoch != epoch or not source.publishing:
                    self._drain()
                    logger.info("livego: push of {}/{} ends with its publisher", self.app_name, self.stream_name)
                    return
                msgs = consumer.dump()
                if msgs:
                    session.write_batch(msgs, consumer.timestamp_base())
            if session.is_done:
                end = session.ended
                raise end.error if end.error is not None else SrsError(f"push session {end.reason}")
            consumer.wait(1.0)
            consumer.pop_events()

    def _drain(self):
        consumer = self.consumer
        with gevent.Timeout(DRAIN_S, False):
            while consumer.epoch == self.source.epoch and (msgs := consumer.dump()):
                self.session.write_batch(msgs, consumer.timestamp_base())

    def _release(self):
        c, self.consumer = self.consumer, None
        if c is not None:
            c.dispose()


__all__ = ["LIVEGO_PULL", "LIVEGO_PUSH", "RoomPull", "RoomPush", "room_request"]
