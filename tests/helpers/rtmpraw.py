"""A low-level RTMP test peer: sends exactly the bytes a test wants (good or bad)."""

from __future__ import annotations

import socket
import time

import gevent

from srspy.kernel import amf0
from srspy.rtmp.chunk import ChunkDecoder, ChunkEncoder
from srspy.rtmp.handshake import ClientHandshake
from srspy.kernel.message import AMF0_COMMAND, AUDIO, VIDEO, MediaMessage


class RawRtmp:
    def __init__(self, port: int | None = None, timeout: float = 5.0, host: str = "127.0.0.1", sock=None):
        """Connect to ``host:port``, or speak over ``sock`` (any connected stream socket)."""
        self.sock = sock if sock is not None else socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(timeout)
        self.enc = ChunkEncoder(128)
        self.dec = ChunkDecoder()
        self.msgs: list = []

    def handshake(self):
        hs = ClientHandshake()
        self.sock.sendall(hs.c0c1())
        data = self.recv_exactly(3073)
        self.sock.sendall(hs.process_s0s1s2(data))

    def recv_exactly(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            d = self.sock.recv(n - len(buf))
            if not d:
                raise EOFError(f"closed after {len(buf)} of {n} bytes")
            buf += d
        return bytes(buf)

    def send(self, msg: MediaMessage, cs_id: int = 3):
        self.sock.sendall(self.enc.encode(msg, cs_id))

    def command(self, name: str, tid: float, *args, stream_id: int = 0):
        self.send(MediaMessage(AMF0_COMMAND, 0, stream_id, amf0.encode_all(name, tid, *args)))

    def connect(self, app: str = "live", tc_url: str | None = None):
        self.command("connect", 1.0, {"app": app, "tcUrl": tc_url or f"rtmp://127.0.0.1/{app}", "objectEncoding": 0.0})
        return self.until_command("_result")

    def publish(self, stream: str, app: str = "live"):
        """connect, createStream and publish ``stream`` (Flash style) up to Publish.Start."""
        self.connect(app)
        self.command("createStream", 2.0, None)
        self.until_command("_result")
        self.command("publish", 3.0, None, stream, "live", stream_id=1)
        return self.until_command("onStatus", "NetStream.Publish.Start")

    def play(self, stream: str, app: str = "live"):
        """connect, createStream and play ``stream`` up to Play.Start."""
        self.connect(app)
        self.command("createStream", 2.0, None)
        self.until_command("_result")
        self.command("play", 3.0, None, stream, stream_id=1)
        return self.until_command("onStatus", "NetStream.Play.Start")

    def read(self) -> list:
        d = self.sock.recv(65536)
        if not d:
            raise EOFError("server closed")
        got = self.dec.feed(d)
        self.msgs.extend(got)
        return got

    def until_command(self, name: str, code: str | None = None) -> list:
        while True:
            for m in self.read():
                if m.type == AMF0_COMMAND:
                    v = amf0.decode_all(m.payload)
                    if v[0] == name and (code is None or (len(v) > 3 and isinstance(v[3], dict) and v[3].get("code") == code)):
                        return v

    def closed_within(self, seconds: float) -> bool:
        """True when the server closes the connection within ``seconds``."""
        self.sock.settimeout(seconds)
        try:
            while True:
                if not self.sock.recv(65536):
                    return True
        except socket.timeout:
            return False
        except OSError:
            return True

    def close(self):
        self.sock.close()


AVC_SH = bytes([0x17, 0, 0, 0, 0, 1, 0x42, 0xC0, 0x1E, 0xFF, 0xE1, 0, 4, 0x67, 0x42, 0xC0, 0x1E, 1, 0, 4, 0x68, 0xCE, 0x3C, 0x80])


class Publisher:
    """A well-behaved raw publisher feeding /live/ok (or ``stream``) with synthetic frames."""

    def __init__(self, port, stream: str = "ok"):
        self.c = RawRtmp(port)
        self.c.handshake()
        self.c.publish(stream)
        self.c.send(MediaMessage(VIDEO, 0, 1, AVC_SH), 6)
        self.ts = 0
        self.g = gevent.spawn(self.run)

    def run(self):
        try:
            self._run()
        except OSError:
            pass  # the server went away at the end of the test

    def _run(self):
        while True:
            self.ts += 40
            key = self.ts % 1000 == 0
            self.c.send(MediaMessage(VIDEO, self.ts, 1, bytes([0x17 if key else 0x27, 1, 0, 0, 0]) + b"x" * 500), 6)
            self.c.send(MediaMessage(AUDIO, self.ts, 1, bytes([0xAF, 1]) + b"a" * 50), 4)
            gevent.sleep(0.04)


def unfinished_heads(ids, size: int, first: int = 128) -> bytes:
    """First chunks (fmt 0, ``first`` bytes of payload) of video messages of ``size`` bytes
    on chunk streams ``64 + k`` for each k in ``ids`` (2-byte basic headers), left unfinished."""
    return b"".join(bytes((0x00, k)) + bytes(3) + size.to_bytes(3, "big") + b"\x09" + (1).to_bytes(4, "little")
                    + b"\x27" * first for k in ids)


def conn_of(srv, client: RawRtmp):
    """The server's connection object of ``client`` (found by the client's local port)."""
    port = client.sock.getsockname()[1]
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for c in list(srv.conns.values()):
            if getattr(c, "port", None) == port:
                return c
        gevent.sleep(0.01)
    raise AssertionError("the server has no connection for the client")


def read_time_with_unfinished(srv, port: int, unfinished: int, size: int) -> float:
    """Seconds the server takes to read a ``size``-byte message sent in 4 KiB writes (128-byte
    chunks) by a publisher that left ``unfinished`` 1 MiB messages open on other streams."""
    c = RawRtmp(port)
    c.handshake()
    c.publish(f"lin{unfinished}")
    conn = conn_of(srv, c)
    opened = unfinished_heads(range(10, 10 + unfinished), 1 << 20)
    c.sock.sendall(opened)
    wire = c.enc.encode(MediaMessage(VIDEO, 0, 1, b"\x27" + bytes(size - 1)), 6)
    target = conn.recv_bytes + len(opened) + len(wire)
    t0 = time.monotonic()
    for i in range(0, len(wire), 4096):
        c.sock.sendall(wire[i:i + 4096])
    while conn.recv_bytes < target:
        assert time.monotonic() - t0 < 30, "the server did not read the stream"
        gevent.sleep(0.002)
    took = time.monotonic() - t0
    c.close()
    return took
