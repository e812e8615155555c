"""Mutation fuzzer of srspy's parsers, and of the server over loopback sockets.

    python tools/fuzz.py TARGET [--count N] [--seconds S] [--seed N] [--out DIR]
    python tools/fuzz.py all --count 1000000 --config-count 100000 --server-count 2000

Targets and what each may raise (anything else is a finding):

    amf0       srspy.kernel.amf0 decode_all, then encode_all of what decoded and decode
               again (same values); Amf0Error. The encoding of a decoded value may not
               be more than twice its input plus a few bytes.
    chunk      srspy.rtmp.chunk.ChunkDecoder fed in random pieces; RtmpProtocolError.
               The decoder may never hold more than its pending-bytes cap plus one chunk.
    handshake  srspy.rtmp.handshake ServerHandshake (c0c1, c2) and ClientHandshake
               (s0s1s2); HandshakeError.
    http       srspy.http.parser.HttpParser fed in random pieces; HttpParseError.
    flv        srspy.kernel.flv.FlvDecoder fed in random pieces; ValueError.
    config     srspy.config.load_config(text=...); ConfigError.
    server     an in-process server on 127.0.0.1 port 0: mutated RTMP sessions and HTTP
               requests over real sockets, each connection bounded to half a second;
               after every 50 inputs a clean RTMP handshake+connect and an HTTP request
               must still be served, and no record at ERROR level (a bug, logged with
               its traceback) may appear.

The corpus is tests/vectors: the RTMP sessions captured from ffmpeg and rtmpdump
(tests/vectors/capture.py), the HTTP requests captured from ffmpeg, ffprobe and curl
(tests/vectors/capture_http.py), and the configs of srspy/conf. Each input is a corpus
sample with one to four mutations (bit flips, interesting bytes, inserted, deleted or
repeated ranges, splices with another sample, truncation). A run is bounded by
``--count`` inputs and ``--seconds``; the slowest input is reported, every finding is
written to ``--out`` (default: a temporary directory) and the exit status is 1 when
there was one. Everything is deterministic for a given ``--seed``.
"""

from __future__ import annotations

import argparse
import glob
import os
import random
import sys
import tempfile
import time
import traceback

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

VECTORS = os.path.join(ROOT, "tests", "vectors")
CONFS = os.path.join(ROOT, "srspy", "conf")

_INTERESTING = (0x00, 0x01, 0x02, 0x03, 0x07, 0x08, 0x09, 0x0A, 0x10, 0x3F, 0x40, 0x7F, 0x80, 0xC0, 0xFE, 0xFF)


def _read(name: str) -> bytes:
    with open(os.path.join(VECTORS, name), "rb") as f:
        return f.read()


def mutate(rng: random.Random, data: bytes, corpus: list, max_len: int = 1 << 16) -> bytes:
    """One to four random mutations of ``data``."""
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(9)
        n = len(b)
        if op == 0 and n:  # flip a bit
            i = rng.randrange(n)
            b[i] ^= 1 << rng.randrange(8)
        elif op == 1 and n:  # an interesting byte
            b[rng.randrange(n)] = rng.choice(_INTERESTING)
        elif op == 2 and n >= 4:  # an interesting 16/24/32-bit value
            i = rng.randrange(n - 3)
            w = rng.choice((2, 3, 4))
            v = rng.choice((0, 1, 0x7F, 0x80, 0xFF, 0xFFFF, 0xFFFFFF, 0x7FFFFFFF, 0xFFFFFFFF, rng.getrandbits(32)))
            b[i:i + w] = (v & ((1 << (8 * w)) - 1)).to_bytes(w, "big")
        elif op == 3:  # insert random bytes
            i = rng.randint(0, n)
            b[i:i] = rng.randbytes(rng.randint(1, 16))
        elif op == 4 and n:  # delete a range
            i = rng.randrange(n)
            del b[i:i + rng.randint(1, 64)]
        elif op == 5 and n:  # repeat a range
            i = rng.randrange(n)
            j = min(n, i + rng.randint(1, 64))
            b[j:j] = b[i:j] * rng.randint(1, 8)
        elif op == 6 and corpus:  # splice with another sample
            other = rng.choice(corpus)
            if other:
                i = rng.randint(0, n)
                k = rng.randrange(len(other))
                b[i:] = other[k:k + rng.randint(1, 512)]
        elif op == 7 and n:  # truncate
            del b[rng.randrange(n):]
        else:  # overwrite a range with random bytes
            if n:
                i = rng.randrange(n)
                w = min(n - i, rng.randint(1, 8))
                b[i:i + w] = rng.randbytes(w)
    return bytes(b[:max_len])


