"""RTMP handshake, server and client side, as pure state machines.

Port of srs_protocol_rtmp_handshake (SrsSimpleHandshake, SrsComplexHandshake). The I/O
layer reads C0C1 (1537 bytes), calls ``ServerHandshake.process_c0c1`` and writes the
S0S1S2 it returns (3073 bytes), then reads C2 (1536 bytes) and hands it to
``process_c2``, which does not validate it (SRS: "never verify c2, for ffmpeg will
failed"). Random bytes and the time are injected, so every output is reproducible.

Complex handshake (the Flash Player 9 / FMS scheme). C1 and S1 are::

    time (4) | version (4) | block A (764) | block B (764)

schema 0 puts the key block in A and the digest block in B, schema 1 the other way
round. A digest block is ``offset (4) | ... | digest (32) | ...`` with the digest at
``4 + (sum of the 4 offset bytes) % 728`` in the block; a key block is
``... | key (128) | ... | offset (4)`` with the key at ``(sum of offset bytes) % 632``.
The digest is HMAC-SHA256 over the 1504 other bytes of the packet, keyed with the first
30 bytes of the Flash Player key for C1 and the first 36 bytes of the Media Server key
for S1. S2 (and C2) are ``random (1504) | HMAC-SHA256(k, random)`` where ``k`` is
HMAC-SHA256 of the peer's C1 (S1) digest keyed with the full 68-byte server (62-byte
player) key. srspy puts random bytes where SRS puts its Diffie-Hellman public key:
that key only matters to encrypted RTMPE, which is not supported.

Simple handshake (the RTMP specification): S0 = 3, S1 = time | C1's time | random,
S2 = echo of C1. The server uses it when C1 carries no valid digest.
"""

from __future__ import annotations

import hmac
import os
import struct
from typing import Callable

from srspy.errors import ERROR_RTMP_PLAIN_REQUIRED, HandshakeError

__all__ = [
    "C0C1_SIZE",
    "C1_SIZE",
    "C2_SIZE",
    "S0S1S2_SIZE",
    "FP_KEY",
    "FMS_KEY",
    "ServerHandshake",
    "ClientHandshake",
    "find_digest",
    "make_c2s2",
    "c2s2_valid",
]

RTMP_VERSION = 3
C1_SIZE = 1536
C2_SIZE = 1536
C0C1_SIZE = 1 + C1_SIZE
S0S1S2_SIZE = 1 + 2 * C1_SIZE

# The 32 bytes both Adobe keys end with.
_KEY_TAIL = bytes.fromhex("f0eec24a8068bee82e00d0d1029e7e576eec5d2d29806fab93b8e636cfeb31ae")
#: Signs client packets (C1 with its first 30 bytes, C2 with all 62).
FP_KEY = b"Genuine Adobe Flash Player 001" + _KEY_TAIL
#: Signs server packets (S1 with its first 36 bytes, S2 with all 68).
FMS_KEY = b"Genuine Adobe Flash Media Server 001" + _KEY_TAIL
FP_KEY_PARTIAL = FP_KEY[:30]
FMS_KEY_PARTIAL = FMS_KEY[:36]

SERVER_VERSION = 0x01000504  # what SRS puts in S1
CLIENT_VERSION = 0x80000702  # what SRS puts in its client C1

_BLOCK = 764
_DIGEST = 32
_KEY = 128
_DIGEST_SPAN = _BLOCK - 4 - _DIGEST  # 728
_KEY_SPAN = _BLOCK - _KEY - 4  # 632
_TIME_VERSION = struct.Struct(">II")

RandomBytes = Callable[[int], bytes]


def _hmac(key: bytes, data: bytes) -> bytes:
    return hmac.digest(key, data, "sha256")


def _digest_pos(c1s1, schema: int) -> int:
    """Offset of the 32-byte digest inside C1/S1 for a schema (0: key first, 1: digest first)."""
    block = 8 + _BLOCK if schema == 0 else 8
    return block + 4 + (c1s1[block] + c1s1[block + 1] + c1s1[block + 2] + c1s1[block + 3]) % _DIGEST_SPAN


