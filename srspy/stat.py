"""Port of SrsStatistic: clients, streams and vhosts, shared by the API, hooks and logs.

Connections register when they are identified (``on_client``) and leave on close
(``on_disconnect``); a publisher also marks its stream active (``on_stream_publish`` /
``on_stream_unpublish``). Bytes are read from the connections' own counters
(``send_bytes``/``recv_bytes``, or ``bytes_out``/``bytes_in`` for HTTP connections), and
bitrates are computed on the server's timer (``sample``) from those counters, never per
packet. A stream entry lives while it is published or has clients, as in SRS.

The JSON shapes of the HTTP API are built here (``dumps``), field by field as SRS 6 does;
the API joins them with what only the live source knows (codecs, frames).
"""

from __future__ import annotations

import os
import random
import string
import time

from .live.hub import SourceListener

_ALPHABET = string.ascii_lowercase + string.digits
KBPS_WINDOW_S = 30.0


def random_str(n: int) -> str:
    return "".join(random.choices(_ALPHABET, k=n))


def stat_id() -> str:
    """SRS's srs_generate_stat_vid: ``vid-`` and 7 random characters."""
    return "vid-" + random_str(7)


class Kbps:
    """The 30-second bitrate of byte counters, from samples taken on a timer."""

    __slots__ = ("samples",)

    def __init__(self):
        self.samples: list = []  # (monotonic, recv, send), oldest first

    def sample(self, now: float, recv: int, send: int) -> None:
        s = self.samples
        s.append((now, recv, send))
        # keep one sample at or beyond the window edge, so the rate spans the full window
        while len(s) > 2 and now - s[1][0] >= KBPS_WINDOW_S:
            s.pop(0)

    def rates(self) -> tuple[int, int]:
        """(recv_30s, send_30s) in kbps; 0 until two samples exist."""
        s = self.samples
        if len(s) < 2:
            return 0, 0
        t0, r0, s0 = s[0]
        t1, r1, s1 = s[-1]
        dt = t1 - t0
        if dt <= 0:
            return 0, 0
        return max(0, int((r1 - r0) * 8 / 1000 / dt)), max(0, int((s1 - s0) * 8 / 1000 / dt))

    def dumps(self) -> dict:
        recv, send = self.rates()
        return {"recv_30s": recv, "send_30s": send}


def conn_bytes(conn) -> tuple[int, int]:
    """(send, recv) bytes of an RTMP connection (``send_bytes``) or an HTTP one (``bytes_out``)."""
    if conn is None:
        return 0, 0
    send = getattr(conn, "send_bytes", None)
    if send is None:
        send = getattr(conn, "bytes_out", 0)
    recv = getattr(conn, "recv_bytes", None)
    if recv is None:
        recv = getattr(conn, "bytes_in", 0)
    return int(send or 0), int(recv or 0)


class _Bytes:
    """``send_bytes`` and ``recv_bytes`` from a ``bytes()`` that gives (send, recv)."""

    __slots__ = ()

    @property
    def send_bytes(self) -> int:
        return self.bytes()[0]

    @property
    def recv_bytes(self) -> int:
        return self.bytes()[1]


class _Counted(_Bytes):
    """Bytes of the clients that left, plus those of the clients still here."""

    __slots__ = ()

    def bytes(self) -> tuple[int, int]:
        send, recv = self.send_closed, self.recv_closed
        for c in self.clients.values():
            s, r = c.bytes()
            send += s
            recv += r
        return send, recv


