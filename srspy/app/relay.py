"""Relays in the server: the edge (SrsPlayEdge/SrsEdgeIngester, SrsPublishEdge/
SrsEdgeForwarder) and forward (SrsForwarder), on srspy's client sessions.

Edge, ``vhost x { cluster { mode remote; origin h1:p1 h2:p2; protocol rtmp|flv|flvs; } }``:

* the first player of a stream (RTMP or HTTP-FLV) starts an ``EdgeIngester``: it takes
  the stream's LiveSource as its publisher at once (players wait on it as on any
  publish) and pulls from the origins in turn, feeding ``on_audio``/``on_video``/
  ``on_meta_data`` as an RTMP publisher does; on failure it tries the next origin after
  ``EDGE_RETRY_S``; the source stays published across retries, so players stay;
* when the last player leaves, the pull stops ``edge_stop_delay`` seconds later unless
  a player came back; the source is unpublished and collected;
* a publisher on the edge is forwarded to the origins (one at a time, next on failure).

Forward, ``vhost x { forward { enabled on; destination h1:p1 h2:p2; } }``: every stream
published there is pushed to each destination (same app and stream), reconnecting with
back-off while the stream lives; each (re)connection starts from the source's metadata,
sequence headers and GOP cache.

Relays read the source with a LiveConsumer (owner: the relay, so it does not count as a
player) and appear in the server's statistics as clients of their stream
(``edge-pull``, ``edge-forward``, ``rtmp-forward``).
"""

from __future__ import annotations

import gevent
from loguru import logger

from ..client import open_pull
from ..client.rtmp import RtmpPushSession
from ..errors import SrsError, StreamBusyError
from ..request import DEFAULT_VHOST, request_from_http
from ..session import PULL, Session
from .http_stream import LiveStream

EDGE_PULL = "edge-pull"
EDGE_FORWARD = "edge-forward"
RTMP_FORWARD = "rtmp-forward"

EDGE_START_TIMEOUT_S = 5.0  # SRS_EDGE_INGESTER_TIMEOUT
EDGE_READ_TIMEOUT_S = 10.0
EDGE_RETRY_S = 3.0  # SRS_EDGE_INGESTER_CIMS
EDGE_STOP_DELAY_S = 3.0
FORWARD_START_TIMEOUT_S = 5.0
FORWARD_WRITE_TIMEOUT_S = 10.0
FORWARD_BACKOFF_S = (1.0, 10.0)  # first retry after 1 s, doubling up to 10 s
DRAIN_S = 2.0  # a forwarder sends what is queued at unpublish for at most this long
FEED_YIELD = 64  # messages an ingester feeds before letting other greenlets run

DEFAULT_PORTS = {"rtmp": 1935, "flv": 8080, "flvs": 443}


def is_relay(owner) -> bool:
    return bool(getattr(owner, "is_relay", False))