def _sign(c1s1: bytes, schema: int, key: bytes) -> tuple[int, bytes]:
    pos = _digest_pos(c1s1, schema)
    return pos, _hmac(key, c1s1[:pos] + c1s1[pos + _DIGEST:])


def find_digest(c1s1: bytes, key: bytes) -> tuple[int, bytes] | None:
    """Find the valid digest of a C1 (``key=FP_KEY_PARTIAL``) or S1 (``FMS_KEY_PARTIAL``).

    Tries schema 0 then schema 1, as SRS does; returns ``(schema, digest)`` or ``None``
    when neither position holds a valid digest (the peer speaks the simple handshake).
    """
    if len(c1s1) != C1_SIZE:
        raise HandshakeError(f"handshake: c1/s1 must be {C1_SIZE} bytes, got {len(c1s1)}")
    c1s1 = bytes(c1s1)
    for schema in (0, 1):
        pos, expected = _sign(c1s1, schema, key)
        if hmac.compare_digest(expected, c1s1[pos:pos + _DIGEST]):
            return schema, expected
    return None


def _build_c1s1(time_s: int, version: int, schema: int, key: bytes, random_bytes: RandomBytes) -> tuple[bytes, bytes]:
    """A signed C1 or S1: random blocks with the digest at the place the schema says."""
    body = bytearray(_TIME_VERSION.pack(time_s & 0xFFFFFFFF, version))
    body += _exact(random_bytes, C1_SIZE - 8)
    pos, digest = _sign(bytes(body), schema, key)
    body[pos:pos + _DIGEST] = digest
    return bytes(body), digest


def make_c2s2(peer_digest: bytes, key: bytes, random_bytes: RandomBytes) -> bytes:
    """S2 (``key=FMS_KEY``, peer's C1 digest) or C2 (``key=FP_KEY``, peer's S1 digest)."""
    data = _exact(random_bytes, C2_SIZE - _DIGEST)
    return data + _hmac(_hmac(key, peer_digest), data)


def c2s2_valid(c2s2: bytes, peer_digest: bytes, key: bytes) -> bool:
    """Check an S2 against our C1 digest (``key=FMS_KEY``), or a C2 against our S1 digest (``FP_KEY``)."""
    if len(c2s2) != C2_SIZE:
        return False
    c2s2 = bytes(c2s2)
    expected = _hmac(_hmac(key, peer_digest), c2s2[:C2_SIZE - _DIGEST])
    return hmac.compare_digest(expected, c2s2[C2_SIZE - _DIGEST:])


def _exact(random_bytes: RandomBytes, n: int) -> bytes:
    data = bytes(random_bytes(n))
    if len(data) != n:
        raise ValueError(f"random_bytes({n}) returned {len(data)} bytes")
    return data


class ServerHandshake:
    """Server side: C0C1 in, S0S1S2 out, then C2 (read, not checked).

    ``now_ms`` is the wall-clock time in milliseconds; as SRS, S1 carries it in seconds.
    After ``process_c0c1``: ``is_complex`` tells which handshake was used, ``schema`` the
    C1 schema (complex only) and ``c1_digest`` the client's digest.
    """

    def __init__(self, random_bytes: RandomBytes = os.urandom, now_ms: int = 0):
        self.random_bytes = random_bytes
        self.now_ms = now_ms
        self.is_complex = False
        self.schema: int | None = None
        self.c1_digest: bytes | None = None
        self.done = False
        self._s0s1s2: bytes | None = None

    def process_c0c1(self, c0c1: bytes) -> bytes:
        """Answer C0C1 (exactly 1537 bytes) with S0S1S2 (3073 bytes).

        Raises ``HandshakeError`` when the size is wrong or C0 is not 3 (plain RTMP).
        """
        if self._s0s1s2 is not None:
            raise HandshakeError("handshake: c0c1 already processed")
        if len(c0c1) != C0C1_SIZE:
            raise HandshakeError(f"handshake: c0c1 must be {C0C1_SIZE} bytes, got {len(c0c1)}")
        c0c1 = bytes(c0c1)
        if c0c1[0] != RTMP_VERSION:
            raise HandshakeError(f"only support rtmp plain text, c0=0x{c0c1[0]:02x}", code=ERROR_RTMP_PLAIN_REQUIRED)
        c1 = c0c1[1:]
        found = find_digest(c1, FP_KEY_PARTIAL)
        time_s = self.now_ms // 1000
        if found is not None:
            self.schema, self.c1_digest = found
            s1, _ = _build_c1s1(time_s, SERVER_VERSION, self.schema, FMS_KEY_PARTIAL, self.random_bytes)
            s2 = make_c2s2(self.c1_digest, FMS_KEY, self.random_bytes)
            self.is_complex = True
        else:
            s1 = (time_s & 0xFFFFFFFF).to_bytes(4, "big") + c1[:4] + _exact(self.random_bytes, C1_SIZE - 8)
            s2 = c1
        self._s0s1s2 = bytes((RTMP_VERSION,)) + s1 + s2
        return self._s0s1s2

    def process_c2(self, c2: bytes) -> None:
        """Take C2 (1536 bytes); its content is not validated, as in SRS."""
        if self._s0s1s2 is None:
            raise HandshakeError("handshake: c2 before c0c1")
        if len(c2) != C2_SIZE:
            raise HandshakeError(f"handshake: c2 must be {C2_SIZE} bytes, got {len(c2)}")
        self.done = True


