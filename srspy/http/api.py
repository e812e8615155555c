"""Port of srs_app_http_api: the HTTP API (/api/v1/...) and the Prometheus exporter (/metrics).

``mount(server)`` builds the API mux. When ``http_api.listen`` equals
``http_server.listen`` the API shares the HTTP server's port: its handlers go into the
static mux (``/api/`` paths always route there) and ``mount`` returns None. Otherwise
``mount`` returns the chain the API listener serves: CORS -> Auth -> API mux, with ``/``
answering the API root. ``/metrics`` lives on the API mux too, and the exporter listener
(``exporter.listen``) serves the same chain.

Conventions, as SRS:

* JSON bodies with ``Content-Length`` and ``X-Content-Type-Options: nosniff``;
  ``?callback=fn`` answers JSONP (``fn(...)``, text/javascript), where ``fn`` must be a
  JavaScript identifier path (``cb``, ``jQuery1_2.x$``; anything else is 400); with
  ``http_api.jsonp_method_override on`` a JSONP GET may name another method with
  ``?method=`` (SRS's console kicks clients that way; off by default, since any web page
  can make a visitor's browser send such a GET);
* every object answer carries ``code`` (0 ok), ``server`` (server id), ``service`` (this
  process's random id) and ``pid`` (a string); errors answer HTTP 200 with their SRS code
  (2048 stream, 2049 client, 2014 vhost not found; 1060/1061 raw api; 1090 exporter off);
* ``/api/`` and ``/api/v1/`` are prefixes: an unknown ``/api/...`` path gets the index;
  ``/api/v1/streams`` redirects to ``/api/v1/streams/`` (the mux's implicit 302);
* a method other than GET (DELETE for clients) answers 405.
"""

from __future__ import annotations

import gc
import json
import os
import platform
import re
import resource
import sys
import time

from greenlet import greenlet
from loguru import logger

from .. import SERVER, __version__
from ..errors import ERROR_RTMP_CLIENT_NOT_FOUND, ERROR_RTMP_NO_VHOST, ERROR_RTMP_STREAM_NOT_FOUND
from .auth import HttpAuthMux
from .cors import HttpCorsMux
from .mux import HttpServeMux, write_text

ERROR_SUCCESS = 0
ERROR_SYSTEM_CONFIG_RAW = 1060
ERROR_SYSTEM_CONFIG_RAW_DISABLED = 1061
ERROR_EXPORTER_DISABLED = 1090
HTTP_BAD_REQUEST = 400

API_V1_URLS = {
    "versions": "the version of SRS",
    "summaries": "the summary(pid, argv, pwd, cpu, mem) of SRS",
    "rusages": "the rusage of SRS",
    "self_proc_stats": "the self process stats",
    "system_proc_stats": "the system process stats",
    "meminfos": "the meminfo of system",
    "authors": "the license, copyright, authors and contributors",
    "features": "the supported features of SRS",
    "requests": "the request itself, for http debug",
    "vhosts": "manage all vhosts or specified vhost",
    "streams": "manage all streams or specified stream",
    "clients": "manage all clients or specified client, default query top 10 clients",
    "raw": "raw api for srs, support CUID srs for instance the config",
}

# /proc/self/stat fields after comm and state, in order (proc(5)), as SRS's SrsProcSelfStat names them.
_PROC_SELF_FIELDS = (
    "ppid", "pgrp", "session", "tty_nr", "tpgid", "flags", "minflt", "cminflt", "majflt", "cmajflt", "utime",
    "stime", "cutime", "cstime", "priority", "nice", "num_threads", "itrealvalue", "starttime", "vsize", "rss",
    "rsslim", "startcode", "endcode", "startstack", "kstkesp", "kstkeip", "signal", "blocked", "sigignore",
    "sigcatch", "wchan", "nswap", "cnswap", "exit_signal", "processor", "rt_priority", "policy",
    "delayacct_blkio_ticks", "guest_time", "cguest_time",
)