class ClientStat(_Bytes):
    """Port of SrsStatisticClient."""

    __slots__ = ("id", "req", "conn", "type", "stream", "vhost", "created", "kbps", "base")

    def __init__(self, cid: str, req, conn, type_: str, stream: "StreamStat", base: tuple[int, int] = (0, 0)):
        self.id = cid
        self.base = base  # the connection's (send, recv) already counted elsewhere
        self.req = req.copy() if hasattr(req, "copy") else req
        self.conn = conn
        self.type = type_
        self.stream = stream
        self.vhost = stream.vhost
        self.created = time.time()
        self.kbps = Kbps()

    @property
    def publish(self) -> bool:
        return self.type.endswith("-publish")

    def bytes(self) -> tuple[int, int]:
        """(send, recv) bytes of this client's connection since it became this client."""
        send, recv = conn_bytes(self.conn)
        return send - self.base[0], recv - self.base[1]

    def dumps(self, now: float | None = None) -> dict:
        now = time.time() if now is None else now
        req = self.req
        send, recv = self.bytes()
        return {
            "id": self.id,
            "vhost": self.vhost.id,
            "stream": self.stream.id,
            "ip": req.ip,
            "pageUrl": req.page_url,
            "swfUrl": req.swf_url,
            "tcUrl": req.tc_url,
            "url": req.stream_url,
            "name": req.stream_name,
            "type": self.type,
            "publish": self.publish,
            "alive": round(max(0.0, now - self.created), 3),
            "send_bytes": send,
            "recv_bytes": recv,
            "kbps": self.kbps.dumps(),
        }


class StreamStat(_Counted):
    """Port of SrsStatisticStream. ``url`` is the stream URL every table is keyed by."""

    __slots__ = ("id", "url", "vhost", "app", "name", "tc_url", "active", "publisher_cid", "clients", "kbps",
                 "send_closed", "recv_closed")

    def __init__(self, url: str, vhost: "VhostStat", req):
        self.id = stat_id()
        self.url = url
        self.vhost = vhost
        self.app = req.app
        self.name = req.stream_name
        self.tc_url = req.tc_url
        self.active = False
        self.publisher_cid = ""
        self.clients: dict[str, ClientStat] = {}
        self.kbps = Kbps()
        self.send_closed = 0
        self.recv_closed = 0

    def dumps(self, source=None, now_ms: int | None = None) -> dict:
        """The API object; ``source`` (the LiveSource, if any) gives frames and codecs."""
        send, recv = self.bytes()
        publish = {"active": self.active}
        if self.publisher_cid:
            publish["cid"] = self.publisher_cid
        video = audio = None
        if self.active and source is not None:
            vi = getattr(source, "video_info", None)
            if vi:
                video = {"codec": vi.get("codec", ""), "profile": vi.get("profile") or "Other",
                         "level": vi.get("level") or "Other", "width": vi.get("width", 0),
                         "height": vi.get("height", 0)}
            ai = getattr(source, "audio_info", None)
            if ai:
                audio = {"codec": ai.get("codec", ""), "sample_rate": ai.get("sample_rate", 0),
                         "channel": ai.get("channel", 0), "profile": ai.get("profile", "")}
        return {
            "id": self.id,
            "name": self.name,
            "vhost": self.vhost.id,
            "app": self.app,
            "tcUrl": self.tc_url,
            "url": self.url,
            "live_ms": int(time.time() * 1000) if now_ms is None else now_ms,
            "clients": len(self.clients),
            "frames": int(getattr(source, "frames", 0) or 0) if source is not None else 0,
            "send_bytes": send,
            "recv_bytes": recv,
            "kbps": self.kbps.dumps(),
            "publish": publish,
            "video": video,
            "audio": audio,
        }


class VhostStat(_Counted):
    """Port of SrsStatisticVhost."""

    __slots__ = ("id", "name", "clients", "streams", "kbps", "send_closed", "recv_closed")

    def __init__(self, name: str):
        self.id = stat_id()
        self.name = name
        self.clients: dict[str, ClientStat] = {}
        self.streams: dict[str, StreamStat] = {}  # by url
        self.kbps = Kbps()
        self.send_closed = 0
        self.recv_closed = 0

    def dumps(self, enabled: bool = True) -> dict:
        send, recv = self.bytes()
        return {
            "id": self.id,
            "name": self.name,
            "enabled": enabled,
            "clients": len(self.clients),
            "streams": sum(1 for s in self.streams.values() if s.active),
            "send_bytes": send,
            "recv_bytes": recv,
            "kbps": self.kbps.dumps(),
            "hls": {"enabled": False},
        }


