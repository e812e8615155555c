"""A raw WebSocket test client (RFC 6455, written for the tests): the upgrade request,
masked client frames, and the server's frames read one by one, so that tests assert on
the exact framing srspy sends (binary, final, unmasked) and on the stream inside it."""

from __future__ import annotations

import base64
import hashlib
import os
import struct
import time

from helpers.flvclient import FlvPlayer

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def accept_key(key: str) -> str:
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


class WsPlayer(FlvPlayer):
    """Upgrades ``path`` to WebSocket; binary messages' payloads become ``body`` (FLV tags
    are parsed as FlvPlayer does when ``flv``); ``frames`` keeps (fin, opcode, size, masked)
    of every frame, ``controls`` the (opcode, payload) of control frames."""

    def __init__(self, port: int, path: str, headers: dict | None = None, key: str | None = None, flv: bool = True,
                 timeout: float = 10.0):
        self.key = key if key is not None else base64.b64encode(os.urandom(16)).decode()
        hdrs = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Key": self.key,
                "Sec-WebSocket-Version": "13"}
        if headers:
            hdrs.update(headers)
        hdrs = {k: v for k, v in hdrs.items() if v is not None}
        super().__init__(port, path, headers=hdrs, timeout=timeout)
        self.flv = flv
        self.frames: list[tuple[int, int, int, bool]] = []
        self.controls: list[tuple[int, bytes]] = []

    def send_frame(self, opcode: int, payload: bytes = b"") -> None:
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            head = bytes((0x80 | opcode, 0x80 | n))
        elif n < 65536:
            head = struct.pack(">BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            head = struct.pack(">BBQ", 0x80 | opcode, 0x80 | 127, n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(head + mask + masked)

    def _deframe(self) -> None:
        buf = self.buf
        while len(buf) >= 2:
            fin, opcode = buf[0] >> 7, buf[0] & 0x0F
            masked, n = bool(buf[1] & 0x80), buf[1] & 0x7F
            pos = 2
            if n == 126:
                if len(buf) < 4:
                    return
                n, pos = struct.unpack(">H", buf[2:4])[0], 4
            elif n == 127:
                if len(buf) < 10:
                    return
                n, pos = struct.unpack(">Q", buf[2:10])[0], 10
            if masked:
                pos += 4
            if len(buf) < pos + n:
                return
            payload = bytes(buf[pos:pos + n])
            del buf[:pos + n]
            self.frames.append((fin, opcode, n, masked))
            if opcode == 0x2 or opcode == 0x0:
                self.body += payload
            else:
                self.controls.append((opcode, payload))
                if opcode == 0x8:
                    self.ended = True

    def pump(self, seconds: float = 0.0, until=None) -> None:
        deadline = time.monotonic() + seconds
        while not self.ended and not self.eof:
            if until is not None and until(self):
                return
            if time.monotonic() >= deadline:
                if until is not None:
                    raise AssertionError("timed out waiting in WsPlayer.pump")
                return
            self.sock.settimeout(max(0.05, min(1.0, deadline - time.monotonic())))
            if self._recv():
                self._deframe()
                if self.flv:
                    self._parse_tags()