# -- responses -----------------------------------------------------------------------------
#: A JSONP callback: dotted JavaScript identifiers (ASCII), at most 128 characters.
_CALLBACK = re.compile(r"[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*", re.ASCII)
MAX_CALLBACK = 128


def _is_jsonp(r) -> bool:
    return bool(r.args.get("callback"))


def valid_callback(callback: str) -> bool:
    return len(callback) <= MAX_CALLBACK and _CALLBACK.fullmatch(callback) is not None


def method_of(r, override: bool = False) -> str:
    """The request's method; with ``override`` a JSONP request may name another one with
    ``?method=`` (``http_api.jsonp_method_override``)."""
    if override and _is_jsonp(r) and r.args.get("method"):
        return r.args["method"].upper()
    return r.method


def respond(w, r, obj, content_type: str = "application/json") -> None:
    """Port of srs_api_response: JSON (or JSONP with ``?callback=``) with Content-Length."""
    data = obj if isinstance(obj, (bytes, str)) else json.dumps(obj, separators=(",", ":"))
    body = data.encode() if isinstance(data, str) else data
    callback = r.args.get("callback")
    h = w.header()
    if callback and valid_callback(callback):  # ``checked`` answered 400 to any other
        body = callback.encode() + b"(" + body + b")"
        content_type = "text/javascript"
    h["Content-Type"] = content_type
    h["X-Content-Type-Options"] = "nosniff"
    h["Content-Length"] = str(len(body))
    w.write_header(200)
    w.write(body)


def checked(handler):
    """``handler`` behind the JSONP check: a ``callback`` that is not an identifier path
    answers 400 before the handler runs (it would be reflected as script)."""
    def serve(w, r):
        callback = r.args.get("callback")
        if callback and not valid_callback(callback):
            w.header()["X-Content-Type-Options"] = "nosniff"
            return write_text(w, HTTP_BAD_REQUEST, "Bad Request: callback must be a JavaScript identifier path")
        return handler(w, r)

    return serve


def _method_not_allowed(w) -> None:
    write_text(w, 405, "Method Not Allowed")


def _proc_self_stat() -> dict:
    """/proc/self/stat as SRS's SrsProcSelfStat; ok false where there is no /proc."""
    out = {"ok": False, "pid": os.getpid(), "comm": "", "state": ""}
    out.update({k: 0 for k in _PROC_SELF_FIELDS})
    try:
        with open("/proc/self/stat") as f:
            text = f.read()
    except OSError:
        return out
    lpar, rpar = text.find("("), text.rfind(")")
    out["comm"] = text[lpar + 1:rpar]
    rest = text[rpar + 2:].split()
    out["state"] = rest[0] if rest else ""
    for name, value in zip(_PROC_SELF_FIELDS, rest[1:]):
        try:
            out[name] = int(value)
        except ValueError:
            pass
    out["ok"] = True
    return out


def _greenlets() -> int:
    """Greenlets alive in this process (srspy extension of summaries and self_proc_stats, for
    leak watching: tools/soak.py samples it). Walks the collector's objects: a few ms."""
    return sum(1 for o in gc.get_objects() if isinstance(o, greenlet) and not o.dead)


def _meminfo() -> dict:
    out = {"ok": False, "MemTotal": 0, "MemFree": 0, "MemActive": 0, "Buffers": 0, "Cached": 0, "SwapTotal": 0,
           "SwapFree": 0}
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                name, _, value = line.partition(":")
                name = "MemActive" if name == "Active" else name
                if name in out:
                    out[name] = int(value.split()[0])
    except (OSError, ValueError, IndexError):
        return {**out, "percent_ram": 0.0, "percent_swap": 0.0, "RealInUse": 0, "NotInUse": 0}
    out["ok"] = True
    real = out["MemTotal"] - out["MemFree"] - out["Buffers"] - out["Cached"]
    out["RealInUse"] = max(0, real)
    out["NotInUse"] = out["MemTotal"] - out["RealInUse"]
    out["percent_ram"] = out["RealInUse"] / out["MemTotal"] if out["MemTotal"] else 0.0
    swap_used = out["SwapTotal"] - out["SwapFree"]
    out["percent_swap"] = swap_used / out["SwapTotal"] if out["SwapTotal"] else 0.0
    return out