def pieces(rng: random.Random, data: bytes):
    """``data`` whole, byte by byte, or in random pieces."""
    k = rng.randrange(4)
    if k == 0 or len(data) < 2:
        yield data
    elif k == 1 and len(data) <= 512:
        for i in range(len(data)):
            yield data[i:i + 1]
    else:
        i = 0
        while i < len(data):
            j = i + rng.randint(1, 700)
            yield data[i:j]
            i = j


# -------------------------------------------------------------------------- corpora

def _sessions() -> list:
    return [_read("ffmpeg_publish_c2s.bin"), _read("ffmpeg_publish_av_c2s.bin")]


def _session_messages() -> list:
    from srspy.rtmp.chunk import ChunkDecoder

    msgs = []
    for s in _sessions():
        msgs += ChunkDecoder().feed(s)
    return msgs


def corpus_amf0() -> list:
    from srspy.kernel import amf0
    from srspy.kernel.message import AMF0_COMMAND, AMF0_DATA

    out = [m.payload for m in _session_messages() if m.type in (AMF0_COMMAND, AMF0_DATA)]
    out.append(amf0.encode_all("onStatus", 0.0, None, {"level": "status", "code": "NetStream.Play.Start",
                                                       "when": amf0.Amf0Date(1.7e12, 0), "list": [1.0, True, None],
                                                       "u": amf0.UNDEFINED, "t": amf0.TypedObject("c", a="b")}))
    return out


def corpus_chunk() -> list:
    """Runs of one to eight consecutive messages of the sessions, at chunk sizes 128 and 4096,
    plus the sessions themselves."""
    from srspy.rtmp.chunk import ChunkEncoder, set_chunk_size

    msgs = _session_messages()
    rng = random.Random(1)
    out = list(_sessions())
    for _ in range(200):
        i = rng.randrange(len(msgs))
        run = msgs[i:i + rng.randint(1, 8)]
        size = rng.choice((128, 4096))
        enc = ChunkEncoder(128)
        data = b""
        if size != 128:
            data = enc.encode(set_chunk_size(size), 2)
            enc.set_chunk_size(size)
        out.append(data + b"".join(enc.encode(m, m.cs_id or 3) for m in run))
    return out


def corpus_handshake() -> list:
    return [_read(n) for n in ("ffmpeg_c0c1.bin", "rtmpdump_c0c1.bin", "rtmpdump_fp9_c0c1.bin")]


def corpus_http() -> list:
    return [open(p, "rb").read() for p in sorted(glob.glob(os.path.join(VECTORS, "http_*.bin")))]


def corpus_flv() -> list:
    from srspy.kernel.flv import encode_tag, flv_header, tag_type

    msgs = [m for m in _session_messages() if m.type in (8, 9, 18)]
    out = []
    for i in range(0, len(msgs), 6):
        out.append(flv_header(True, True) + b"".join(encode_tag(tag_type(m.type), m.timestamp, m.payload)
                                                     for m in msgs[i:i + 6]))
    return out


def corpus_config() -> list:
    return [open(p, "rb").read() for p in sorted(glob.glob(os.path.join(CONFS, "*.conf")))]


# -------------------------------------------------------------------------- targets

def target_amf0(rng, data):
    from srspy.kernel import amf0

    values = amf0.decode_all(data)
    enc = amf0.encode_all(*values)
    if len(enc) > 2 * len(data) + 64:
        raise AssertionError(f"amf0: {len(data)} bytes re-encode to {len(enc)}")
    again = amf0.decode_all(enc)
    if len(again) != len(values):
        raise AssertionError("amf0: round trip changed the number of values")


def target_chunk(rng, data):
    from srspy.rtmp.chunk import ChunkDecoder

    d = ChunkDecoder(max_message_size=1 << 20, max_chunk_streams=8, max_pending_bytes=1 << 20)
    for piece in pieces(rng, data):
        d.feed(piece)
        if d.pending_bytes > d.max_pending_bytes or d.chunk_streams > d.max_chunk_streams:
            raise AssertionError(f"chunk: holds {d.pending_bytes} bytes on {d.chunk_streams} chunk streams")