def split_host_port(endpoint: str, default_port: int) -> tuple[str, int]:
    """``host:port``, ``host``, ``[v6]:port`` -> (host, port)."""
    ep = endpoint.strip()
    if ep.startswith("["):
        host, _, rest = ep[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") and rest[1:] else default_port
    if ep.count(":") == 1:
        host, port = ep.split(":")
        return host or "127.0.0.1", int(port)
    if ep.isdigit():
        return "127.0.0.1", int(ep)
    return ep, default_port


def stream_name(req) -> str:
    """The stream without an extension (``s.flv`` -> ``s``), as the stream URL has it."""
    s = req.stream
    dot = s.rfind(".")
    if dot > 0 and "/" not in s[dot:]:
        s = s[:dot]
    return s


def _query(req, vhost: str) -> str:
    q = req.param.lstrip("?")
    if vhost and vhost != DEFAULT_VHOST and "vhost=" not in q and "domain=" not in q:
        q = f"{q}&vhost={vhost}" if q else f"vhost={vhost}"
    return q


def upstream_url(protocol: str, endpoint: str, req, vhost: str = "") -> str:
    """The URL of ``req``'s stream on another server: ``rtmp://h:p/app/stream?q`` or
    ``http(s)://h:p/app/stream.flv?q``; a non-default vhost goes as ``?vhost=``."""
    host, port = split_host_port(endpoint, DEFAULT_PORTS.get(protocol, 1935))
    if ":" in host:
        host = f"[{host}]"
    q = _query(req, vhost or req.vhost)
    q = f"?{q}" if q else ""
    name = stream_name(req)
    if protocol == "rtmp":
        return f"rtmp://{host}:{port}/{req.app}/{name}{q}"
    scheme = "https" if protocol == "flvs" else "http"
    return f"{scheme}://{host}:{port}/{req.app}/{name}.flv{q}"


class _Relay(Session):
    """What relays share: the stream, the statistics record, byte counters over sessions."""

    is_relay = True
    stat_type = ""

    def __init__(self, manager, source):
        req = source.req
        super().__init__(req.stream_url, req.app, stream_name(req), req.param.lstrip("?"))
        self.manager = manager
        self.server = manager.server
        self.source = source
        self.req = req.copy()
        self.cid = self.unique_key
        self.session = None
        self.stopped = False
        self.greenlet = None
        self._closed_send = 0
        self._closed_recv = 0
        self.connects = 0

    @property
    def send_bytes(self) -> int:
        s = self.session
        return self._closed_send + (s.send_bytes if s is not None else 0)

    @property
    def recv_bytes(self) -> int:
        s = self.session
        return self._closed_recv + (s.recv_bytes if s is not None else 0)

    def _drop_session(self):
        s = self.session
        if s is None:
            return
        s.dispose()
        self._closed_send += s.send_bytes
        self._closed_recv += s.recv_bytes
        self.session = None

    def _stat_on(self):
        self.server.stat.on_client(self.cid, self.req, self, self.stat_type)

    def _stat_off(self):
        self.server.stat.on_disconnect(self.cid)

    def expire(self):
        """Kick (API, quit): same as stop."""
        self.stop()

    def stop(self):
        raise NotImplementedError


class EdgeIngester(_Relay):
    """Pulls a stream from the origins into the edge's LiveSource (SrsEdgeIngester)."""

    protocol = "EDGE"
    role = PULL
    stat_type = EDGE_PULL

    def __init__(self, manager, source, origins: list, protocol: str, vhost: str):
        super().__init__(manager, source)
        self.origins = list(origins)
        self.pull_protocol = protocol
        self.upstream_vhost = vhost
        self.index = 0
        self.stop_timer = None
        self.publishing = False

    @property
    def publishing_now(self) -> bool:
        return False  # the server's graceful quit waits for real publishers only

    def start(self):
        """Take the source (players see a publish) and start pulling."""
        # an HTTP-FLV player created the source: its stream keeps the extension (s.flv)
        self.source.req.stream = self.req.stream = stream_name(self.req)
        self.source.on_publish(self)
        self.publishing = True
        self.server.stat.on_stream_publish(self.req, self.cid)
        self._stat_on()
        logger.info("edge: start pulling {} from {} over {}", self.source.url, " ".join(self.origins), self.pull_protocol)
        self.greenlet = gevent.spawn(self._cycle)

    def _cycle(self):
        with logger.contextualize(cid=self.cid):
            while not self.stopped:
                origin = self.origins[self.index % len(self.origins)]
                url = upstream_url(self.pull_protocol, origin, self.req, self.upstream_vhost)
                ok = self._ingest(url)
                if self.stopped:
                    return
                if not ok:
                    self.index += 1
                gevent.sleep(EDGE_RETRY_S)

    def _ingest(self, url: str) -> bool:

        session = open_pull(url, start_timeout=EDGE_START_TIMEOUT_S, read_timeout=EDGE_READ_TIMEOUT_S)
        self.session = session
        try:
            session.start()
        except (SrsError, OSError) as e:
            logger.warning("edge: pull {} failed: {}", url, e)
            self._drop_session()
            return False
        self.connects += 1
        logger.info("edge: pulling {} ({})", url, session.unique_key)
        on_message = self.source.on_message
        n = 0
        got = False
        try:
            for m in session:
                try:
                    on_message(m)
                except SrsError as e:
                    logger.warning("edge: bad message from {}: {}", url, e)
                got = True
                n += 1
                if n % FEED_YIELD == 0:
                    gevent.sleep(0)
        finally:
            end = session.wait(0)
            self._drop_session()
        if not self.stopped:
            logger.warning("edge: pull {} ended: {}", url, end)
        return got

    def cancel_stop(self):
        if self.stop_timer is not None:
            self.stop_timer.kill(block=False)
            self.stop_timer = None

    def stop_later(self, delay: float):
        if self.stop_timer is None and not self.stopped:
            self.stop_timer = gevent.spawn_later(delay, self._stop_if_unused)

    def _stop_if_unused(self):
        self.stop_timer = None
        if not self.manager.has_players(self.source):
            self.manager.stop_ingester(self)

    def stop(self):
        """Stop pulling and unpublish the edge source (idempotent)."""
        if self.stopped:
            return
        self.stopped = True
        if self.stop_timer is not None and self.stop_timer is not gevent.getcurrent():
            self.stop_timer.kill(block=False)
        self.stop_timer = None
        if self.greenlet is not None and self.greenlet is not gevent.getcurrent():
            self.greenlet.kill(block=False)
        self._drop_session()
        if self.publishing:
            self.publishing = False
            try:
                self.source.on_unpublish()
            finally:
                self.server.stat.on_stream_unpublish(self.req)
        self._stat_off()
        logger.info("edge: stop pulling {}", self.source.url)


class Forwarder(_Relay):
    """Pushes a published stream to destinations (SrsForwarder; SrsEdgeForwarder with
    several destinations, tried in turn)."""

    protocol = "RTMP"
    role = "FORWARD"
    stat_type = RTMP_FORWARD

    def __init__(self, manager, source, destinations: list, vhost: str, stat_type: str = RTMP_FORWARD):
        super().__init__(manager, source)
        self.destinations = list(destinations)
        self.upstream_vhost = vhost
        self.stat_type = stat_type
        self.epoch = source.epoch
        self.consumer = None
        self.draining = False
        self.index = 0

    def start(self):
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
                    ok = self._forward(RtmpPushSession, url)
                    if not self._alive():
                        return
                    self.index += 1
                    if ok:
                        backoff = FORWARD_BACKOFF_S[0]
                    gevent.sleep(backoff)
                    backoff = min(backoff * 2, FORWARD_BACKOFF_S[1])
            finally:
                self._finish()

    def _forward(self, session_cls, url: str) -> bool:
        """One connection: True when it was established (then ended)."""
        conf = self.manager.vhost_conf(self.req)
        play = conf["play"] if conf else {"mw_msgs": 8, "mw_latency": 350}
        chunk_size = (conf.get("chunk_size") if conf else None) or self.server.config.root.get("chunk_size") or 60000
        session = session_cls(url, start_timeout=FORWARD_START_TIMEOUT_S, write_timeout=FORWARD_WRITE_TIMEOUT_S,
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
        consumer = self.source.create_consumer(play["mw_msgs"], play["mw_latency"], owner=self)
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
        with gevent.Timeout(DRAIN_S, False):
            if consumer.epoch != self.source.epoch:
                return  # already a new publish: its leftovers are not ours
            while True:
                msgs = consumer.dump()
                if not msgs:
                    return
                session.write_batch(msgs, consumer.timestamp_base())

    def stop(self, drain: bool = False):
        """Stop forwarding (idempotent); with ``drain``, when connected, send what is
        still queued first (on unpublish)."""
        if self.stopped:
            return
        if drain and self.consumer is not None:
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
        if not getattr(self, "_off", False):
            self._off = True
            self._stat_off()
            self.manager.forwarder_done(self)


class RelayManager:
    """The server's relays: hooks called by Server (publish, unpublish, consumers)."""

    edge_stop_delay = EDGE_STOP_DELAY_S

    def __init__(self, server):
        self.server = server
        self.ingesters: dict = {}  # source url -> EdgeIngester
        self.forwarders: dict = {}  # source url -> [Forwarder]
        self._hijacker = None

    # -- config ----------------------------------------------------------------------
    def vhost_conf(self, req) -> dict | None:
        found = self.server.config.resolve_vhost(req.vhost)
        return found[1] if found else None

    def _vhost(self, req) -> tuple[str, dict] | None:
        return self.server.config.resolve_vhost(req.vhost)

    @staticmethod
    def is_edge(vconf: dict | None) -> bool:
        return bool(vconf) and vconf["cluster"]["mode"] == "remote" and bool(vconf["cluster"]["origin"])

    # -- life ------------------------------------------------------------------------
    def start(self):
        http = getattr(self.server, "http", None)
        if http is not None and getattr(http, "stream_mux", None) is not None:
            self._hijacker = EdgeHttpHijacker(self)
            http.stream_mux.hijack(self._hijacker)

    def stop(self):
        for ing in list(self.ingesters.values()):
            ing.stop()
        self.ingesters.clear()
        for fws in list(self.forwarders.values()):
            for f in list(fws):
                f.stop()
        self.forwarders.clear()

    # -- source hooks -------------------------------------------------------------------
    def on_publish(self, source):
        if isinstance(source.publisher, EdgeIngester):
            return  # a pulled stream is not forwarded (no loops through the origin)
        found = self._vhost(source.req)
        if not found:
            return
        vhost, vconf = found
        fws = []
        if self.is_edge(vconf) and vconf["cluster"]["protocol"] != "rtmp":
            logger.warning("edge: {} published on an edge pulling over {}: not forwarded to the origin "
                           "(its origins are HTTP addresses)", source.url, vconf["cluster"]["protocol"])
        elif self.is_edge(vconf):
            fws.append(Forwarder(self, source, vconf["cluster"]["origin"], vconf["cluster"]["vhost"], EDGE_FORWARD))
        fwd = vconf["forward"]
        if fwd["enabled"]:
            for dest in fwd["destination"]:
                fws.append(Forwarder(self, source, [dest], "", RTMP_FORWARD))
        if not fws:
            return
        for old in self.forwarders.pop(source.url, []):
            old.stop()
        self.forwarders[source.url] = fws
        for f in fws:
            f.start()

    def on_unpublish(self, source):
        for f in list(self.forwarders.get(source.url, [])):
            if f.source is source:
                f.stop(drain=True)

    def forwarder_done(self, f):
        fws = self.forwarders.get(f.source.url)
        if fws and f in fws:
            fws.remove(f)
            if not fws:
                del self.forwarders[f.source.url]

    def on_create_consumer(self, source, owner):
        if is_relay(owner):
            return
        ing = self.ingesters.get(source.url)
        if ing is not None and ing.source is source and not ing.stopped:
            ing.cancel_stop()
            return
        if source.publishing:
            return
        vconf = self.vhost_conf(source.req)
        if not self.is_edge(vconf):
            return
        cluster = vconf["cluster"]
        ing = EdgeIngester(self, source, cluster["origin"], cluster["protocol"], cluster["vhost"])
        self.ingesters[source.url] = ing
        try:
            ing.start()
        except StreamBusyError:
            del self.ingesters[source.url]

    def on_destroy_consumer(self, source, consumer):
        ing = self.ingesters.get(source.url)
        if ing is None or ing.source is not source or ing.stopped:
            return
        if not self.has_players(source):
            ing.stop_later(self.edge_stop_delay)

    @staticmethod
    def has_players(source) -> bool:
        return any(not is_relay(c.owner) for c in source.consumers)

    def stop_ingester(self, ing):
        if self.ingesters.get(ing.source.url) is ing:
            del self.ingesters[ing.source.url]
        ing.stop()


class EdgeHttpHijacker:
    """An HTTP-FLV player of an edge stream nobody plays yet: serve it as a LiveStream
    (SRS mounts edge streams on the first request); its consumer starts the pull."""

    def __init__(self, manager: RelayManager):
        self.manager = manager

    def hijack(self, r, handler):
        if handler is not None:
            return None

        server = self.manager.server
        streams = getattr(server, "streams", None)
        if streams is None or not streams.templates:
            return None
        req = request_from_http(r.path, r.query, r.host, r.remote_ip)
        found = server.config.resolve_vhost(req.vhost)
        if found is None:
            return None
        vhost, vconf = found
        if not self.manager.is_edge(vconf):
            return None
        regex = streams.regexes.get(vhost)
        if regex is None or not regex.match(r.path):
            return None
        req.vhost = vhost
        return LiveStream(server, vhost, r.path, req)


__all__ = ["RelayManager", "EdgeIngester", "Forwarder", "EdgeHttpHijacker", "upstream_url", "split_host_port",
           "EDGE_PULL", "EDGE_FORWARD", "RTMP_FORWARD"]
