"""A raw HTTP-FLV test client over a socket: response head, chunked framing, FLV tags.

Tests use it to assert on the exact bytes srspy sends (headers, chunk boundaries, the
FLV header flags, tag order), which ffmpeg would hide.
"""

from __future__ import annotations

import socket
import time


class FlvPlayer:
    def __init__(self, port: int, path: str, host: str = "127.0.0.1", headers: dict | None = None, timeout: float = 10.0,
                 version: str = "1.1"):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        hdrs = {"Host": host, "User-Agent": "srspy-test"}
        hdrs.update(headers or {})
        req = f"GET {path} HTTP/{version}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items()) + "\r\n"
        self.sock.sendall(req.encode())
        self.buf = bytearray()
        self.status = None
        self.headers: dict = {}
        self.raw_head = b""
        self.body = bytearray()  # de-chunked body
        self.chunks: list[int] = []  # sizes of the HTTP chunks received
        self.ended = False  # final 0-size chunk seen
        self.eof = False
        self._tag_pos = None
        self.flv_flags = None
        self.tags: list[tuple[int, int, bytes]] = []

    def _recv(self) -> bool:
        try:
            data = self.sock.recv(256 * 1024)
        except socket.timeout:
            return False
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def read_head(self):
        while b"\r\n\r\n" not in self.buf:
            if not self._recv():
                raise AssertionError(f"no response head (eof={self.eof}, got {bytes(self.buf[:200])!r})")
        i = self.buf.index(b"\r\n\r\n")
        self.raw_head = bytes(self.buf[: i + 4])
        del self.buf[: i + 4]
        lines = self.raw_head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        self.header_list = []
        for line in lines[1:]:
            if line:
                k, _, v = line.partition(":")
                self.headers[k.strip().lower()] = v.strip()
                self.header_list.append((k.strip(), v.strip()))
        return self.status

    @property
    def chunked(self) -> bool:
        return self.headers.get("transfer-encoding", "").lower() == "chunked"

    def _dechunk(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i < 0:
                return
            size = int(bytes(self.buf[:i]).split(b";")[0], 16)
            if len(self.buf) < i + 2 + size + 2:
                return
            assert bytes(self.buf[i + 2 + size : i + 4 + size]) == b"\r\n", "bad chunk terminator"
            self.body += self.buf[i + 2 : i + 2 + size]
            del self.buf[: i + 4 + size]
            self.chunks.append(size)
            if size == 0:
                self.ended = True
                return

    def _parse_tags(self):
        b = self.body
        if self._tag_pos is None:
            if len(b) < 13:
                return
            assert bytes(b[:3]) == b"FLV", bytes(b[:16])
            self.flv_flags = b[4]
            self._tag_pos = int.from_bytes(b[5:9], "big") + 4
        pos = self._tag_pos
        while pos + 11 <= len(b):
            size = int.from_bytes(b[pos + 1 : pos + 4], "big")
            if pos + 11 + size + 4 > len(b):
                break
            ts = int.from_bytes(b[pos + 4 : pos + 7], "big") | (b[pos + 7] << 24)
            prev = int.from_bytes(b[pos + 11 + size : pos + 15 + size], "big")
            assert prev == size + 11, f"bad previous tag size {prev} for a tag of {size}"
            self.tags.append((b[pos], ts, bytes(b[pos + 11 : pos + 11 + size])))
            pos += 15 + size
        self._tag_pos = pos

    def pump(self, seconds: float = 0.0, until=None) -> None:
        """Read for ``seconds`` (or until ``until(self)`` is true, or the end of the body)."""
        deadline = time.monotonic() + seconds
        while not self.ended and not self.eof:
            if until is not None and until(self):
                return
            if until is None and time.monotonic() >= deadline:
                return
            if until is not None and time.monotonic() >= deadline:
                raise AssertionError("timed out waiting in FlvPlayer.pump")
            self.sock.settimeout(max(0.05, min(1.0, deadline - time.monotonic())))
            if self._recv():
                if self.chunked:
                    self._dechunk()
                else:
                    self.body += self.buf
                    self.buf.clear()
                self._parse_tags()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class RawPlayer(FlvPlayer):
    """An HTTP client that keeps the de-chunked body as it is."""

    def _parse_tags(self):
        pass


def grab(port: int, path: str, nbytes: int, timeout: float = 20) -> tuple[bytes, dict]:
    """The first ``nbytes`` (or more) of the de-chunked body of ``path``, and the response headers."""
    p = RawPlayer(port, path)
    assert p.read_head() == 200, p.raw_head
    p.pump(timeout, until=lambda q: len(q.body) >= nbytes)
    p.close()
    return bytes(p.body), p.headers


def http_get(port: int, path: str, headers: dict | None = None, method: str = "GET", timeout: float = 5.0, body: bytes = b""):
    """One request on a fresh connection; returns (status, headers dict lowercased, body bytes)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    hdrs = {"Host": "127.0.0.1", "Connection": "close"}
    hdrs.update(headers or {})
    if body:
        hdrs["Content-Length"] = str(len(body))
    s.sendall((f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items()) + "\r\n").encode() + body)
    data = bytearray()
    while True:
        try:
            d = s.recv(65536)
        except socket.timeout:
            break
        if not d:
            break
        data += d
    s.close()
    head, _, rest = bytes(data).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1]) if lines and lines[0] else 0
    h = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        h[k.strip().lower()] = v.strip()
    if h.get("transfer-encoding", "").lower() == "chunked":
        out = bytearray()
        while rest:
            i = rest.find(b"\r\n")
            n = int(rest[:i], 16)
            out += rest[i + 2 : i + 2 + n]
            rest = rest[i + 4 + n :]
            if n == 0:
                break
        rest = bytes(out)
    return status, h, rest


def playing(port: int, path: str = "/live/s.flv"):
    """A player of ``path`` when the server answers 200 (the stream is mounted), else None."""
    p = FlvPlayer(port, path)
    if p.read_head() != 200:
        p.close()
        return None
    return p

