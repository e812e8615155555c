"""Port of SrsServer: listeners, the source manager, the HTTP chain, signals, quit.

Embedding::

    from srspy.server import Server
    server = Server.from_file("conf/srs.conf")      # or Server.from_text("listen 1935; ...")
    server.http.mux.handle("/hello", lambda w, r: w.write(b"hi"))
    server.serve_forever()                          # or start() ... stop()
"""

from __future__ import annotations

import importlib
import os
import signal
import time

import gevent
from gevent.event import Event
from loguru import logger

from . import SERVER, log, security
from .config import load_config
from .errors import ConfigError, HttpError
from .hooks import Hooks
from .http import api
from .http.auth import HttpAuthMux
from .http.conn import HttpConn
from .http.cors import HttpCorsMux
from .http.server import HttpServer
from .app.edge import EdgeManager
from .app.forward import ForwardOutputs
from .app.dvr import DvrOutputs
from .app.hls import HlsOutputs
from .app import pages
from .app.http_stream import HttpStreamServer
from .listener import TcpListener
from .live.source import SourceManager, SourceOptions
from .log import new_cid
from .app.rtmp_conn import RtmpConn
from .stat import Statistic

GRACE_DRAIN_S = 1.0  # players get this long to receive their end of stream on a graceful quit
GRACE_MAX_S = 3.0  # a graceful quit never takes longer than this after the signal


def _loopback(endpoint) -> bool:
    """True when ``[ip:]port`` binds a loopback address only (no ip: every address)."""
    host = str(endpoint).rpartition(":")[0].strip("[]")
    return host in ("localhost", "::1") or host.startswith("127.")


