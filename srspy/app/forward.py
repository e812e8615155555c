"""Forward, a per-source output (SrsForwarder; SrsEdgeForwarder for a publish on an edge).

``vhost x { forward { enabled on; destination h1:p1 h2:p2; } }``: every stream published
there is pushed to each destination (same app and stream), reconnecting with back-off
while the stream lives; each (re)connection starts from the source's metadata, sequence
headers and GOP cache. On an edge (``cluster { mode remote; }``) a publisher is forwarded
to the origins, one at a time, the next on failure. A stream the edge pulls itself is
never forwarded (no loops through the origin).

``ForwardOutputs`` is the factory the source manager asks at every publish; the
forwarders it returns run in the source's OriginHub (live/hub.py).
"""

from __future__ import annotations

import gevent
from loguru import logger

from ..client.rtmp import RtmpPushSession
from ..config import is_edge
from ..errors import SrsError
from ..live.hub import HubOutput
from .relay import EDGE_FORWARD, RTMP_FORWARD, RelaySession, upstream_url

FORWARD_START_TIMEOUT_S = 5.0
FORWARD_WRITE_TIMEOUT_S = 10.0
FORWARD_BACKOFF_S = (1.0, 10.0)  # first retry after 1 s, doubling up to 10 s


class Forwarder(RelaySession, HubOutput):
    """Pushes a published stream to destinations, tried in turn."""

    protocol = "RTMP"
    role = "FORWARD"
    stat_type = RTMP_FORWARD

    def __init__(self, server, source, destinations: list, vhost: str, stat_type: str = RTMP_FORWARD):
        super().__init__(server, source)
        self.destinations = list(destinations)
        self.upstream_vhost = vhost
        self.stat_type = stat_type
        self.epoch = source.epoch
        self.consumer = None
        self.draining = False
        self.drain_s = 0.0
        self.index = 0
        self._off = False

    def start(self, source=None):
        self._stat_on()
        logger.info("{}: {} to {}", self.stat_type, self.source.url, " ".join(self.destinations))
        self.greenlet = gevent.spawn(self._cycle)

    def _alive(self) -> bool:
        src = self.source
        return not self.stopped and not self.draining and src.publishing and src.epoch == self.epoch

    def _cycle(self):
        backoff = FORWARD_BACKOFF_S[0]
        with logger.contextualize(cid=self.cid):
            try:
                while self._alive():
                    dest = self.destinations[self.index % len(self.destinations)]
                    url = upstream_url("rtmp", dest, self.req, self.upstream_vhost)
                    ok = self._forward(url)
                    if not self._alive():
                        return
                    self.index += 1
                    if ok:
                        backoff = FORWARD_BACKOFF_S[0]
                    gevent.sleep(backoff)
                    backoff = min(backoff * 2, FORWARD_BACKOFF_S[1])
            finally:
                self._finish()

    def _forward(self, url: str) -> bool:
        """One connection: True when it was established (then ended)."""
        found = self.server.config.resolve_vhost(self.req.vhost)
        conf = found[1] if found else None
        play = conf["play"] if conf else {"mw_msgs": 8, "mw_latency": 350}
        chunk_size = (conf.get("chunk_size") if conf else None) or self.server.config.root.get("chunk_size") or 60000
        session = RtmpPushSession(url, start_timeout=FORWARD_START_TIMEOUT_S, write_timeout=FORWARD_WRITE_TIMEOUT_S,
                                  chunk_size=chunk_size)
        self.session = session
        try:
            session.start()
        except (SrsError, OSError) as e:
            logger.warning("{}: push {} failed: {}", self.stat_type, url, e)
            self._drop_session()
            return False
        self.connects += 1
        logger.info("{}: pushing {} to {} ({})", self.stat_type, self.source.url, url, session.unique_key)
        consumer = self.source.create_consumer(play["mw_msgs"], play["mw_latency"], owner=self, player=False)
        self.consumer = consumer
        try:
            self.source.consumer_dumps(consumer)
            self._pump(session, consumer)
        except (SrsError, OSError) as e:
            if not self.stopped:
                logger.warning("{}: push {} ended: {}", self.stat_type, url, e)
        finally:
            self.consumer = None
            consumer.dispose()
            self._drop_session()
        return True

    def _pump(self, session, consumer):
        while True:
            if self.stopped:
                return
            if self.draining or not self.source.publishing or consumer.epoch != self.epoch:
                self._drain(session, consumer)
                return
            msgs = consumer.dump()
            if msgs:
                session.write_batch(msgs, consumer.timestamp_base())
            elif session.is_done:
                end = session.ended
                raise end.error if end.error is not None else SrsError(f"push session {end.reason}")
            consumer.wait(1.0)
            consumer.pop_events()

    def _drain(self, session, consumer):
        """The stream was unpublished: send what is still queued, briefly."""
        with gevent.Timeout(self.drain_s, False):
            if consumer.epoch != self.source.epoch:
                return  # already a new publish: its leftovers are not ours
            while True:
                msgs = consumer.dump()
                if not msgs:
                    return
                session.write_batch(msgs, consumer.timestamp_base())

    def stop(self, drain_s: float = 0.0):
        """Stop forwarding (idempotent); with ``drain_s``, when connected, send what is
        still queued first (for at most that long), then stop."""
        if self.stopped:
            return
        if drain_s > 0 and self.consumer is not None:
            self.drain_s = drain_s
            self.draining = True
            self.consumer.wakeup()
            return
        self.stopped = True
        if self.greenlet is not None and self.greenlet is not gevent.getcurrent():
            self.greenlet.kill(block=False)
        self._finish()

    def _finish(self):
        c = self.consumer
        if c is not None:
            self.consumer = None
            c.dispose()
        self._drop_session()
        if not self._off:
            self._off = True
            self._stat_off()


class ForwardOutputs:
    """The factory of a server's forwarders: ``ForwardOutputs(server)(source) -> [Forwarder]``."""

    def __init__(self, server):
        self.server = server

    def __call__(self, source) -> list:
        if source.publisher is not None and source.publisher.is_relay:
            return []  # a pulled stream is not forwarded (no loops through the origin)
        found = self.server.config.resolve_vhost(source.req.vhost)
        if not found:
            return []
        vconf = found[1]
        fws = []
        if is_edge(vconf) and vconf["cluster"]["protocol"] != "rtmp":
            logger.warning("edge: {} published on an edge pulling over {}: not forwarded to the origin "
                           "(its origins are HTTP addresses)", source.url, vconf["cluster"]["protocol"])
        elif is_edge(vconf):
            fws.append(Forwarder(self.server, source, vconf["cluster"]["origin"], vconf["cluster"]["vhost"], EDGE_FORWARD))
        fwd = vconf["forward"]
        if fwd["enabled"]:
            for dest in fwd["destination"]:
                fws.append(Forwarder(self.server, source, [dest], "", RTMP_FORWARD))
        return fws


__all__ = ["Forwarder", "ForwardOutputs"]
