"""The session model shared by server connections, client sessions and relays.

Every session has a unique key made of its protocol, its role and a per-prefix counter
(``RTMPPUB1``, ``RTMPSUB4``, ``RTMPPUSH3``, ``RTMPPULL2``, ``FLVSUB7``, ``FLVPULL1``), the
URL it serves (url, app, stream, raw query) and a stat record: remote address, start
time, bytes read and written, and bitrates computed from byte-counter deltas when
``update_stat(interval)`` is called on a timer, never per packet.

Roles: a server session is a ``publish`` (PUB) or ``play`` (SUB) of a client of ours; a
client session is a ``push`` (PUSH) to a server or a ``pull`` (PULL) from one. A server
RTMP session is PUBSUB until it is identified.

Pure: no socket, no gevent; the clock is injectable (``now``).
"""

from __future__ import annotations

import itertools
import time
from collections import defaultdict

# protocols
RTMP = "RTMP"
FLV = "FLV"
CUSTOMIZE = "CUSTOMIZE"

# roles: server side (a client of ours publishes or plays), client side (we push or pull)
PUBSUB = "PUBSUB"
PUB = "PUB"
SUB = "SUB"
PUSH = "PUSH"
PULL = "PULL"

ROLE_NAMES = {PUBSUB: "server", PUB: "server publish", SUB: "server play", PUSH: "client push", PULL: "client pull"}

_counters: dict = defaultdict(lambda: itertools.count(1))


def unique_key(protocol: str, role: str) -> str:
    """``RTMPPUSH3``: the protocol, the role and a process-wide counter of that prefix."""
    prefix = protocol + role
    return f"{prefix}{next(_counters[prefix])}"


class SessionStat:
    """A snapshot of one session's statistics (what an API reports)."""

    __slots__ = ("session_id", "protocol", "role", "remote_addr", "start_time", "read_bytes", "wrote_bytes",
                 "read_bitrate_kbits", "write_bitrate_kbits", "bitrate_kbits")

    def __init__(self, session_id: str, protocol: str, role: str, remote_addr: str, start_time: float,
                 read_bytes: int, wrote_bytes: int, read_kbits: int, write_kbits: int, kbits: int):
        self.session_id = session_id
        self.protocol = protocol
        self.role = role
        self.remote_addr = remote_addr
        self.start_time = start_time
        self.read_bytes = read_bytes
        self.wrote_bytes = wrote_bytes
        self.read_bitrate_kbits = read_kbits
        self.write_bitrate_kbits = write_kbits
        self.bitrate_kbits = kbits

    @property
    def session_type(self) -> str:
        return self.protocol + self.role

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__slots__} | {"session_type": self.session_type}

    def __repr__(self) -> str:
        return (f"SessionStat({self.session_id}, {self.remote_addr}, read={self.read_bytes}, wrote={self.wrote_bytes}, "
                f"kbits r/w={self.read_bitrate_kbits}/{self.write_bitrate_kbits})")


class StatTracker:
    """Bitrates and liveness from two byte counters, sampled by the caller's timer.

    ``update(read, wrote, interval)`` computes kbit/s over the last interval;
    ``alive(read, wrote)`` tells whether each counter moved since the previous call.
    """

    __slots__ = ("prev_read", "prev_wrote", "alive_read", "alive_wrote", "read_kbits", "write_kbits")

    def __init__(self):
        self.prev_read = 0
        self.prev_wrote = 0
        self.alive_read = 0
        self.alive_wrote = 0
        self.read_kbits = 0
        self.write_kbits = 0

    def update(self, read: int, wrote: int, interval: float):
        if interval > 0:
            self.read_kbits = int((read - self.prev_read) * 8 / 1000 / interval)
            self.write_kbits = int((wrote - self.prev_wrote) * 8 / 1000 / interval)
        self.prev_read = read
        self.prev_wrote = wrote

    def alive(self, read: int, wrote: int) -> tuple[bool, bool]:
        r, w = read != self.alive_read, wrote != self.alive_wrote
        self.alive_read, self.alive_wrote = read, wrote
        return r, w


class Session:
    """Base of every session: key, URL parts, counters and the stat record.

    Subclasses provide ``recv_bytes`` and ``send_bytes`` (the names the server's
    statistics read) and set ``remote_addr`` once connected.
    """

    protocol = CUSTOMIZE
    role = PUBSUB

    def __init__(self, url: str = "", app: str = "", stream: str = "", raw_query: str = "", now: float | None = None):
        self.unique_key = unique_key(self.protocol, self.role)
        self.url = url
        self.app_name = app
        self.stream_name = stream
        self.raw_query = raw_query
        self.remote_addr = ""
        self.start_time = time.time() if now is None else now
        self._tracker = StatTracker()

    @property
    def session_type(self) -> str:
        return self.protocol + self.role

    # counters: subclasses override these
    @property
    def recv_bytes(self) -> int:
        return 0

    @property
    def send_bytes(self) -> int:
        return 0

    @property
    def read_bytes(self) -> int:
        return self.recv_bytes

    @property
    def wrote_bytes(self) -> int:
        return self.send_bytes

    def update_stat(self, interval: float):
        """Compute the bitrates over the last ``interval`` seconds (call it on a timer)."""
        self._tracker.update(self.recv_bytes, self.send_bytes, interval)

    def get_stat(self) -> SessionStat:
        t = self._tracker
        # pull and publish sessions are measured by what they read, push and play ones by what they write
        kbits = t.read_kbits if self.role in (PULL, PUB, PUBSUB) else t.write_kbits
        return SessionStat(self.unique_key, self.protocol, self.role, self.remote_addr, self.start_time,
                           self.recv_bytes, self.send_bytes, t.read_kbits, t.write_kbits, kbits)

    def is_alive(self) -> tuple[bool, bool]:
        """(read_alive, write_alive): whether bytes were read / written since the last call."""
        return self._tracker.alive(self.recv_bytes, self.send_bytes)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.unique_key} {self.url}>"


__all__ = ["RTMP", "FLV", "CUSTOMIZE", "PUBSUB", "PUB", "SUB", "PUSH", "PULL", "Session", "SessionStat",
           "StatTracker", "unique_key"]