class ProcSampler:
    """CPU use of this process (and of the system, from /proc/stat when there is one),
    as percentages over the last sampling interval (SRS's srs_update_proc_stat)."""

    __slots__ = ("cpu_percent", "system_cpu_percent", "_last_self", "_last_sys", "sample_time")

    def __init__(self):
        self.cpu_percent = 0.0  # of one core, 0..1 as SRS's percent
        self.system_cpu_percent = 0.0
        self._last_self = None
        self._last_sys = None
        self.sample_time = 0

    @staticmethod
    def _system_ticks():
        try:
            with open("/proc/stat", "rb") as f:
                fields = f.readline().split()[1:]
        except OSError:
            return None
        values = [int(x) for x in fields[:8]]
        idle = values[3] + (values[4] if len(values) > 4 else 0)
        return sum(values), idle

    def sample(self, now: float) -> None:
        t = os.times()
        used = t.user + t.system
        if self._last_self is not None:
            dt = now - self._last_self[0]
            if dt > 0:
                self.cpu_percent = max(0.0, (used - self._last_self[1]) / dt)
        self._last_self = (now, used)
        ticks = self._system_ticks()
        if ticks is not None:
            if self._last_sys is not None:
                total = ticks[0] - self._last_sys[0]
                if total > 0:
                    self.system_cpu_percent = max(0.0, 1.0 - (ticks[1] - self._last_sys[1]) / total)
            self._last_sys = ticks
        self.sample_time = int(time.time() * 1000)


