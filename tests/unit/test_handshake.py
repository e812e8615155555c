"""RTMP handshake: captured ffmpeg/rtmpdump C0C1, complex and simple, client <-> server."""

from __future__ import annotations

import os
import random

import pytest

from srspy.errors import ERROR_RTMP_HANDSHAKE, ERROR_RTMP_PLAIN_REQUIRED, HandshakeError
from srspy.rtmp import handshake as hs
from srspy.rtmp.handshake import (
    C0C1_SIZE,
    C2_SIZE,
    FMS_KEY,
    FMS_KEY_PARTIAL,
    FP_KEY,
    FP_KEY_PARTIAL,
    S0S1S2_SIZE,
    ClientHandshake,
    ServerHandshake,
    c2s2_valid,
    find_digest,
)

VECTORS = os.path.join(os.path.dirname(__file__), "..", "vectors")
NOW_MS = 1_700_000_000_123


def load(name: str) -> bytes:
    with open(os.path.join(VECTORS, name), "rb") as f:
        return f.read()


def seeded(seed: int = 1):
    rng = random.Random(seed)
    return rng.randbytes


def server(seed: int = 1) -> ServerHandshake:
    return ServerHandshake(random_bytes=seeded(seed), now_ms=NOW_MS)


def test_keys():
    assert len(FP_KEY) == 62 and FP_KEY_PARTIAL == b"Genuine Adobe Flash Player 001"
    assert len(FMS_KEY) == 68 and FMS_KEY_PARTIAL == b"Genuine Adobe Flash Media Server 001"
    assert FP_KEY[30:] == FMS_KEY[36:]


# ------------------------------------------------------------------ captured clients

