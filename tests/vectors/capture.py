"""Re-capture the RTMP byte vectors of tests/vectors from real clients.

    python tests/vectors/capture.py [--out DIR]

Listens on 127.0.0.1 (an ephemeral port), runs the client, records what it sends and
kills it. Every step is bounded in time, so the script cannot hang. Produces:

  ffmpeg_c0c1.bin          C0C1 of ``ffmpeg ... -f flv rtmp://...`` (publish)
  rtmpdump_c0c1.bin        C0C1 of ``rtmpdump -r rtmp://... -o /dev/null`` (play); librtmp
                           uses the simple handshake unless SWF verification is asked for
  rtmpdump_fp9_c0c1.bin    the same with ``--swfhash 00..00 --swfsize 1``, which makes
                           librtmp use the Flash Player 9 (complex) handshake
  ffmpeg_publish_c2s.bin   what ffmpeg sends after C2 while publishing testsrc for 1 s to
                           a minimal server (handshake by srspy.rtmp.handshake, then
                           just enough answers to connect/createStream/publish)
  ffmpeg_publish_av_c2s.bin  the same with an AAC sine tone, so that audio and video
                           chunks interleave on two chunk streams

See PROVENANCE.md for the versions the committed files came from.
"""

from __future__ import annotations

import argparse
import os
import select
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

from srspy.kernel import amf0
from srspy.rtmp.chunk import ChunkDecoder, ChunkEncoder, set_peer_bandwidth, window_ack_size  # noqa: E402
from srspy.rtmp.handshake import C0C1_SIZE, C2_SIZE, ServerHandshake  # noqa: E402
from srspy.kernel.message import AMF0_COMMAND, AMF3_COMMAND, MediaMessage

STEP_TIMEOUT = 10.0  # seconds for any single wait
PUBLISH_SECONDS = 6.0  # upper bound of a publish capture


def ffmpeg_cmd(url: str, audio: bool = False) -> list[str]:
    cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-re",
           "-f", "lavfi", "-i", "testsrc=size=160x120:rate=5"]
    if audio:
        cmd += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"]
    cmd += ["-t", "1", "-c:v", "libx264"]
    if audio:
        cmd += ["-c:a", "aac", "-b:a", "32k"]
    return cmd + ["-f", "flv", url]


def rtmpdump_cmd(url: str, fp9: bool = False) -> list[str]:
    cmd = ["rtmpdump", "-q", "-r", url, "-o", os.devnull]
    if fp9:
        cmd += ["--swfhash", "00" * 32, "--swfsize", "1"]
    return cmd


def _listen() -> socket.socket:
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    srv.settimeout(STEP_TIMEOUT)
    return srv


def _read_exact(conn: socket.socket, n: int, deadline: float) -> bytes:
    data = bytearray()
    while len(data) < n:
        conn.settimeout(max(0.05, deadline - time.monotonic()))
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise EOFError(f"peer closed after {len(data)} of {n} bytes")
        data += chunk
    return bytes(data)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    try:
        proc.wait(timeout=STEP_TIMEOUT)
    except subprocess.TimeoutExpired:
        pass


def capture_c0c1(make_cmd) -> bytes:
    """Start a client against a listening socket and return the first 1537 bytes it sends."""
    srv = _listen()
    port = srv.getsockname()[1]
    proc = subprocess.Popen(make_cmd(f"rtmp://127.0.0.1:{port}/live/s"),
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        conn, _ = srv.accept()
        with conn:
            return _read_exact(conn, C0C1_SIZE, time.monotonic() + STEP_TIMEOUT)
    finally:
        _stop(proc)
        srv.close()


def _command(name: str, txn: float, *args) -> bytes:
    return amf0.encode_all(name, txn, *args)


def capture_publish(make_cmd) -> bytes:
    """Play a minimal RTMP server to a publishing client; return its bytes after C2."""
    srv = _listen()
    port = srv.getsockname()[1]
    proc = subprocess.Popen(make_cmd(f"rtmp://127.0.0.1:{port}/live/s"),
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    recorded = bytearray()
    try:
        conn, _ = srv.accept()
        with conn:
            deadline = time.monotonic() + STEP_TIMEOUT
            hs = ServerHandshake(now_ms=int(time.time() * 1000))
            conn.sendall(hs.process_c0c1(_read_exact(conn, C0C1_SIZE, deadline)))
            hs.process_c2(_read_exact(conn, C2_SIZE, deadline))
            decoder = ChunkDecoder()
            encoder = ChunkEncoder(128)
            end = time.monotonic() + PUBLISH_SECONDS
            while time.monotonic() < end:
                ready, _, _ = select.select([conn], [], [], 0.2)
                if not ready:
                    continue
                data = conn.recv(65536)
                if not data:
                    break
                recorded += data
                for msg in decoder.feed(data):
                    for reply in _answer(msg):
                        conn.sendall(encoder.encode(reply, reply.cs_id))
    finally:
        _stop(proc)
        srv.close()
    return bytes(recorded)


def _answer(msg: MediaMessage) -> list[MediaMessage]:
    """Just enough of a server for ffmpeg to get to publishing."""
    if msg.type == AMF0_COMMAND:
        values = amf0.decode_all(msg.payload)
    elif msg.type == AMF3_COMMAND:
        values = amf0.decode_amf3_command(msg.payload)
    else:
        return []
    name, txn = values[0], values[1]
    if name == "connect":
        info = {"level": "status", "code": "NetConnection.Connect.Success",
                "description": "Connection succeeded", "objectEncoding": 0.0}
        props = {"fmsVer": "FMS/3,5,3,888", "capabilities": 127.0, "mode": 1.0}
        return [window_ack_size(2500000), set_peer_bandwidth(2500000, 2),
                MediaMessage(AMF0_COMMAND, 0, 0, _command("_result", txn, props, info), 3)]
    if name == "createStream":
        return [MediaMessage(AMF0_COMMAND, 0, 0, _command("_result", txn, None, 1.0), 3)]
    if name == "publish":
        info = {"level": "status", "code": "NetStream.Publish.Start", "description": "Started publishing stream."}
        return [MediaMessage(AMF0_COMMAND, 0, 1, _command("onStatus", 0.0, None, info), 5)]
    if name in ("releaseStream", "FCPublish"):
        return [MediaMessage(AMF0_COMMAND, 0, 0, _command("_result", txn, None, amf0.UNDEFINED), 3)]
    return []



def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    args = parser.parse_args()
    jobs = [
        ("ffmpeg_c0c1.bin", lambda: capture_c0c1(ffmpeg_cmd)),
        ("rtmpdump_c0c1.bin", lambda: capture_c0c1(rtmpdump_cmd)),
        ("rtmpdump_fp9_c0c1.bin", lambda: capture_c0c1(lambda url: rtmpdump_cmd(url, fp9=True))),
        ("ffmpeg_publish_c2s.bin", lambda: capture_publish(ffmpeg_cmd)),
        ("ffmpeg_publish_av_c2s.bin", lambda: capture_publish(lambda url: ffmpeg_cmd(url, audio=True))),
    ]
    for name, job in jobs:
        data = job()
        with open(os.path.join(args.out, name), "wb") as f:
            f.write(data)
        print(f"{name}: {len(data)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
