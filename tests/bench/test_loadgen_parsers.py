"""bench/loadgen's WebSocket and MPEG-TS players against a scripted server on loopback.

srspy sends single unmasked binary frames and TS from kernel/ts.py; this server also sends
what srspy does not (pings, fragmented messages, 64-bit lengths, bytes dribbled across
reads) and what a player must refuse (masked or text frames, a wrong accept value, a lost
TS sync byte), and checks what the load generator counted and answered.
"""

import base64
import hashlib
import importlib.util
import json
import struct
from pathlib import Path

import gevent
import pytest
from gevent import socket, subprocess

pytestmark = pytest.mark.timeout(120)
ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("bench_run", ROOT / "bench" / "run.py")
run = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(run)
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


@pytest.fixture(scope="module")
def loadgen():
    run.build_loadgen()
    return run.LOADGEN


def flv_tag(kind: int, ms: int, body: bytes) -> bytes:
    head = bytes([kind]) + len(body).to_bytes(3, "big") + (ms & 0xFFFFFF).to_bytes(3, "big") + bytes([ms >> 24, 0, 0, 0])
    return head + body + struct.pack(">I", 11 + len(body))


def small_flv() -> tuple[bytes, int]:
    """An FLV (sequence headers, a keyframe, inter frames, AAC frames) and its media frame count."""
    tags = [flv_tag(9, 0, b"\x17\x00\x00\x00\x00" + b"\x01\x64\x00\x1f\xff"),
            flv_tag(8, 0, b"\xaf\x00\x12\x10"),
            flv_tag(9, 0, b"\x17\x01\x00\x00\x00" + b"k" * 3000)]
    frames = 1
    for i in range(1, 40):
        tags.append(flv_tag(9, i * 33, b"\x27\x01\x00\x00\x00" + b"p" * (100 + i)))
        tags.append(flv_tag(8, i * 23, b"\xaf\x01" + b"a" * 70))
        frames += 2
    return b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00" + b"".join(tags), frames


def ws_frame(payload: bytes, opcode: int = 2, fin: bool = True, mask: bytes = b"", form: int = 0) -> bytes:
    """A frame; form forces the 16-bit (126) or 64-bit (127) length encoding."""
    n = len(payload)
    b0 = (0x80 if fin else 0) | opcode
    mbit = 0x80 if mask else 0
    if form == 127 or n > 0xFFFF:
        head = bytes([b0, mbit | 127]) + struct.pack(">Q", n)
    elif form == 126 or n > 125:
        head = bytes([b0, mbit | 126]) + struct.pack(">H", n)
    else:
        head = bytes([b0, mbit | n])
    if mask:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + payload


def read_head(conn) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        assert chunk, "the player closed before its request ended"
        data += chunk
    return data


def dribble(conn, data: bytes, piece: int) -> None:
    for i in range(0, len(data), piece):
        conn.sendall(data[i:i + piece])
        gevent.sleep(0.001)


def serve(script, clients: int = 1):
    """Listen on 127.0.0.1:0; script(conn, got) per connection, in its own greenlet."""
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(8)
    got: list[dict] = []

    def accept_all():
        for _ in range(clients):
            conn, _ = lsock.accept()
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            d = {}
            got.append(d)
            gevent.spawn(script, conn, d)

    return lsock, gevent.spawn(accept_all), got