@pytest.mark.parametrize("name", ["ffmpeg_c0c1.bin", "rtmpdump_fp9_c0c1.bin"])
def test_complex_clients(name):
    c0c1 = load(name)
    found = find_digest(c0c1[1:], FP_KEY_PARTIAL)
    assert found is not None and found[0] == 1  # both sign C1 with the digest block first

    srv = server()
    out = srv.process_c0c1(c0c1)
    assert len(out) == S0S1S2_SIZE and out[0] == 3
    assert srv.is_complex and srv.schema == 1 and srv.c1_digest == found[1]
    s1, s2 = out[1:1537], out[1537:]
    # What the client checks: S1 signed with the server key in C1's schema...
    assert find_digest(s1, FMS_KEY_PARTIAL)[0] == 1
    assert s1[:4] == (NOW_MS // 1000).to_bytes(4, "big")
    assert s1[4:8] == bytes((1, 0, 5, 4))  # SRS's server version
    # ... and S2 signed with a key derived from its own C1 digest.
    assert c2s2_valid(s2, found[1], FMS_KEY)
    assert not c2s2_valid(s2, found[1], FP_KEY)
    srv.process_c2(bytes(C2_SIZE))
    assert srv.done


def test_rtmpdump_without_swf_verification_is_simple():
    c0c1 = load("rtmpdump_c0c1.bin")
    assert c0c1[0] == 3 and c0c1[5:9] == b"\x00\x00\x00\x00"
    assert find_digest(c0c1[1:], FP_KEY_PARTIAL) is None
    srv = server()
    out = srv.process_c0c1(c0c1)
    assert not srv.is_complex and srv.schema is None
    assert out[0] == 3
    s1, s2 = out[1:1537], out[1537:]
    assert s1[:4] == (NOW_MS // 1000).to_bytes(4, "big")
    assert s1[4:8] == c0c1[1:5]  # SRS copies C1's time into S1[4..8]
    assert s2 == c0c1[1:]  # S2 echoes C1


def test_corrupt_digest_falls_back_to_simple():
    c0c1 = bytearray(load("ffmpeg_c0c1.bin"))
    schema, digest = find_digest(bytes(c0c1[1:]), FP_KEY_PARTIAL)
    pos = c0c1[1:].index(digest) + 1
    c0c1[pos] ^= 0xFF
    srv = server()
    out = srv.process_c0c1(bytes(c0c1))
    assert not srv.is_complex
    assert out[1537:] == bytes(c0c1[1:])


def test_schema0_c1_is_accepted_and_answered_in_schema0():
    c1, digest = hs._build_c1s1(5, hs.CLIENT_VERSION, 0, FP_KEY_PARTIAL, seeded(7))
    assert find_digest(c1, FP_KEY_PARTIAL) == (0, digest)
    srv = server()
    out = srv.process_c0c1(b"\x03" + c1)
    assert srv.is_complex and srv.schema == 0
    assert find_digest(out[1:1537], FMS_KEY_PARTIAL)[0] == 0
    assert c2s2_valid(out[1537:], digest, FMS_KEY)


def test_output_is_a_function_of_the_injected_inputs():
    c0c1 = load("ffmpeg_c0c1.bin")
    assert server(3).process_c0c1(c0c1) == server(3).process_c0c1(c0c1)
    assert server(3).process_c0c1(c0c1) != server(4).process_c0c1(c0c1)


# ------------------------------------------------------------------------- failures

@pytest.mark.parametrize("c0", [0x06, 0x00, 0xF3, 0xFF])
def test_c0_other_than_3_is_refused(c0):
    c0c1 = bytes((c0,)) + load("rtmpdump_fp9_c0c1.bin")[1:]  # even with a valid digest
    with pytest.raises(HandshakeError, match=f"only support rtmp plain text, c0=0x{c0:02x}") as ei:
        server().process_c0c1(c0c1)
    assert ei.value.code == ERROR_RTMP_PLAIN_REQUIRED


@pytest.mark.parametrize("size", [0, 1, 1536, 1538, 3073])
def test_wrong_c0c1_size(size):
    with pytest.raises(HandshakeError, match=f"c0c1 must be 1537 bytes, got {size}") as ei:
        server().process_c0c1(b"\x03" * size)
    assert ei.value.code == ERROR_RTMP_HANDSHAKE


def test_garbage():
    rng = random.Random(9)
    for _ in range(50):
        garbage = rng.randbytes(C0C1_SIZE)
        if garbage[0] == 3:
            # Any C1 is fine for the simple handshake, as in SRS.
            assert server().process_c0c1(garbage)[1537:] == garbage[1:]
        else:
            with pytest.raises(HandshakeError):
                server().process_c0c1(garbage)


def test_order_and_c2_size():
    srv = server()
    with pytest.raises(HandshakeError, match="c2 before c0c1"):
        srv.process_c2(bytes(C2_SIZE))
    srv.process_c0c1(load("ffmpeg_c0c1.bin"))
    with pytest.raises(HandshakeError, match="already processed"):
        srv.process_c0c1(load("ffmpeg_c0c1.bin"))
    with pytest.raises(HandshakeError, match="c2 must be 1536 bytes, got 10"):
        srv.process_c2(bytes(10))
    srv.process_c2(os.urandom(C2_SIZE))  # content is not validated


def test_short_random_source_is_a_bug():
    with pytest.raises(ValueError, match="returned 1 bytes"):
        ServerHandshake(random_bytes=lambda n: b"x").process_c0c1(load("ffmpeg_c0c1.bin"))


# -------------------------------------------------------------- client <-> server

def test_round_trip_complex():
    cli = ClientHandshake(complex=True, random_bytes=seeded(11), now_ms=NOW_MS)
    c0c1 = cli.c0c1()
    assert len(c0c1) == C0C1_SIZE and c0c1[0] == 3
    assert cli.c0c1() is c0c1
    assert find_digest(c0c1[1:], FP_KEY_PARTIAL) == (1, cli.c1_digest)

    srv = server()
    s0s1s2 = srv.process_c0c1(c0c1)
    assert srv.is_complex and srv.c1_digest == cli.c1_digest

    c2 = cli.process_s0s1s2(s0s1s2)
    assert cli.is_complex and cli.s2_valid
    assert len(c2) == C2_SIZE
    # C2 is signed with a key derived from S1's digest and the full player key.
    assert c2s2_valid(c2, cli.s1_digest, FP_KEY)
    srv.process_c2(c2)
    assert srv.done and cli.done


def test_round_trip_simple():
    cli = ClientHandshake(random_bytes=seeded(12), now_ms=NOW_MS)
    c0c1 = cli.c0c1()
    assert c0c1[1:5] == (NOW_MS // 1000).to_bytes(4, "big") and c0c1[5:9] == bytes(4)
    srv = server()
    s0s1s2 = srv.process_c0c1(c0c1)
    assert not srv.is_complex
    c2 = cli.process_s0s1s2(s0s1s2)
    assert not cli.is_complex
    assert c2 == s0s1s2[1:1537]  # C2 echoes S1 (SRS #418)
    srv.process_c2(c2)


def test_complex_client_against_a_simple_server():
    cli = ClientHandshake(complex=True, random_bytes=seeded(13))
    c0c1 = cli.c0c1()
    simple = b"\x03" + bytes(8) + seeded(14)(1528) + c0c1[1:]
    c2 = cli.process_s0s1s2(simple)
    assert not cli.is_complex and not cli.s2_valid
    assert c2 == simple[1:1537]

    strict = ClientHandshake(complex=True, random_bytes=seeded(13), strict=True)
    strict.c0c1()
    with pytest.raises(HandshakeError, match="s1 has no valid digest"):
        strict.process_s0s1s2(simple)


def test_client_detects_a_bad_s2():
    cli = ClientHandshake(complex=True, random_bytes=seeded(15))
    out = bytearray(server().process_c0c1(cli.c0c1()))
    out[-1] ^= 1
    cli.process_s0s1s2(bytes(out))
    assert cli.is_complex and not cli.s2_valid


def test_client_failures():
    cli = ClientHandshake()
    with pytest.raises(HandshakeError, match="s0s1s2 before c0c1"):
        cli.process_s0s1s2(bytes(S0S1S2_SIZE))
    cli.c0c1()
    with pytest.raises(HandshakeError, match="s0s1s2 must be 3073 bytes, got 3072"):
        cli.process_s0s1s2(bytes(3072))
    with pytest.raises(HandshakeError, match="plain text required, s0=0x06"):
        cli.process_s0s1s2(b"\x06" + bytes(3072))
    cli.process_s0s1s2(b"\x03" + bytes(3072))
    with pytest.raises(HandshakeError, match="already processed"):
        cli.process_s0s1s2(b"\x03" + bytes(3072))


def test_find_digest_checks_size():
    with pytest.raises(HandshakeError, match="must be 1536 bytes"):
        find_digest(bytes(100), FP_KEY_PARTIAL)