class Statistic(_Counted):
    """Port of SrsStatistic: the registry of clients, streams and vhosts.

    Clients are keyed by connection id (the same id hooks send as ``client_id``),
    streams by stream URL (``/app/stream``, vhost-prefixed unless default), vhosts by
    name; ``find_*`` look them up by the ids the API shows.
    """

    def __init__(self, server_id: str = ""):
        self.server_id = server_id or stat_id()
        self.service_id = random_str(8)
        self.pid = str(os.getpid())
        self.clients: dict[str, ClientStat] = {}
        self.streams: dict[str, StreamStat] = {}
        self.vhosts: dict[str, VhostStat] = {}
        self.clients_total = 0
        self.clients_errs = 0
        self.send_closed = 0
        self.recv_closed = 0
        self.kbps = Kbps()
        self.proc = ProcSampler()
        self.started = time.time()

    # -- lookups ---------------------------------------------------------------------------
    def vhost(self, name: str) -> VhostStat:
        v = self.vhosts.get(name)
        if v is None:
            v = self.vhosts[name] = VhostStat(name)
        return v

    def stream(self, req) -> StreamStat:
        """Port of create_stream: the stream of ``req``, created on first use."""
        url = req.stream_url
        s = self.streams.get(url)
        if s is None:
            vhost = self.vhost(req.vhost)
            s = self.streams[url] = StreamStat(url, vhost, req)
            vhost.streams[url] = s
        return s

    def find_vhost(self, vid: str) -> VhostStat | None:
        return next((v for v in self.vhosts.values() if v.id == vid), None)

    def find_stream(self, sid: str) -> StreamStat | None:
        return next((s for s in self.streams.values() if s.id == sid), None)

    def find_stream_by_url(self, url: str) -> StreamStat | None:
        return self.streams.get(url)

    def find_client(self, cid: str) -> ClientStat | None:
        return self.clients.get(cid)

    # -- events --------------------------------------------------------------------------------
    def on_client(self, cid: str, req, conn, type_: str) -> ClientStat:
        """A connection is identified as a player or publisher of ``req``'s stream."""
        old = self.clients.get(cid)
        base = (0, 0)
        if old is not None:
            # identified again (republish, another stream): what it did so far stays
            # with the old stream; the server's totals go on from the same counters.
            send, recv = self._leave(old)
            self.send_closed += send
            self.recv_closed += recv
            base = conn_bytes(conn) if old.conn is conn else (0, 0)
        else:
            self.clients_total += 1
        stream = self.stream(req)
        c = ClientStat(cid, req, conn, type_, stream, base)
        self.clients[cid] = c
        stream.clients[cid] = c
        stream.vhost.clients[cid] = c
        return c

    def on_disconnect(self, cid: str, error: bool = False) -> None:
        """The connection ``cid`` is gone; ``error`` counts it in ``srs_clients_errs_total``."""
        c = self.clients.pop(cid, None)
        if c is None:
            return
        if error:
            self.clients_errs += 1
        send, recv = self._leave(c)
        self.send_closed += send
        self.recv_closed += recv

    def _leave(self, c: ClientStat) -> tuple[int, int]:
        send, recv = c.bytes()
        s, v = c.stream, c.vhost
        if s.clients.pop(c.id, None) is not None:
            s.send_closed += send
            s.recv_closed += recv
        if v.clients.pop(c.id, None) is not None:
            v.send_closed += send
            v.recv_closed += recv
        self._cleanup_stream(s)
        return send, recv

    def _cleanup_stream(self, s: StreamStat) -> None:
        """Port of cleanup_stream: a stream neither published nor played is forgotten."""
        if s.active or s.clients:
            return
        if self.streams.get(s.url) is s:
            del self.streams[s.url]
        if s.vhost.streams.get(s.url) is s:
            del s.vhost.streams[s.url]

    def on_stream_publish(self, req, cid: str) -> None:
        s = self.stream(req)
        s.active = True
        s.publisher_cid = cid
        s.tc_url = req.tc_url

    def on_stream_unpublish(self, req) -> None:
        s = self.streams.get(req.stream_url)
        if s is None:
            return
        s.active = False
        s.publisher_cid = ""
        self._cleanup_stream(s)

    # -- the source manager's listener (live/hub.py) ----------------------------------------------
    def listener(self) -> "StatListener":
        return StatListener(self)

    # -- bitrates (bytes, send_bytes, recv_bytes: _Counted) ---------------------------------------
    def sample(self, now: float | None = None) -> None:
        """One kbps sample of every client, stream, vhost and the server (the server's timer).

        Reads each connection's counters once; streams, vhosts and the server sum those.
        """
        now = time.monotonic() if now is None else now
        per_client = {}
        for cid, c in self.clients.items():
            send, recv = c.bytes()
            per_client[cid] = (send, recv)
            c.kbps.sample(now, recv, send)
        for group in (self.streams.values(), self.vhosts.values()):
            for g in group:
                send, recv = g.send_closed, g.recv_closed
                for cid in g.clients:
                    s, r = per_client.get(cid, (0, 0))
                    send += s
                    recv += r
                g.kbps.sample(now, recv, send)
        send, recv = self.send_closed, self.recv_closed
        for s, r in per_client.values():
            send += s
            recv += r
        self.kbps.sample(now, recv, send)
        self.proc.sample(now)

    # -- dumps -----------------------------------------------------------------------------------
    def dumps_clients(self, start: int = 0, count: int = 10) -> list[dict]:
        now = time.time()
        items = list(self.clients.values())[max(0, start):max(0, start) + max(0, count)]
        return [c.dumps(now) for c in items]

    def dumps_streams(self, start: int = 0, count: int = 10, source_for=None) -> list[dict]:
        now_ms = int(time.time() * 1000)
        items = list(self.streams.values())[max(0, start):max(0, start) + max(0, count)]
        return [s.dumps(source_for(s.url) if source_for else None, now_ms) for s in items]

    def dumps_vhosts(self, enabled_for=None) -> list[dict]:
        return [v.dumps(enabled_for(v.name) if enabled_for else True) for v in self.vhosts.values()]

    def metrics(self) -> dict:
        """SrsStatistic::dumps_metrics: what the Prometheus exporter reports."""
        send, recv = self.bytes()
        return {"send_bytes": send, "recv_bytes": recv, "streams": len(self.streams), "clients": len(self.clients),
                "clients_total": self.clients_total, "clients_errs": self.clients_errs}

    def summary(self) -> str:
        """The periodic one-line summary of the log."""
        recv, send = self.kbps.rates()
        active = sum(1 for s in self.streams.values() if s.active)
        return (f"streams={len(self.streams)} (publishing {active}), clients={len(self.clients)}, "
                f"kbps in={recv} out={send}")


class StatListener(SourceListener):
    """Streams become active when published (their publisher is ``source.publisher``: an
    RTMP connection or an edge pull) and inactive when it leaves."""

    def __init__(self, stat: Statistic):
        self.stat = stat

    def on_publish(self, source) -> None:
        pub = source.publisher
        self.stat.on_stream_publish(pub.req, pub.cid)

    def on_unpublish(self, source) -> None:
        self.stat.on_stream_unpublish(source.publisher.req)


__all__ = ["StatListener", "ClientStat", "Kbps", "ProcSampler", "Statistic", "StreamStat", "VhostStat", "conn_bytes", "stat_id"]
