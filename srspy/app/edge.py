"""The edge, an input (SrsPlayEdge / SrsEdgeIngester): ``vhost x { cluster { mode remote;
origin h1:p1 h2:p2; protocol rtmp|flv|flvs; } }``.

* The first player of a stream (RTMP or an HTTP stream) starts an ``EdgeIngester``
  before its consumer exists (``EdgeManager.on_consumer_creating``): the ingester takes
  the stream's LiveSource as its publisher at once (players wait on it as on any
  publish) and pulls from the origins in turn, feeding ``on_message`` as an RTMP
  publisher does; on failure it tries the next origin after ``EDGE_RETRY_S``; the source
  stays published across retries, so players stay.
* When the last player leaves, the pull stops ``edge_stop_delay`` seconds later unless a
  player came back; the source is unpublished and collected.
* A publisher on the edge is forwarded to the origins by forward.py (an output).

The number of streams one edge pulls at once is bounded (``limits.edge_pulls``): each
name a player asks for would otherwise open a pull towards the origin.
"""

from __future__ import annotations

import gevent
from loguru import logger

from ..client import open_pull
from ..config import is_edge
from ..errors import SrsError, StreamBusyError
from ..live.hub import SourceListener
from ..session import PULL
from .relay import EDGE_PULL, RelaySession, upstream_url

EDGE_START_TIMEOUT_S = 5.0  # SRS_EDGE_INGESTER_TIMEOUT
EDGE_READ_TIMEOUT_S = 10.0
EDGE_RETRY_S = 3.0  # SRS_EDGE_INGESTER_CIMS
EDGE_STOP_DELAY_S = 3.0
FEED_YIELD = 64  # messages an ingester feeds before letting other greenlets run


class EdgeIngester(RelaySession):
    """Pulls a stream from the origins into the edge's LiveSource (SrsEdgeIngester)."""

    protocol = "EDGE"
    role = PULL
    stat_type = EDGE_PULL

    def __init__(self, manager, source, origins: list, protocol: str, vhost: str):
        super().__init__(manager.server, source)
        self.manager = manager
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
        # an HTTP player created the source: its stream keeps the extension (s.flv)
        self.source.req.stream = self.req.stream = self.req.stream_name
        self.source.on_publish(self)
        self.publishing = True
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
        if not self.source.has_players():
            self.manager.stop_ingester(self)

    def stop(self, drain_s: float = 0.0):
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
            self.source.on_unpublish()
        self._stat_off()
        logger.info("edge: stop pulling {}", self.source.url)


class EdgeManager(SourceListener):
    """The edge pulls of a server: the first player starts one, the last stops it."""

    edge_stop_delay = EDGE_STOP_DELAY_S

    def __init__(self, server):
        self.server = server
        self.ingesters: dict = {}  # source url -> EdgeIngester

    def stop(self):
        for ing in list(self.ingesters.values()):
            ing.stop()
        self.ingesters.clear()

    def on_consumer_creating(self, source, player: bool):
        if not player:
            return
        ing = self.ingesters.get(source.url)
        if ing is not None and ing.source is source and not ing.stopped:
            ing.cancel_stop()
            return
        if source.publishing:
            return
        found = self.server.config.resolve_vhost(source.req.vhost)
        vconf = found[1] if found else None
        if not is_edge(vconf):
            return
        limit = self.server.config.root["limits"]["edge_pulls"]
        if len(self.ingesters) >= limit:
            logger.warning("edge: {} not pulled: {} streams pulled already (limits.edge_pulls)", source.url, limit)
            return
        cluster = vconf["cluster"]
        ing = EdgeIngester(self, source, cluster["origin"], cluster["protocol"], cluster["vhost"])
        self.ingesters[source.url] = ing
        try:
            ing.start()
        except StreamBusyError:
            del self.ingesters[source.url]

    def on_consumer_destroyed(self, source, consumer):
        ing = self.ingesters.get(source.url)
        if ing is None or ing.source is not source or ing.stopped:
            return
        if not source.has_players():
            ing.stop_later(self.edge_stop_delay)

    def stop_ingester(self, ing):
        if self.ingesters.get(ing.source.url) is ing:
            del self.ingesters[ing.source.url]
        ing.stop()


__all__ = ["EdgeManager", "EdgeIngester"]