def _read_first(path: str) -> list[str]:
    try:
        with open(path) as f:
            return f.readline().split()
    except OSError:
        return []


def _net_devices() -> tuple[int, int, int, int]:
    """(recv, send, intranet recv, intranet send) bytes of the network devices; ``lo`` is intranet."""
    nr = ns = nri = nsi = 0
    try:
        with open("/proc/net/dev") as f:
            lines = f.readlines()[2:]
    except OSError:
        return 0, 0, 0, 0
    for line in lines:
        name, _, data = line.partition(":")
        fields = data.split()
        if len(fields) < 9:
            continue
        rbytes, sbytes = int(fields[0]), int(fields[8])
        if name.strip() == "lo":
            nri += rbytes
            nsi += sbytes
        else:
            nr += rbytes
            ns += sbytes
    return nr, ns, nri, nsi


def _sockstat() -> dict:
    out = {"conn_sys": 0, "conn_sys_et": 0, "conn_sys_tw": 0, "conn_sys_udp": 0}
    try:
        with open("/proc/net/sockstat") as f:
            for line in f:
                kind, _, rest = line.partition(":")
                v = rest.split()
                kv = dict(zip(v[::2], v[1::2]))
                if kind == "TCP":
                    out["conn_sys"] = int(kv.get("alloc", 0))
                    out["conn_sys_et"] = int(kv.get("inuse", 0))
                    out["conn_sys_tw"] = int(kv.get("tw", 0))
                elif kind == "UDP":
                    out["conn_sys_udp"] = int(kv.get("inuse", 0))
    except (OSError, ValueError):
        pass
    return out