class ClientHandshake:
    """Client side: ``c0c1()`` out, S0S1S2 in, C2 out.

    Simple by default. With ``complex=True`` C1 is signed (schema 1, the form FMS
    requires) and S1's digest is checked with the server key: when it is valid the
    handshake is complex and C2 is signed with S1's digest; when it is not, the server
    answered with the simple handshake and C2 echoes S1 (``is_complex`` is then False),
    unless ``strict=True``, which raises ``HandshakeError`` instead. ``s2_valid`` tells
    whether S2 carried the signature expected for our C1.
    """

    def __init__(self, complex: bool = False, random_bytes: RandomBytes = os.urandom, now_ms: int = 0,
                 strict: bool = False):
        self.complex = complex
        self.strict = strict
        self.random_bytes = random_bytes
        self.now_ms = now_ms
        self.is_complex = False
        self.s2_valid = False
        self.c1_digest: bytes | None = None
        self.s1_digest: bytes | None = None
        self.done = False
        self._c0c1: bytes | None = None

    def c0c1(self) -> bytes:
        """The 1537 bytes to send first (built once)."""
        if self._c0c1 is None:
            time_s = self.now_ms // 1000
            if self.complex:
                c1, self.c1_digest = _build_c1s1(time_s, CLIENT_VERSION, 1, FP_KEY_PARTIAL, self.random_bytes)
            else:
                c1 = _TIME_VERSION.pack(time_s & 0xFFFFFFFF, 0) + _exact(self.random_bytes, C1_SIZE - 8)
            self._c0c1 = bytes((RTMP_VERSION,)) + c1
        return self._c0c1

    def process_s0s1s2(self, s0s1s2: bytes) -> bytes:
        """Take S0S1S2 (3073 bytes); returns C2 (1536 bytes)."""
        if self._c0c1 is None:
            raise HandshakeError("handshake: s0s1s2 before c0c1")
        if self.done:
            raise HandshakeError("handshake: s0s1s2 already processed")
        if len(s0s1s2) != S0S1S2_SIZE:
            raise HandshakeError(f"handshake: s0s1s2 must be {S0S1S2_SIZE} bytes, got {len(s0s1s2)}")
        s0s1s2 = bytes(s0s1s2)
        if s0s1s2[0] != RTMP_VERSION:
            raise HandshakeError(f"handshake failed, plain text required, s0=0x{s0s1s2[0]:02x}")
        s1 = s0s1s2[1:1 + C1_SIZE]
        s2 = s0s1s2[1 + C1_SIZE:]
        self.done = True
        if self.complex:
            found = find_digest(s1, FMS_KEY_PARTIAL)
            self.s2_valid = c2s2_valid(s2, self.c1_digest, FMS_KEY)
            if found is not None:
                self.is_complex = True
                self.s1_digest = found[1]
                return make_c2s2(self.s1_digest, FP_KEY, self.random_bytes)
            if self.strict:
                raise HandshakeError("handshake: s1 has no valid digest")
        return s1
