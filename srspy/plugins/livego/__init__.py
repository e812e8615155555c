"""livego's control API as an srspy plug-in: ``livego { enabled on; ... }`` loads it.

What it adds to the server (README "livego control API"; every directive in
srspy/conf/full.conf):

* the control API on its own listener (``listen``, livego's 8090): ``/control/get``,
  ``/control/reset``, ``/control/delete`` (rooms and keys), ``/control/pull``,
  ``/control/push`` (relays), ``/stat/livestat``; optional JWT (``jwt { secret; }``);
* the room/key model: a publisher of one of ``apps`` uses a room's key as stream name and
  is published under the room; players use the room; ``rtmp_noauth on`` lets room names
  publish too; the keys persist in ``keys_file``;
* optionally livego's HTTP-FLV port (``flv_listen``): ``/{app}/{room}.flv``, ``/streams``.

srspy's own API and HTTP server are unchanged. The listeners take connections through the
server's own admission (``max_connections``) and HTTP connection, as the HTTP API does.
It plugs into the server at three points: ``publish_filters`` (the key -> room rewrite,
before the publish takes its source, so hooks and statistics see the room),
``start_hooks`` and ``stop_hooks``.
"""

from __future__ import annotations

import gevent
from loguru import logger

from ...errors import AccessDenied
from ...listener import TcpListener
from .api import ControlApi, JwtAuth
from .flv import FlvPort
from .keys import RoomError, RoomKeys
from .stats import Meters

SAMPLE_S = 1.0  # the meters' sampling period
MAX_RELAYS = 1000  # pull and push relays kept at once (ended ones are dropped to make room)


class Livego:
    """The plug-in's state on one server: keys, relays, meters and listeners."""

    def __init__(self, server):
        self.server = server
        conf = self.conf = server.config.root["livego"]
        self.apps = set(conf["apps"])
        self.noauth = conf["rtmp_noauth"]
        self.keys = RoomKeys(conf["keys_file"], conf["max_rooms"]).load()
        self.meters = Meters(server)
        self.relays: dict = {}  # "pull:app/name" / "push:app/name" -> RoomPull / RoomPush
        self.api = ControlApi(self)
        secret = conf["jwt"]["secret"]
        self.handler = JwtAuth(self.api.mux, secret, conf["jwt"]["algorithm"]) if secret else self.api.mux
        self.flv = FlvPort(self) if conf["flv_listen"] else None
        self.port: int | None = None
        self.flv_port: int | None = None
        self._sampler = None
        server.publish_filters.append(self.on_publish)
        server.start_hooks.append(self.start)
        server.stop_hooks.append(self.stop)

    # -- life --------------------------------------------------------------------------
    def start(self):
        srv = self.server
        api = TcpListener(self.conf["listen"], lambda s, a: srv._handle_http(s, a, self.handler), "livego-API")
        srv.listeners.append(api)
        self.port = api.port
        if self.flv is not None:
            mux = self.flv.mux
            flv = TcpListener(self.conf["flv_listen"], lambda s, a: srv._handle_http(s, a, mux), "livego-FLV")
            srv.listeners.append(flv)
            self.flv_port = flv.port
        self._sampler = gevent.spawn(self._sample_loop)
        logger.info("livego: api={}, flv={}, apps={}, rtmp_noauth={}, rooms={}, jwt={}", self.port, self.flv_port,
                    " ".join(sorted(self.apps)), self.noauth, len(self.keys.rooms), self.handler is not self.api.mux)

    def stop(self):
        for relay in list(self.relays.values()):
            relay.stop()
        self.relays.clear()
        if self._sampler is not None:
            self._sampler.kill(block=False)
            self._sampler = None

    def _sample_loop(self):
        while True:
            gevent.sleep(SAMPLE_S)
            try:
                self.meters.sample()
            except Exception:  # noqa: BLE001 - the sampler must outlive a bug
                logger.exception("livego: sampling failed")

    # -- the key -> room rewrite (a publish filter) ------------------------------------
    def on_publish(self, req):
        """A publisher of a keyed app: its stream name is a key, published as the key's room.

        With ``rtmp_noauth on`` a name that is no key publishes as a room (which gets a key
        if it had none, as livego does). Rooms and keys are separate namespaces.
        """
        if req.app not in self.apps:
            return
        name = req.stream
        room = self.keys.room_of(name)
        if room is None:
            if not self.noauth:
                raise AccessDenied(f"livego: invalid key for app {req.app}")
            room = name
            if self.keys.key_of(room) is None:
                try:
                    self.keys.get(room)
                except (RoomError, OSError) as e:
                    logger.warning("livego: room {} publishes without a key: {}", room, e)
        else:
            logger.info("livego: a key of room {} publishes {}/{}", room, req.app, room)
        req.stream = room

    # -- relays ------------------------------------------------------------------------
    def start_relay(self, key: str, cls, app: str, name: str, url: str):
        """Start a pull or push relay under ``key``; one that exists under it is stopped first."""
        old = self.relays.pop(key, None)
        if old is not None:
            old.stop()
        if len(self.relays) >= MAX_RELAYS:
            for k in [k for k, r in self.relays.items() if not r.alive]:
                del self.relays[k]
            if len(self.relays) >= MAX_RELAYS:
                raise RoomError(f"too many relays ({MAX_RELAYS})")
        relay = cls(self.server, app, name, url).start()
        self.relays[key] = relay
        return relay

    def stop_relay(self, key: str) -> bool:
        relay = self.relays.pop(key, None)
        if relay is None:
            return False
        relay.stop()
        return True


def setup(server) -> Livego:
    """The plug-in entry point (``plugin srspy.plugins.livego;``, or ``livego { enabled on; }``)."""
    plugin = Livego(server)
    server.livego = plugin
    return plugin


__all__ = ["Livego", "setup"]