def rss_kbyte() -> int:
    """Resident memory of this process in KB (``/proc/self/statm``, else the peak RSS)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


# -- the API ------------------------------------------------------------------------------------
class HttpApi:
    """The API handlers of one server (SrsGoApi*), as methods of one object."""

    def __init__(self, server):
        self.server = server
        self.mux = HttpServeMux()
        self.started = time.time()

    # -- helpers ----------------------------------------------------------------------------
    def head(self, code: int = ERROR_SUCCESS) -> dict:
        stat = self.server.stat
        return {"code": code, "server": stat.server_id, "service": stat.service_id, "pid": stat.pid}

    def method(self, r) -> str:
        return method_of(r, self.server.config.root["http_api"]["jsonp_method_override"])

    def error(self, w, r, code: int) -> None:
        """Port of srs_api_response_code: HTTP 200 and ``{"code": N, ...}``."""
        respond(w, r, self.head(code))

    def _source_for(self, url: str):
        sources = getattr(self.server, "sources", None)
        return sources.sources.get(url) if sources is not None else None

    def _vhost_enabled(self, name: str) -> bool:
        v = self.server.config.vhost(name)
        return bool(v["enabled"]) if v is not None else True

    @staticmethod
    def _rest_id(r, prefix: str) -> str:
        """Port of SrsHttpMessage::parse_rest_id: what follows the pattern."""
        return r.path[len(prefix):] if r.path.startswith(prefix) else ""

    @staticmethod
    def _start_count(r) -> tuple[int, int]:
        def atoi(s: str | None) -> int:
            try:
                return int(s or 0)
            except ValueError:
                return 0

        return max(0, atoi(r.args.get("start"))), max(10, atoi(r.args.get("count")))

    # -- registration -----------------------------------------------------------------------
    def handlers(self) -> list[tuple[str, object]]:
        return [
            ("/api/", self.api),
            ("/api/v1/", self.v1),
            ("/api/v1/versions", self.versions),
            ("/api/v1/summaries", self.summaries),
            ("/api/v1/rusages", self.rusages),
            ("/api/v1/self_proc_stats", self.self_proc_stats),
            ("/api/v1/system_proc_stats", self.system_proc_stats),
            ("/api/v1/meminfos", self.meminfos),
            ("/api/v1/authors", self.authors),
            ("/api/v1/features", self.features),
            ("/api/v1/requests", self.requests),
            ("/api/v1/vhosts/", self.vhosts),
            ("/api/v1/streams/", self.streams),
            ("/api/v1/clients/", self.clients),
            ("/api/v1/raw", self.raw),
            ("/api/v1/tests/errors", self.tests_errors),
            ("/metrics", self.metrics),
        ]

    # -- index ------------------------------------------------------------------------------
    def root(self, w, r):
        """SrsGoApiRoot, ``/`` of a dedicated API port; other unknown paths are 404."""
        if r.path != "/":
            return write_text(w, 404, "Not Found")
        respond(w, r, {**self.head(), "urls": {"api": "the api root"}})

    def api(self, w, r):
        respond(w, r, {**self.head(), "urls": {"v1": "the api version 1.0"}})

    def v1(self, w, r):
        respond(w, r, {**self.head(), "urls": dict(API_V1_URLS),
                       "tests": {"errors": "always return an error 100"}})

    def tests_errors(self, w, r):
        self.error(w, r, 100)

    # -- process ----------------------------------------------------------------------------
    def versions(self, w, r):
        parts = (__version__.split(".") + ["0", "0", "0"])[:3]
        nums = [int(p) if p.isdigit() else 0 for p in parts]
        respond(w, r, {**self.head(), "data": {"major": nums[0], "minor": nums[1], "revision": nums[2],
                                               "version": __version__}})

    def summaries(self, w, r):
        srv = self.server
        stat = srv.stat
        ru = resource.getrusage(resource.RUSAGE_SELF)
        mem = _meminfo()
        proc = _proc_self_stat()
        now = time.time()
        uptime = _read_first("/proc/uptime")
        try:
            load = os.getloadavg()
        except OSError:
            load = (0.0, 0.0, 0.0)
        nr, ns, nri, nsi = _net_devices()
        send, recv = stat.bytes()
        online = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        data = {
            "ok": mem["ok"] and proc["ok"],
            "now_ms": int(now * 1000),
            "self": {
                "version": __version__,
                "pid": os.getpid(),
                "ppid": os.getppid(),
                "argv": " ".join(sys.argv),
                "cwd": os.getcwd(),
                "mem_kbyte": ru.ru_maxrss,
                "mem_percent": ru.ru_maxrss / mem["MemTotal"] if mem["MemTotal"] else 0.0,
                "cpu_percent": stat.proc.cpu_percent,
                "srs_uptime": int(now - stat.started),
                "greenlets": _greenlets(),
            },
            "system": {
                "cpu_percent": stat.proc.system_cpu_percent,
                "disk_read_KBps": 0,
                "disk_write_KBps": 0,
                "disk_busy_percent": 0.0,
                "mem_ram_kbyte": mem["MemTotal"],
                "mem_ram_percent": mem["percent_ram"],
                "mem_swap_kbyte": mem["SwapTotal"],
                "mem_swap_percent": mem["percent_swap"],
                "cpus": os.cpu_count() or 1,
                "cpus_online": online,
                "uptime": float(uptime[0]) if uptime else 0.0,
                "ilde_time": float(uptime[1]) if len(uptime) > 1 else 0.0,  # sic, as SRS spells it
                "load_1m": load[0],
                "load_5m": load[1],
                "load_15m": load[2],
                "net_sample_time": int(now * 1000),
                "net_recv_bytes": nr,
                "net_send_bytes": ns,
                "net_recvi_bytes": nri,
                "net_sendi_bytes": nsi,
                "srs_sample_time": int(now * 1000),
                "srs_recv_bytes": recv,
                "srs_send_bytes": send,
                **_sockstat(),
                "conn_srs": len(srv.conns),
            },
        }
        respond(w, r, {**self.head(), "data": data})

    def rusages(self, w, r):
        ru = resource.getrusage(resource.RUSAGE_SELF)
        data = {"ok": True, "sample_time": int(time.time() * 1000), "ru_utime": int(ru.ru_utime),
                "ru_stime": int(ru.ru_stime)}
        for name in ("ru_maxrss", "ru_ixrss", "ru_idrss", "ru_isrss", "ru_minflt", "ru_majflt", "ru_nswap",
                     "ru_inblock", "ru_oublock", "ru_msgsnd", "ru_msgrcv", "ru_nsignals", "ru_nvcsw", "ru_nivcsw"):
            data[name] = getattr(ru, name)
        respond(w, r, {**self.head(), "data": data})

    def self_proc_stats(self, w, r):
        p = _proc_self_stat()
        data = {"ok": p.pop("ok"), "sample_time": int(time.time() * 1000),
                "percent": self.server.stat.proc.cpu_percent, "greenlets": _greenlets(), **p}
        respond(w, r, {**self.head(), "data": data})

    def system_proc_stats(self, w, r):
        fields = _read_first("/proc/stat")
        names = ("user", "nice", "sys", "idle", "iowait", "irq", "softirq", "steal", "guest")
        data = {"ok": bool(fields), "sample_time": int(time.time() * 1000),
                "percent": self.server.stat.proc.system_cpu_percent}
        for i, name in enumerate(names):
            data[name] = int(fields[i + 1]) if len(fields) > i + 1 else 0
        respond(w, r, {**self.head(), "data": data})

    def meminfos(self, w, r):
        m = _meminfo()
        data = {"ok": m["ok"], "sample_time": int(time.time() * 1000), "percent_ram": m["percent_ram"],
                "percent_swap": m["percent_swap"]}
        for name in ("MemActive", "RealInUse", "NotInUse", "MemTotal", "MemFree", "Buffers", "Cached", "SwapTotal",
                     "SwapFree"):
            data[name] = m[name]
        respond(w, r, {**self.head(), "data": data})

    def authors(self, w, r):
        respond(w, r, {**self.head(), "data": {"license": "MIT", "contributors": "the srspy authors"}})

    def features(self, w, r):
        features = {"ssl": True, "hls": False, "hds": False, "callback": True, "api": True, "httpd": True,
                    "dvr": False, "transcode": False, "ingest": False, "stat": True, "caster": False,
                    "complex_send": True, "tcp_nodelay": True, "so_sendbuf": False, "mr": False}
        respond(w, r, {**self.head(), "data": {"options": "", "options2": "", "build": "", "build2": "",
                                               "features": features}})

    def requests(self, w, r):
        data = {"uri": r.url, "path": r.path, "METHOD": r.method,
                "headers": {"sigature": "srspy", "version": __version__, "time": int(time.time() * 1000)}}
        respond(w, r, {**self.head(), "data": data})

    # -- vhosts, streams, clients --------------------------------------------------------------
    def vhosts(self, w, r):
        stat = self.server.stat
        vid = self._rest_id(r, "/api/v1/vhosts/")
        vhost = None
        if vid and (vhost := stat.find_vhost(vid)) is None:
            return self.error(w, r, ERROR_RTMP_NO_VHOST)
        if self.method(r) != "GET":
            return _method_not_allowed(w)
        if vhost is None:
            obj = {**self.head(), "vhosts": [self._with_hls(v) for v in stat.dumps_vhosts(self._vhost_enabled)]}
        else:
            obj = {**self.head(), "vhost": self._with_hls(vhost.dumps(self._vhost_enabled(vhost.name)))}
        respond(w, r, obj)

    def _with_hls(self, obj: dict) -> dict:
        """SRS's ``"hls": {"enabled": true, "fragment": s}`` for a vhost with HLS on."""
        v = self.server.config.vhost(obj["name"])
        if v is not None and v["hls"]["enabled"]:
            obj["hls"] = {"enabled": True, "fragment": v["hls"]["hls_fragment"]}
        return obj

    def streams(self, w, r):
        stat = self.server.stat
        sid = self._rest_id(r, "/api/v1/streams/")
        stream = None
        if sid and (stream := stat.find_stream(sid)) is None:
            return self.error(w, r, ERROR_RTMP_STREAM_NOT_FOUND)
        if self.method(r) != "GET":
            return _method_not_allowed(w)
        if stream is None:
            start, count = self._start_count(r)
            obj = {**self.head(), "streams": stat.dumps_streams(start, count, self._source_for)}
        else:
            obj = {**self.head(), "stream": stream.dumps(self._source_for(stream.url))}
        respond(w, r, obj)

    def clients(self, w, r):
        srv = self.server
        stat = srv.stat
        cid = self._rest_id(r, "/api/v1/clients/")
        client = None
        if cid and (client := stat.find_client(cid)) is None:
            return self.error(w, r, ERROR_RTMP_CLIENT_NOT_FOUND)
        method = self.method(r)
        if method == "GET":
            if client is None:
                start, count = self._start_count(r)
                obj = {**self.head(), "clients": stat.dumps_clients(start, count)}
            else:
                obj = {**self.head(), "client": client.dumps()}
            return respond(w, r, obj)
        if method == "DELETE":
            if client is None:
                return self.error(w, r, ERROR_RTMP_CLIENT_NOT_FOUND)
            conn = client.conn if client.conn is not None else srv.conns.get(cid)
            if conn is None or not hasattr(conn, "expire"):
                logger.error("api: kickoff client id={} failed, no connection", cid)
                return self.error(w, r, HTTP_BAD_REQUEST)
            conn.expire()
            logger.warning("api: kickoff client id={} ok", cid)
            return respond(w, r, self.head())
        return _method_not_allowed(w)

    # -- raw ------------------------------------------------------------------------------------
    def raw(self, w, r):
        """SrsGoApiRaw: ``rpc=raw`` echoes the raw_api config; ``rpc=reload`` reloads the config
        (when raw_api.enabled and allow_reload); ``rpc=reload-fetch`` tells how the last one went."""
        srv = self.server
        conf = srv.config.root["http_api"]
        raw = conf["raw_api"]
        rpc = r.args.get("rpc", "")
        if rpc == "raw":
            return respond(w, r, {**self.head(), "http_api": {
                "enabled": conf["enabled"], "listen": str(conf["listen"]), "crossdomain": conf["crossdomain"],
                "raw_api": {"enabled": raw["enabled"], "allow_reload": raw["allow_reload"],
                            "allow_query": raw["allow_query"], "allow_update": raw["allow_update"]}}})
        if not raw["enabled"]:
            return self.error(w, r, ERROR_SYSTEM_CONFIG_RAW_DISABLED)
        if rpc not in ("reload", "reload-fetch"):
            return self.error(w, r, ERROR_SYSTEM_CONFIG_RAW)
        if rpc == "reload":
            if not raw["allow_reload"]:
                return self.error(w, r, ERROR_SYSTEM_CONFIG_RAW_DISABLED)
            logger.info("api: raw rpc=reload")
            srv.reload()
            return respond(w, r, self.head())
        state = getattr(srv, "reload_state", None) or {"err": 0, "msg": "", "state": 0, "rid": ""}
        respond(w, r, {**self.head(), "data": dict(state)})

    # -- exporter -------------------------------------------------------------------------------
    def metrics(self, w, r):
        """SrsGoApiMetrics: Prometheus text, or code 1090 when the exporter is disabled."""
        conf = self.server.config.root["exporter"]
        if not conf["enabled"]:
            return self.error(w, r, ERROR_EXPORTER_DISABLED)
        respond(w, r, self.metrics_text(conf.get("label") or "", conf.get("tag") or ""),
                content_type="text/plain; charset=utf-8")

    def metrics_text(self, label: str = "", tag: str = "") -> str:
        stat = self.server.stat
        m = stat.metrics()
        out = []

        def metric(name: str, kind: str, help_: str, value, labels: dict | None = None):
            out.append(f"# HELP {name} {help_}\n# TYPE {name} {kind}\n")
            if labels:
                text = ",".join(f'{k}="{_escape_label(str(v))}"' for k, v in labels.items())
                out.append(f"{name}{{{text}}} {value}\n")
            else:
                out.append(f"{name} {value}\n")

        u = platform.uname()
        metric("srs_node_uname_info", "gauge", "Labeled system information as provided by the uname system call.", 1,
               {"sysname": u.system, "nodename": u.node, "release": u.release, "version": u.version,
                "machine": u.machine})
        build = {"server": stat.server_id, "service": stat.service_id, "pid": stat.pid, "build_date": "",
                 "major": __version__.split(".")[0], "version": __version__, "code": SERVER}
        if label:
            build["label"] = label
        if tag:
            build["tag"] = tag
        metric("srs_build_info", "gauge",
               "A metric with a constant '1' value labeled by build_date, version from which SRS was built.", 1, build)
        metric("srs_cpu_percent", "gauge", "SRS cpu used percent.", _num(stat.proc.cpu_percent * 100))
        metric("srs_memory", "gauge", "SRS memory used.", rss_kbyte())
        metric("srs_send_bytes_total", "counter", "SRS total sent bytes.", m["send_bytes"])
        metric("srs_receive_bytes_total", "counter", "SRS total received bytes.", m["recv_bytes"])
        metric("srs_streams", "gauge", "The number of SRS concurrent streams.", m["streams"])
        metric("srs_clients", "gauge", "The number of SRS concurrent clients.", m["clients"])
        metric("srs_clients_total", "counter", "The total counts of SRS clients.", m["clients_total"])
        metric("srs_clients_errs_total", "counter", "The total errors of SRS clients.", m["clients_errs"])
        return "".join(out)