def run_loadgen(loadgen, mode: str, url: str, tmp_path, n: int = 1, duration: float = 1.5) -> dict:
    out = tmp_path / f"{mode}.json"
    r = subprocess.run([loadgen, mode, "-u", url, "-n", str(n), "-d", str(duration), "--warmup", "0.2",
                        "--timeout", "5", "-o", str(out)], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr.decode()
    return json.loads(out.read_text())


def accept_value(head: bytes) -> bytes:
    key = [v for v in head.split(b"\r\n") if v.lower().startswith(b"sec-websocket-key:")][0].split(b":", 1)[1].strip()
    return base64.b64encode(hashlib.sha1(key + GUID).digest())


def upgrade_reply(accept: bytes) -> bytes:
    return (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")


def read_client_frame(conn) -> tuple[int, bytes, bytes]:
    """(opcode, mask key, unmasked payload) of one frame the player sends."""
    buf = b""
    while len(buf) < 2:
        buf += conn.recv(64)
    n = buf[1] & 0x7F
    while len(buf) < 6 + n:
        buf += conn.recv(64)
    mask = buf[2:6]
    return buf[0] & 0x0F, mask if buf[1] & 0x80 else b"", bytes(b ^ mask[i % 4] for i, b in enumerate(buf[6:6 + n]))


def test_wsflv_handshake_frames_ping_and_fragments(loadgen, tmp_path):
    flv, frames = small_flv()
    # header in a 7-bit frame, then a 16-bit one, then one message in two fragments (64-bit length on the
    # continuation), the last bytes in a 16-bit-encoded frame of few bytes; a ping in between
    a, b, c = 13, 1500, len(flv) - 20
    stream = (ws_frame(flv[:a]) + ws_frame(flv[a:b]) + ws_frame(b"hi", opcode=9)
              + ws_frame(flv[b:2000], fin=False) + ws_frame(flv[2000:c], opcode=0, form=127)
              + ws_frame(flv[c:], form=126))

    def script(conn, got):
        head = read_head(conn)
        got["head"] = head
        conn.sendall(upgrade_reply(accept_value(head)))
        dribble(conn, stream, 97)
        got["pong"] = read_client_frame(conn)
        gevent.sleep(5)

    lsock, acceptor, got = serve(script, clients=2)
    port = lsock.getsockname()[1]
    rep = run_loadgen(loadgen, "wsflv", f"ws://127.0.0.1:{port}/live/s.flv", tmp_path, n=2)
    lsock.close()
    acceptor.kill()
    assert (rep["ok"], rep["failed"], rep["fail_reasons"]) == (2, 0, {}), rep
    assert rep["bytes"] == 2 * len(flv) and rep["frames"] == 2 * frames
    assert rep["wire_in"] == 2 * (len(upgrade_reply(b"x" * 28)) + len(stream))
    assert rep["first_key_ms"]["n"] == 2
    heads = [g["head"].decode() for g in got]
    for h in heads:
        assert h.startswith("GET /live/s.flv HTTP/1.1\r\n")
        lines = {k.lower(): v.strip() for k, v in (x.split(":", 1) for x in h.split("\r\n")[1:] if ":" in x)}
        assert lines["upgrade"].lower() == "websocket" and "upgrade" in lines["connection"].lower()
        assert lines["sec-websocket-version"] == "13" and len(base64.b64decode(lines["sec-websocket-key"])) == 16
    assert heads[0] != heads[1], "every connection has its own key"
    for g in got:
        op, mask, payload = g["pong"]
        assert (op, payload) == (0xA, b"hi") and len(mask) == 4


@pytest.mark.parametrize("case,reason", [("masked", "ws_frame"), ("text", "ws_frame"), ("accept", "ws_handshake"),
                                         ("status", "http_status"), ("close", "disconnect")])
def test_wsflv_refuses(loadgen, tmp_path, case, reason):
    flv, _ = small_flv()

    def script(conn, got):
        head = read_head(conn)
        if case == "status":
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: video/x-flv\r\n\r\n" + flv)
        else:
            conn.sendall(upgrade_reply(b"x" * 28 if case == "accept" else accept_value(head)))
            frame = {"masked": ws_frame(flv, mask=b"\x01\x02\x03\x04"), "text": ws_frame(flv, opcode=1),
                     "close": ws_frame(flv) + ws_frame(struct.pack(">H", 1000), opcode=8)}.get(case, b"")
            conn.sendall(frame)
        gevent.sleep(5)

    lsock, acceptor, _ = serve(script)
    rep = run_loadgen(loadgen, "wsflv", f"ws://127.0.0.1:{lsock.getsockname()[1]}/live/s.flv", tmp_path, duration=1.0)
    lsock.close()
    acceptor.kill()
    assert (rep["ok"], rep["fail_reasons"]) == (0, {reason: 1}), rep


def ts_packet(pid: int, payload: bytes, pusi: bool = False, af: bytes = b"") -> bytes:
    """One 188-byte packet; af is the adaptation field's body (flags and fields); stuffing fills the rest."""
    room = 184 - (1 + len(af) if af or len(payload) < 184 else 0)
    assert len(payload) <= room
    if af or len(payload) < 184:
        af = af or b"\x00"
        af += b"\xff" * (183 - len(af) - len(payload))
        head = bytes([0x47, (0x40 if pusi else 0) | pid >> 8, pid & 0xFF, 0x30, len(af)]) + af
    else:
        head = bytes([0x47, (0x40 if pusi else 0) | pid >> 8, pid & 0xFF, 0x10])
    return head + payload


def pes_start(stream_id: int, pts_ms: int, dts_ms: int | None = None) -> bytes:
    def stamp(prefix, ms):
        t = ms * 90
        return bytes([prefix << 4 | (t >> 29) & 0x0E | 1, (t >> 22) & 0xFF, (t >> 14) & 0xFE | 1, (t >> 7) & 0xFF,
                      (t << 1) & 0xFE | 1])
    if dts_ms is None:
        opt, flags = stamp(2, pts_ms), 0x80
    else:
        opt, flags = stamp(3, pts_ms) + stamp(1, dts_ms), 0xC0
    return bytes([0, 0, 1, stream_id, 0, 0, 0x80, flags, len(opt)]) + opt


def small_ts(key: bool = True) -> tuple[bytes, int]:
    """PAT-less TS (the player reads PES starts only): audio on 0x101, video on 0x100 with a keyframe
    (random_access_indicator) unless key is False, a PES spanning several packets; the PES count."""
    out = [ts_packet(0x101, pes_start(0xC0, 0) + b"a" * 50, pusi=True)]
    pcr = b"\x00" * 6
    out.append(ts_packet(0x100, pes_start(0xE0, 40, 0) + b"k" * 100, pusi=True, af=(b"\x50" if key else b"\x10") + pcr))
    out += [ts_packet(0x100, b"k" * 184) for _ in range(5)]
    out.append(ts_packet(0x1001, b"\x00" * 20, pusi=True))  # not a media PID: not looked into
    pes = 2
    for i in range(1, 30):
        out.append(ts_packet(0x100, pes_start(0xE0, i * 33) + b"p" * 120, pusi=True, af=b"\x10" + pcr))
        out.append(ts_packet(0x101, pes_start(0xC0, i * 23) + b"a" * 60, pusi=True))
        pes += 2
    return b"".join(out), pes


@pytest.mark.parametrize("mode", ["ts", "wsts"])
def test_ts_players_count_pes_and_keyframe(loadgen, tmp_path, mode):
    ts, pes = small_ts()

    def script(conn, got):
        head = read_head(conn)
        if mode == "ts":
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: video/MP2T\r\nTransfer-Encoding: chunked\r\n\r\n")
            for i in range(0, len(ts), 1000):  # chunks that cut packets
                part = ts[i:i + 1000]
                dribble(conn, b"%x\r\n" % len(part) + part + b"\r\n", 61)
        else:
            conn.sendall(upgrade_reply(accept_value(head)))
            dribble(conn, ws_frame(ts[:500]) + ws_frame(ts[500:]), 61)
        gevent.sleep(5)

    lsock, acceptor, _ = serve(script)
    scheme = "http" if mode == "ts" else "ws"
    rep = run_loadgen(loadgen, mode, f"{scheme}://127.0.0.1:{lsock.getsockname()[1]}/live/s.ts", tmp_path)
    lsock.close()
    acceptor.kill()
    assert (rep["ok"], rep["fail_reasons"]) == (1, {}), rep
    assert rep["bytes"] == len(ts) and rep["frames"] == pes and rep["first_key_ms"]["n"] == 1


@pytest.mark.parametrize("case", ["nokey", "sync"])
def test_ts_without_keyframe_or_sync(loadgen, tmp_path, case):
    ts, pes = small_ts(key=case != "nokey")
    if case == "sync":
        ts = ts[:188 * 3] + b"\x00" + ts[188 * 3 + 1:]

    def script(conn, got):
        read_head(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: video/MP2T\r\n\r\n" + ts)
        gevent.sleep(5)

    lsock, acceptor, _ = serve(script)
    rep = run_loadgen(loadgen, "ts", f"http://127.0.0.1:{lsock.getsockname()[1]}/live/s.ts", tmp_path, duration=1.0)
    lsock.close()
    acceptor.kill()
    if case == "nokey":  # media, but no first keyframe: counted, first_key empty
        assert (rep["ok"], rep["frames"], rep["first_key_ms"]["n"]) == (1, pes, 0), rep
    else:
        assert (rep["ok"], rep["fail_reasons"]) == (0, {"parse": 1}), rep
