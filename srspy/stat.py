"""Port of SrsStatistic: clients, streams and vhosts, shared by the API, hooks and logs.

Connections register here when they are identified (``on_client``) and leave on close
(``on_disconnect``); bytes are read from the connections' own counters, and bitrates are
computed on a timer (``sample``), never per packet.
"""

from __future__ import annotations

import random
import string
import time


def _id(prefix: str) -> str:
    return prefix + "".join(random.choices(string.ascii_lowercase + string.digits, k=7))


class Kbps:
    """30-second bitrate from byte-counter deltas, sampled on a timer."""

    __slots__ = ("samples",)

    def __init__(self):
        self.samples: list = []  # (monotonic, recv, send)

    def sample(self, now: float, recv: int, send: int):
        self.samples.append((now, recv, send))
        while len(self.samples) > 2 and now - self.samples[1][0] >= 30.0:
            self.samples.pop(0)

    def rates(self) -> tuple[int, int]:
        """(recv_30s, send_30s) in kbps."""
        if len(self.samples) < 2:
            return 0, 0
        t0, r0, s0 = self.samples[0]
        t1, r1, s1 = self.samples[-1]
        dt = t1 - t0
        if dt <= 0:
            return 0, 0
        return int((r1 - r0) * 8 / 1000 / dt), int((s1 - s0) * 8 / 1000 / dt)


class ClientStat:
    __slots__ = ("id", "req", "conn", "type", "stream", "vhost", "created", "kbps")

    def __init__(self, cid: str, req, conn, type_: str, stream, vhost):
        self.id = cid
        self.req = req
        self.conn = conn
        self.type = type_
        self.stream = stream
        self.vhost = vhost
        self.created = time.time()
        self.kbps = Kbps()

    @property
    def publish(self) -> bool:
        return self.type.endswith("-publish")

    @property
    def send_bytes(self) -> int:
        return getattr(self.conn, "send_bytes", 0) or getattr(self.conn, "bytes_out", 0)

    @property
    def recv_bytes(self) -> int:
        return getattr(self.conn, "recv_bytes", 0) or getattr(self.conn, "bytes_in", 0)


class StreamStat:
    __slots__ = ("id", "url", "vhost", "app", "name", "tc_url", "active", "publisher_cid", "clients", "kbps",
                 "send_bytes_closed", "recv_bytes_closed")

    def __init__(self, url: str, vhost, req):
        self.id = _id("vid-")
        self.url = url
        self.vhost = vhost
        self.app = req.app
        self.name = req.stream
        self.tc_url = req.tc_url
        self.active = False
        self.publisher_cid = ""
        self.clients: dict = {}
        self.kbps = Kbps()
        self.send_bytes_closed = 0
        self.recv_bytes_closed = 0

    @property
    def send_bytes(self) -> int:
        return self.send_bytes_closed + sum(c.send_bytes for c in self.clients.values())

    @property
    def recv_bytes(self) -> int:
        return self.recv_bytes_closed + sum(c.recv_bytes for c in self.clients.values())


class VhostStat:
    __slots__ = ("id", "name", "kbps")

    def __init__(self, name: str):
        self.id = _id("vid-")
        self.name = name
        self.kbps = Kbps()


class Statistic:
    def __init__(self):
        self.server_id = _id("vid-")
        self.service_id = "".join(random.choices(string.ascii_lowercase + string.digits, k=8))
        self.clients: dict[str, ClientStat] = {}
        self.streams: dict[str, StreamStat] = {}
        self.vhosts: dict[str, VhostStat] = {}
        self.clients_total = 0
        self.clients_errs = 0
        self.send_bytes_closed = 0
        self.recv_bytes_closed = 0
        self.kbps = Kbps()

    def vhost(self, name: str) -> VhostStat:
        v = self.vhosts.get(name)
        if v is None:
            v = self.vhosts[name] = VhostStat(name)
        return v

    def stream(self, req) -> StreamStat:
        url = req.stream_url
        s = self.streams.get(url)
        if s is None:
            s = self.streams[url] = StreamStat(url, self.vhost(req.vhost), req)
        return s

    def on_client(self, cid: str, req, conn, type_: str):
        old = self.clients.get(cid)
        if old is not None:
            old.stream.clients.pop(cid, None)
        else:
            self.clients_total += 1
        stream = self.stream(req)
        c = ClientStat(cid, req, conn, type_, stream, stream.vhost)
        self.clients[cid] = c
        stream.clients[cid] = c

    def on_disconnect(self, cid: str, error: bool = False):
        c = self.clients.pop(cid, None)
        if c is None:
            return
        if error:
            self.clients_errs += 1
        s = c.stream
        s.clients.pop(cid, None)
        s.send_bytes_closed += c.send_bytes
        s.recv_bytes_closed += c.recv_bytes
        self.send_bytes_closed += c.send_bytes
        self.recv_bytes_closed += c.recv_bytes
        if not s.active and not s.clients:
            self.streams.pop(s.url, None)

    def on_stream_publish(self, req, cid: str):
        s = self.stream(req)
        s.active = True
        s.publisher_cid = cid
        s.tc_url = req.tc_url

    def on_stream_unpublish(self, req):
        s = self.streams.get(req.stream_url)
        if s is None:
            return
        s.active = False
        s.publisher_cid = ""
        if not s.clients:
            self.streams.pop(s.url, None)

    @property
    def send_bytes(self) -> int:
        return self.send_bytes_closed + sum(c.send_bytes for c in self.clients.values())

    @property
    def recv_bytes(self) -> int:
        return self.recv_bytes_closed + sum(c.recv_bytes for c in self.clients.values())

    def sample(self, now: float | None = None):
        """Take a byte-counter sample of every client, stream and the server (the kbps timer)."""
        now = time.monotonic() if now is None else now
        for c in self.clients.values():
            c.kbps.sample(now, c.recv_bytes, c.send_bytes)
        for s in self.streams.values():
            s.kbps.sample(now, s.recv_bytes, s.send_bytes)
        self.kbps.sample(now, self.recv_bytes, self.send_bytes)