def _escape_label(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _num(v: float) -> str:
    return f"{v:.6g}"


# -- mounting -----------------------------------------------------------------------------------
def shares_http_port(config) -> bool:
    """True when the API is served by the HTTP server's listener (SRS #2881)."""
    root = config.root
    http, api = root["http_server"], root["http_api"]
    return bool(http["enabled"]) and str(api["listen"]) == str(http["listen"])


def mount(server, enabled: bool = True):
    """Register the API on ``server``; the handler chain of a dedicated API listener, or None
    when the API shares the HTTP server's port (its handlers went into the static mux).
    With ``enabled`` false (http_api off, exporter on) nothing goes into the HTTP server's
    mux: only the exporter's listener serves the chain, as in SRS."""
    api = HttpApi(server)
    server.api = api
    shared = enabled and shares_http_port(server.config)
    handlers = [(pattern, checked(handler)) for pattern, handler in api.handlers()]
    for pattern, handler in handlers:
        api.mux.handle(pattern, handler)
    api.mux.handle("/", checked(api.root))
    if shared:
        target = server.http.mux
        for pattern, handler in handlers:
            if pattern not in target.entries or not target.entries[pattern].explicit:
                target.handle(pattern, handler)
        logger.info("http api: mounted on the http server port")
    server.api_chain = chain(server, api)
    return None if shared else server.api_chain


def chain(server, api: HttpApi, metrics_auth: bool = True):
    """CORS -> Auth -> API mux, as SrsHttpConn composes them for the API listener; the
    exporter's own listener serves one with ``metrics_auth`` off (``/metrics`` open, as
    SRS has it)."""
    root = server.config.root
    auth = root["http_api"]["auth"]
    auth_mux = HttpAuthMux(api.mux, auth["enabled"], auth["username"], auth["password"], metrics=metrics_auth)
    return HttpCorsMux(auth_mux, root["http_api"]["crossdomain"])


def on_reload(server) -> None:
    """Apply the reloaded http_api auth and crossdomain to the API and exporter chains."""
    root = server.config.root
    auth = root["http_api"]["auth"]
    for name in ("api_chain", "exporter_chain"):
        c = getattr(server, name, None)
        if c is None:
            continue
        c.enabled = root["http_api"]["crossdomain"]
        a = c.next_
        a.enabled, a.username, a.password = auth["enabled"], auth["username"], auth["password"]


__all__ = ["HttpApi", "chain", "mount", "on_reload", "respond", "shares_http_port"]