def target_handshake(rng, data):
    from srspy.rtmp.handshake import C0C1_SIZE, ClientHandshake, ServerHandshake

    hs = ServerHandshake(random_bytes=rng.randbytes, now_ms=0)
    c0c1 = data[:C0C1_SIZE] if rng.random() < 0.8 else data
    s0s1s2 = hs.process_c0c1(c0c1)
    hs.process_c2(mutate(rng, s0s1s2[1 + 1536:], []) if rng.random() < 0.5 else s0s1s2[1 + 1536:])
    client = ClientHandshake(random_bytes=rng.randbytes)
    client.c0c1()
    client.process_s0s1s2(mutate(rng, s0s1s2, []) if rng.random() < 0.5 else s0s1s2)


def target_http(rng, data):
    from srspy.http.parser import HttpParser

    p = HttpParser(max_request_line=4096, max_header_bytes=8192, max_body=1 << 16)
    for piece in pieces(rng, data):
        p.feed(piece)
        while p.next_request() is not None:
            pass


def target_flv(rng, data):
    from srspy.kernel.flv import FlvDecoder

    d = FlvDecoder(max_tag_size=1 << 20)
    for piece in pieces(rng, data):
        d.feed(piece)


def target_config(rng, data):
    from srspy.config import load_config

    load_config(text=data.decode("utf-8", "surrogateescape"), env={})


def _expected():
    from srspy.errors import Amf0Error, ConfigError, HandshakeError, RtmpProtocolError
    from srspy.http.parser import HttpParseError

    return {"amf0": Amf0Error, "chunk": RtmpProtocolError, "handshake": HandshakeError, "http": HttpParseError,
            "flv": ValueError, "config": ConfigError}


PARSERS = {
    "amf0": (corpus_amf0, target_amf0),
    "chunk": (corpus_chunk, target_chunk),
    "handshake": (corpus_handshake, target_handshake),
    "http": (corpus_http, target_http),
    "flv": (corpus_flv, target_flv),
    "config": (corpus_config, target_config),
}


def run_parser(name: str, count: int, seconds: float, seed: int, out: str | None, quiet: bool = False) -> dict:
    """Fuzz one parser; returns {"target", "inputs", "refused", "findings", "seconds", "slowest_ms"}."""
    make_corpus, target = PARSERS[name]
    expected = _expected()[name]
    corpus = make_corpus()
    rng = random.Random(seed)
    findings = []
    refused = 0
    slowest = 0.0
    t0 = time.monotonic()
    n = 0
    while n < count and time.monotonic() - t0 < seconds:
        data = mutate(rng, rng.choice(corpus), corpus) if rng.random() < 0.97 else rng.choice(corpus)
        sub = random.Random(rng.getrandbits(64))
        s = time.perf_counter()
        try:
            target(sub, data)
        except expected:
            refused += 1
        except Exception as e:  # noqa: BLE001 - a finding: recorded, the run goes on
            findings.append((data, "".join(traceback.format_exception(e))))
            if out:
                os.makedirs(out, exist_ok=True)
                with open(os.path.join(out, f"{name}-{len(findings)}.bin"), "wb") as f:
                    f.write(data)
                with open(os.path.join(out, f"{name}-{len(findings)}.txt"), "w") as f:
                    f.write(findings[-1][1])
        slowest = max(slowest, time.perf_counter() - s)
        n += 1
        if not quiet and n % 100000 == 0:
            print(f"{name}: {n} inputs, {refused} refused, {len(findings)} findings", file=sys.stderr, flush=True)
    return {"target": name, "inputs": n, "refused": refused, "findings": len(findings),
            "seconds": round(time.monotonic() - t0, 1), "slowest_ms": round(slowest * 1000, 2),
            "first_finding": findings[0][1] if findings else ""}


# -------------------------------------------------------------------------- the server