class Server:
    def __init__(self, config):
        self.config = config
        self.cid = log.server_cid() or new_cid()
        self.max_message_size = 8 * 1024 * 1024  # the 24-bit length field allows 16 MiB - 1
        self.stat = Statistic(server_id=config.root.get("server_id") or "")
        self.hooks = Hooks(self)
        self.sources = SourceManager(options_for=self._source_options)
        self.edge = EdgeManager(self)  # cluster remote: the first player starts a pull
        self.conns: dict = {}
        self.per_ip: dict[str, int] = {}  # open connections by client address
        self.rejected = 0
        self.listeners: list[TcpListener] = []
        self.rtmp_ports: list[int] = []
        self.http_port: int | None = None
        self.api_port: int | None = None
        http_conf = config.root["http_server"]
        self.http = HttpServer(dir=http_conf["dir"])
        pages.mount(self)  # /srspy.json: the ports and outputs srspy's own pages show
        self.streams = HttpStreamServer(self, self.http.stream_mux)
        # who hears of publishes and consumers (live/hub.py), and the per-source outputs
        for listener in (self.streams, self.stat.listener(), self.edge):
            self.sources.add_listener(listener)
        self.sources.add_output_factory(ForwardOutputs(self))
        self.hls = HlsOutputs(self)
        self.sources.add_output_factory(self.hls)
        self.dvr = DvrOutputs(self)
        self.sources.add_output_factory(self.dvr)
        auth = config.root["http_api"]["auth"]
        self.auth_mux = HttpAuthMux(self.http, auth["enabled"], auth["username"], auth["password"])
        self.cors_mux = HttpCorsMux(self.auth_mux, http_conf["crossdomain"])
        self.api_handler = None
        self._quit = Event()
        self._stopped = False
        self._greenlets: list = []
        self._pid_file = None
        # Extension points for plugins: publish_filters run f(req) before a publish takes its
        # source (may rename req.stream, or raise AccessDenied); start_hooks f() run before
        # the listeners accept, stop_hooks f() once the connections are gone.
        self.publish_filters: list = []
        self.start_hooks: list = []
        self.stop_hooks: list = []
        self._load_plugins()

    # -- construction ----------------------------------------------------------------
    @classmethod
    def from_file(cls, path: str, env=None) -> "Server":
        return cls(load_config(path=path, env=env))

    @classmethod
    def from_text(cls, text: str, env=None) -> "Server":
        return cls(load_config(text=text, env=env))

    def _source_options(self, req) -> SourceOptions:
        found = self.config.resolve_vhost(req.vhost)
        return SourceOptions.from_vhost(found[1]) if found else SourceOptions()

    def _load_plugins(self):
        """``plugin module[:function];`` in the config (or ``--plugin``): call function(server)."""
        specs = list(self.config.root.get("plugin") or [])
        if self.config.root["livego"]["enabled"] and "srspy.plugins.livego" not in specs:
            specs.append("srspy.plugins.livego")  # livego { enabled on; } loads its plugin
        for spec in specs:
            self.load_plugin(spec)

    def load_plugin(self, spec: str):
        mod_name, _, fn_name = spec.partition(":")
        try:
            mod = importlib.import_module(mod_name)
            fn = getattr(mod, fn_name or "setup")
        except (ImportError, AttributeError) as e:
            raise ConfigError(f"plugin {spec}: {e}") from e
        fn(self)
        logger.info("plugin {} loaded", spec)

    # -- start / stop ------------------------------------------------------------------
    def start(self):
        cfg = self.config.root
        for ep in cfg["listen"]:
            lst = TcpListener(ep, self._handle_rtmp, "RTMP")
            self.listeners.append(lst)
            self.rtmp_ports.append(lst.port)
        http_conf, api_conf = cfg["http_server"], cfg["http_api"]
        if http_conf["enabled"]:
            lst = TcpListener(http_conf["listen"], self._handle_http, "HTTP-Server")
            self.listeners.append(lst)
            self.http_port = lst.port
        if api_conf["enabled"]:
            self._mount_api()
            if not api_conf["auth"]["enabled"] and not _loopback(api_conf["listen"]):
                logger.warning("http_api listens on {} beyond loopback without auth: anyone who reaches it can kick "
                               "clients and read the server's state; turn http_api.auth on or listen on 127.0.0.1",
                               api_conf["listen"])
            if http_conf["enabled"] and str(api_conf["listen"]) == str(http_conf["listen"]):
                self.api_port = self.http_port
            else:
                lst = TcpListener(api_conf["listen"], self._handle_api, "HTTP-API")
                self.listeners.append(lst)
                self.api_port = lst.port
        elif cfg["exporter"]["enabled"]:
            self._mount_api(api_enabled=False)
        for fn in self.start_hooks:
            fn()
        for lst in self.listeners:
            lst.start()
        self.sources.start()
        self._greenlets.append(gevent.spawn(self._timer_loop))
        self._write_pid()
        logger.info("{} started, pid={}, rtmp={}, http={}, api={}", SERVER, os.getpid(), self.rtmp_ports, self.http_port, self.api_port)
        for line in pages.banner(self).splitlines():  # one record a line: records are one line each
            logger.info("{}", line)

    # -- HTTP API and exporter (srspy/http/api.py) ------------------------------------------
    def _mount_api(self, api_enabled: bool = True):
        """The HTTP API and the Prometheus exporter.

        The API's handlers go into the static mux when ``http_api.listen`` equals
        ``http_server.listen``; otherwise ``api_handler`` is the CORS -> Auth -> API chain the
        API listener serves. The exporter listener serves that chain too, unless its port is
        the API's or the HTTP server's (then ``/metrics`` is served there).
        """
        self.api_handler = api.mount(self, api_enabled)
        root = self.config.root
        exp = root["exporter"]
        if not exp["enabled"]:
            return
        shared = {str(root["http_api"]["listen"])} if api_enabled else set()
        if api_enabled and root["http_server"]["enabled"]:
            shared.add(str(root["http_server"]["listen"]))
        if str(exp["listen"]) in shared:
            logger.info("exporter: /metrics served on port {}", exp["listen"])
            return
        chain = self.exporter_chain = api.chain(self, self.api, metrics_auth=False)  # SRS: no auth on the exporter
        lst = TcpListener(exp["listen"], lambda sock, addr: self._handle_http(sock, addr, chain, api=False), "Exporter")
        self.listeners.append(lst)
        self.exporter_port = lst.port

    exporter_port: int | None = None
    exporter_chain = None

    def serve_forever(self):
        """Install the signal handlers, start, run until a quit signal or ``stop()``."""
        self.install_signals()
        if not self.listeners:
            self.start()
        self._quit.wait()
        self.stop(graceful=self._graceful)

    _graceful = True
    _signals_installed = False

    # -- signals -----------------------------------------------------------------------------
    def install_signals(self):
        """SIGQUIT, SIGINT: graceful quit; SIGTERM: fast quit (graceful with force_grace_quit);
        SIGHUP: reload the config; SIGUSR1: reopen the log file. Handlers run in greenlets.
        Installed once (before the listeners open: a signal right after start-up is handled)."""
        if self._signals_installed:
            return
        self._signals_installed = True
        gevent.signal_handler(signal.SIGTERM, lambda: self.quit(bool(self.config.root["force_grace_quit"])))
        gevent.signal_handler(signal.SIGINT, self.quit, True)
        gevent.signal_handler(signal.SIGQUIT, self.quit, True)
        gevent.signal_handler(signal.SIGHUP, self.reload)
        gevent.signal_handler(signal.SIGUSR1, log.reopen)

    def quit(self, graceful: bool = True):
        logger.info("signal: {} quit", "graceful" if graceful else "fast")
        self._graceful = graceful
        self._quit.set()

    def stop(self, graceful: bool = False):
        """Stop accepting, end publishers (their players get a clean end), close everything."""
        if self._stopped:
            return
        self._stopped = True
        for lst in self.listeners:
            lst.close()
        if graceful:
            deadline = time.monotonic() + GRACE_MAX_S
            for conn in list(self.conns.values()):
                if getattr(conn, "publishing_now", False):
                    conn.expire()
            end = min(deadline, time.monotonic() + GRACE_DRAIN_S)
            while self.conns and time.monotonic() < end and any(getattr(c, "publishing_now", False) for c in self.conns.values()):
                gevent.sleep(0.05)
            gevent.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
        for conn in list(self.conns.values()):
            conn.expire()
        if graceful:
            end = time.monotonic() + 1.0
            while self.conns and time.monotonic() < end:
                gevent.sleep(0.05)
        self.edge.stop()
        for fn in self.stop_hooks:
            fn()
        if graceful:
            self.hooks.drain(1.0)  # on_unpublish/on_stop/on_close still in flight
        self.sources.stop()
        for g in self._greenlets:
            g.kill(block=False)
        self._remove_pid()
        self._quit.set()
        logger.info("server stopped")

    # -- pid file ------------------------------------------------------------------------
    def _write_pid(self):
        path = self.config.root.get("pid")
        if not path:
            return
        try:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            with open(path, "w") as f:
                f.write(f"{os.getpid()}\n")
            self._pid_file = path
        except OSError as e:
            logger.warning("cannot write pid file {}: {}", path, e)

    def _remove_pid(self):
        if self._pid_file:
            try:
                os.unlink(self._pid_file)
            except OSError:
                pass
            self._pid_file = None

    # -- connections -----------------------------------------------------------------------
    def _admit(self, sock, addr, kind: str, api: bool = False) -> bool | None:
        """Admit a new connection: ``max_connections`` for all of them, the API's reserve
        (``limits.api_reserve``) beyond it for a port that serves the API, and
        ``limits.connections_per_ip``. None: refused and closed; True: admitted into the
        API's reserve; False: admitted."""
        root = self.config.root
        limits = root["limits"]
        limit = root["max_connections"]
        ip = addr[0] if addr else ""
        n = len(self.conns)
        reserved = n >= limit
        why = None
        if reserved and not (api and n < limit + limits["api_reserve"]):
            why = f"max_connections={limit} reached (code 1074)"
        elif limits["connections_per_ip"] and self.per_ip.get(ip, 0) >= limits["connections_per_ip"]:
            why = f"connections_per_ip={limits['connections_per_ip']} reached"
        if why is not None:
            self.rejected += 1
            self.stat.clients_errs += 1
            logger.warning("{} client {}:{} rejected: {}, rejected={}", kind, ip, addr[1] if addr else 0, why,
                           self.rejected)
            try:
                sock.close()
            except OSError:
                pass
            return None
        self.per_ip[ip] = self.per_ip.get(ip, 0) + 1
        return reserved

    def _release(self, ip: str):
        n = self.per_ip.get(ip, 0) - 1
        if n > 0:
            self.per_ip[ip] = n
        else:
            self.per_ip.pop(ip, None)

    def _handle_rtmp(self, sock, addr):
        if self._admit(sock, addr, "RTMP") is None:
            return
        conn = RtmpConn(self, sock, addr)
        self.conns[conn.cid] = conn
        conn.serve()

    def _handle_http(self, sock, addr, handler=None, api: bool | None = None):
        if api is None:  # the HTTP server's port: it serves the API too when they share it
            api = self.api_port is not None and self.api_port == self.http_port
        reserved = self._admit(sock, addr, "HTTP", api)
        if reserved is None:
            return
        cid = new_cid()
        limits = self.config.root["limits"]
        # the API's and the exporter's own listeners say Connection: Close as SRS's API does;
        # the HTTP server's port only on the API's paths (http/conn.py)
        conn = HttpConn(sock, addr, handler or self.cors_mux, cid=cid, idle_timeout=limits["idle_timeout"],
                        send_timeout=limits["send_timeout"], on_request=_api_only if reserved and handler is None else None,
                        close_header=handler is not None)
        self.conns[cid] = conn
        try:
            conn.serve()
        finally:
            self.stat.on_disconnect(cid)
            self.conns.pop(cid, None)
            self._release(addr[0] if addr else "")

    def _handle_api(self, sock, addr):
        self._handle_http(sock, addr, self.api_handler or self.cors_mux, api=True)

    def on_conn_closed(self, conn):
        if self.conns.pop(conn.cid, None) is not None:
            self._release(conn.ip)

    # -- access checks (security, refer) ---------------------------------------------------------
    def check_access(self, vconf: dict, action: str, req):
        """The vhost's security and refer rules for ``action``; raises AccessDenied."""
        security.check(vconf, action, req)

    # -- reload and timers ------------------------------------------------------------------------
    # -- reload and the timer ----------------------------------------------------------------
    #: How the last reload went, as SRS's ``rpc=reload-fetch`` tells it.
    reload_state: dict | None = None

    def reload(self):
        """SIGHUP / ``rpc=reload``: load the config again and apply it to new connections.

        Connections read vhost settings (play, publish, security, refer, http_hooks) from
        ``self.config`` when they start, so swapping it applies them; the log level, the
        HTTP-FLV mount templates (published streams are mounted again), the API auth and
        CORS, max_connections and pithy_print_ms are applied here. Listeners stay: a change
        of a listen port is logged as needing a restart. A config that does not load keeps
        the running one.
        """
        rid = new_cid()
        try:
            new = self.config.reload()
        except ConfigError as e:
            logger.error("reload failed, keep the running config: {}", e)
            msg = str(e).splitlines()[0] if str(e) else ""
            self.reload_state = {"err": e.code, "msg": msg, "state": 10, "rid": rid}
            return
        old = self.config
        self.config = new
        log.set_level(new.root["srs_log_level"])
        old_templates = dict(self.streams.templates)
        self.streams.reload_templates()
        for src in list(self.sources.sources.values()):
            vhost = src.req.vhost
            if src.publishing and old_templates.get(vhost) != self.streams.templates.get(vhost):
                if vhost in self.streams.templates:
                    self.streams.http_mount(src.req)
                else:
                    self.streams.http_unmount(src.req)
        auth = new.root["http_api"]["auth"]
        self.auth_mux.enabled, self.auth_mux.username, self.auth_mux.password = auth["enabled"], auth["username"], auth["password"]
        self.cors_mux.enabled = new.root["http_server"]["crossdomain"]
        if self.api_handler is not None or getattr(self, "api_chain", None) is not None:
            api.on_reload(self)
        for path in ("listen", "http_server.listen", "http_server.enabled", "http_api.listen", "http_api.enabled",
                     "exporter.listen", "exporter.enabled",
                     *(f"livego.{k}" for k in ("enabled", "listen", "flv_listen", "keys_file", "apps", "rtmp_noauth"))):
            if old.get(path) != new.get(path):
                logger.warning("reload: {} changed from {} to {}, which needs a restart; keeping the old one",
                               path, old.get(path), new.get(path))
        self.reload_state = {"err": 0, "msg": "", "state": 90, "rid": rid}
        logger.info("reload: config {} applied", new.path or "<text>")

    #: Seconds between two kbps samples of the statistics.
    sample_interval = 1.0

    def _timer_loop(self):
        """Sample the statistics' byte counters every second (kbps) and log a one-line
        summary every ``pithy_print_ms``."""
        last = time.monotonic()
        while True:
            gevent.sleep(self.sample_interval)
            self.stat.sample()
            now = time.monotonic()
            if now - last >= self.config.root["pithy_print_ms"] / 1000.0:
                last = now
                logger.info("stats: {}, conns={}, rejected={}", self.stat.summary(), len(self.conns), self.rejected)

def _api_only(r):
    """A connection admitted into the API's reserve on a port shared with the HTTP server:
    it may ask for the API or the console, nothing else."""
    if not r.path.startswith(("/api/", "/console/")):
        e = HttpError(503, "max_connections reached: the remaining connections are kept for the API")
        e.close = True
        raise e


__all__ = ["Server"]