def run_server(count: int, seconds: float, seed: int, out: str | None, quiet: bool = False) -> dict:
    """Mutated RTMP sessions and HTTP requests against an in-process server (loopback)."""
    from gevent import monkey

    if not monkey.is_module_patched("socket"):
        monkey.patch_all()
    import gevent
    from gevent import socket
    from loguru import logger

    from srspy import log
    from srspy.rtmp.handshake import ClientHandshake
    from srspy.server import Server

    logger.enable("srspy")
    log.setup("console", "error")
    errors: list = []
    sink = logger.add(lambda m: errors.append(str(m)), level="ERROR", format="{message}\n{exception}")
    srv = Server.from_text("listen 127.0.0.1:0; daemon off; srs_log_tank console; srs_log_level error;"
                           "limits { idle_timeout 1; rtmp_chunk_streams 8; rtmp_pending_bytes 1048576; }"
                           "http_server { enabled on; listen 127.0.0.1:0; dir /nonexistent; }"
                           "http_api { enabled on; listen 127.0.0.1:0; }"
                           "vhost __defaultVhost__ { http_remux { enabled on; mount [vhost]/[app]/[stream].flv; } }")
    srv.start()
    rtmp_port, http_port, api_port = srv.rtmp_ports[0], srv.http_port, srv.api_port
    c0c1 = corpus_handshake()
    rtmp_corpus = [c + ClientHandshake().c0c1()[1:1537] + s for c in c0c1[:1] for s in _sessions()]
    http_corpus = corpus_http()
    rng = random.Random(seed)
    findings = []
    n = 0
    t0 = time.monotonic()

    def exchange(port: int, data: bytes) -> None:
        with gevent.Timeout(0.5, False):
            s = socket.create_connection(("127.0.0.1", port), timeout=0.5)
            try:
                s.sendall(data)
                while s.recv(65536):
                    pass
            except OSError:
                pass
            finally:
                s.close()

    def healthy() -> str:
        try:
            with gevent.Timeout(5):
                s = socket.create_connection(("127.0.0.1", rtmp_port), timeout=5)
                hs = ClientHandshake()
                s.sendall(hs.c0c1())
                got = b""
                while len(got) < 3073:
                    d = s.recv(3073 - len(got))
                    if not d:
                        return "rtmp: closed in the handshake"
                    got += d
                s.close()
                for port in (http_port, api_port):
                    s = socket.create_connection(("127.0.0.1", port), timeout=5)
                    s.sendall(b"GET /api/v1/versions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    if not s.recv(12).startswith(b"HTTP/1.1 "):
                        return f"http: no answer on port {port}"
                    s.close()
        except (OSError, gevent.Timeout) as e:
            return f"server unhealthy: {e!r}"
        return ""

    try:
        while n < count and time.monotonic() - t0 < seconds:
            if rng.random() < 0.5:
                data, port = mutate(rng, rng.choice(rtmp_corpus), rtmp_corpus, 1 << 15), rtmp_port
            else:
                data, port = mutate(rng, rng.choice(http_corpus), http_corpus), rng.choice((http_port, api_port))
            exchange(port, data)
            n += 1
            if n % 50 == 0 or n == count:
                problem = healthy() or (errors[0] if errors else "")
                if problem:
                    findings.append((data, problem))
                    errors.clear()
                    if out:
                        os.makedirs(out, exist_ok=True)
                        with open(os.path.join(out, f"server-{len(findings)}.txt"), "w") as f:
                            f.write(problem)
                if not quiet and n % 1000 == 0:
                    print(f"server: {n} inputs, {len(findings)} findings", file=sys.stderr, flush=True)
    finally:
        logger.remove(sink)
        with gevent.Timeout(5, False):
            srv.stop()
    return {"target": "server", "inputs": n, "refused": 0, "findings": len(findings),
            "seconds": round(time.monotonic() - t0, 1), "slowest_ms": 0.0,
            "first_finding": findings[0][1] if findings else ""}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Mutation fuzzer of srspy's parsers and server (loopback only).")
    ap.add_argument("target", choices=sorted(PARSERS) + ["server", "all"])
    ap.add_argument("--count", type=int, default=10000, help="inputs per binary parser (default 10000)")
    ap.add_argument("--config-count", type=int, default=None, help="inputs for the config parser (default: --count)")
    ap.add_argument("--server-count", type=int, default=500, help="inputs for the server (default 500)")
    ap.add_argument("--seconds", type=float, default=3600.0, help="time bound per target (default 3600)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default=None, help="directory for findings (default: a temporary one)")
    a = ap.parse_args(argv)
    out = a.out or tempfile.mkdtemp(prefix="srspy-fuzz-")
    from loguru import logger

    logger.disable("srspy")  # the parsers' warnings (config) are expected; the server target enables it
    names = (sorted(PARSERS) + ["server"]) if a.target == "all" else [a.target]
    bad = 0
    for name in names:
        if name == "server":
            r = run_server(a.server_count, a.seconds, a.seed, out)
        else:
            count = a.config_count if name == "config" and a.config_count is not None else a.count
            r = run_parser(name, count, a.seconds, a.seed, out)
        print(f"{r['target']:<10} inputs={r['inputs']} refused={r['refused']} findings={r['findings']} "
              f"seconds={r['seconds']} slowest_ms={r['slowest_ms']}", flush=True)
        if r["findings"]:
            bad += 1
            print(r["first_finding"], flush=True)
    print(f"findings in {out}" if bad else "no findings", flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
