"""bench/hlsgen's viewers against a scripted HLS server on loopback.

The server redirects the first playlist request, answers with a master playlist (one
session id per viewer, as srspy's hls_ctx does), then serves each viewer a scripted series
of media playlists: the window moves by one segment, jumps ahead (segments the viewer can
no longer get), stays unchanged once, and ends with #EXT-X-ENDLIST. Segment URIs come
relative, as absolute paths and as absolute URLs; bodies come with Content-Length or
chunked; segments carry ``Connection: close`` while the connection stays open (as SRS
does); one viewer gets a 404, another a body that is not TS, and the server closes one
idle keep-alive connection. Everything the load generator counts is checked against what
the server saw.
"""

import importlib.util
import json
import re
from pathlib import Path

import gevent
import pytest
from gevent import socket, subprocess

pytestmark = pytest.mark.timeout(60)
ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("bench_run", ROOT / "bench" / "run.py")
run = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(run)
HLSGEN_SRC = str(ROOT / "bench" / "hlsgen.c")
HLSGEN = str(ROOT / "bench" / ".build" / "hlsgen")

# reload k of a viewer's media playlist lists these sequence numbers (then ENDLIST)
WINDOWS = [(0, 1, 2), (1, 2, 3), (2, 3, 4), (8, 9, 10), (8, 9, 10), (9, 10, 11)]
EXPECTED = [0, 1, 2, 3, 4, 8, 9, 10, 11]  # each new segment once, in order; 5-7 are skipped


@pytest.fixture(scope="module")
def hlsgen():
    run.build_loadgen(HLSGEN_SRC, HLSGEN)
    return HLSGEN


class Server:
    """The scripted HLS server; ``log`` has (ctx, kind, detail) per request."""

    def __init__(self):
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(64)
        self.port = self.lsock.getsockname()[1]
        self.log: list[tuple] = []
        self.reloads: dict[str, int] = {}
        self.viewers = 0
        self.accepts = 0
        self.acceptor = gevent.spawn(self._accept)

    def close(self):
        self.acceptor.kill()
        self.lsock.close()

    def _accept(self):
        while True:
            conn, _ = self.lsock.accept()
            self.accepts += 1
            gevent.spawn(self._serve, conn)

    def _serve(self, conn):
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(4096)
                    if not data:
                        return
                    buf += data
                head, _, buf = buf.partition(b"\r\n\r\n")
                target = head.split(b"\r\n")[0].split(b" ")[1].decode()
                if not self._answer(conn, target):
                    return
        finally:
            conn.close()

    def _answer(self, conn, target: str) -> bool:
        """Answer one request; False to close the connection after it."""
        path, _, query = target.partition("?")
        ctx = dict(kv.split("=") for kv in query.split("&") if "=" in kv).get("ctx", "")
        if path == "/live/index.m3u8":
            self.log.append(("", "redirect", target))
            conn.sendall(b"HTTP/1.1 302 Found\r\nLocation: /live/master.m3u8?token=t\r\nContent-Length: 0\r\n\r\n")
            return True
        if path == "/live/master.m3u8":
            assert query == "token=t", target
            ctx = f"v{self.viewers}"
            self.viewers += 1
            self.log.append((ctx, "master", target))
            body = f"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nmedia.m3u8?ctx={ctx}\n".encode()
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
            return True
        if path == "/live/media.m3u8":
            k = self.reloads.get(ctx, 0)
            self.reloads[ctx] = k + 1
            seqs = WINDOWS[min(k, len(WINDOWS) - 1)]
            self.log.append((ctx, "playlist", k))
            lines = ["#EXTM3U", "#EXT-X-VERSION:3", f"#EXT-X-MEDIA-SEQUENCE:{seqs[0]}", "#EXT-X-TARGETDURATION:1"]
            for s in seqs:
                uri = [f"seg-{s}.ts?ctx={ctx}", f"/live/seg-{s}.ts?ctx={ctx}",
                       f"http://127.0.0.1:{self.port}/live/seg-{s}.ts?ctx={ctx}"][s % 3]
                lines += ["#EXTINF:0.300, no desc", uri]
            if k >= len(WINDOWS) - 1:
                lines.append("#EXT-X-ENDLIST")
            body = ("\n".join(lines) + "\n").encode()
            if k % 2:  # chunked, in two chunks
                half = len(body) // 2
                conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                             + b"%x\r\n" % half + body[:half] + b"\r\n"
                             + b"%x\r\n" % (len(body) - half) + body[half:] + b"\r\n0\r\n\r\n")
            else:
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
            return k != 2  # the server closes the idle connection after the third playlist
        m = re.fullmatch(r"/live/seg-(\d+)\.ts", path)
        if m:
            seq = int(m.group(1))
            self.log.append((ctx, "segment", seq))
            if ctx == "v0" and seq == 4:
                conn.sendall(b"HTTP/1.1 404 Not Found\r\nConnection: Close\r\nContent-Length: 9\r\n\r\nNot Found")
                return True
            body = bytes([0x47]) + bytes(188 * (seq + 1) - 1)
            if ctx == "v1" and seq == 10:
                body = b"X" + body[1:]
            conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: Close\r\nContent-Type: video/MP2T\r\n"
                         b"Content-Length: %d\r\n\r\n" % len(body) + body)
            return True
        self.log.append((ctx, "unknown", target))
        conn.sendall(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n")
        return True


def run_hlsgen(hlsgen, port: int, tmp_path, *extra) -> dict:
    out = tmp_path / "hlsgen.json"
    r = subprocess.run([hlsgen, "-u", f"http://127.0.0.1:{port}/live/index.m3u8", "-n", "3", "-d", "4",
                        "--warmup", "0.1", "--spread", "0.2", "--timeout", "3", "-o", str(out), *extra],
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr.decode()
    return json.loads(out.read_text())


@pytest.mark.parametrize("honor_close", [False, True])
def test_viewers_follow_the_playlists_as_hls_js_does(hlsgen, tmp_path, honor_close):
    srv = Server()
    try:
        rep = run_hlsgen(hlsgen, srv.port, tmp_path, *(["--honor-close"] if honor_close else []))
    finally:
        srv.close()
    assert srv.viewers == 3
    unknown = [e for e in srv.log if e[1] == "unknown"]
    assert not unknown, unknown
    for ctx in ("v0", "v1", "v2"):
        segs = [e[2] for e in srv.log if e[0] == ctx and e[1] == "segment"]
        assert segs == EXPECTED, (ctx, segs)  # every URI form resolved; each new segment once, in order
        assert [e[2] for e in srv.log if e[0] == ctx and e[1] == "playlist"] == list(range(len(WINDOWS)))
    seg_requests = 3 * len(EXPECTED)
    playlist_requests = 3 * (1 + 1 + len(WINDOWS))  # redirect, master, media playlists
    assert rep["playlist_requests"]["total"] == playlist_requests
    assert rep["segment_requests"]["total"] == seg_requests
    assert (rep["redirects"]["total"], rep["master_playlists"]["total"]) == (3, 3)
    assert (rep["ok"], rep["with_errors"], rep["no_segment"]) == (1, 2, 0), rep
    # every answer but a 200 has its status counted; redirects are not failures
    assert {k: v["total"] for k, v in rep["statuses"].items()} == {"302": 3, "404": 1}
    assert rep["non_200"]["total"] == 1
    assert rep["errors"]["total"] == 1 and {k: v["total"] for k, v in rep["error_reasons"].items()} == {"body": 1}
    assert rep["segments"]["total"] == seg_requests - 2  # the 404 and the body that is not TS
    assert rep["segments_skipped"]["total"] == 3 * 3
    assert rep["playlists_unchanged"]["total"] == 3 and rep["playlists_updated"]["total"] == 3 * (len(WINDOWS) - 2)
    assert rep["connection_close_headers"]["total"] == seg_requests
    seg_bytes = 3 * sum(188 * (s + 1) for s in EXPECTED) - 188 * 5 + 9  # v0's segment 4 is a 9-byte 404
    assert rep["body_bytes"]["total"] > seg_bytes
    assert rep["target_duration_s"] == 1
    if honor_close:
        # every segment answer ends its connection; playlists: 2 connections each (the server closed one)
        assert rep["connects"]["total"] == srv.accepts == seg_requests + 3 * 2
    else:
        assert rep["connects"]["total"] == srv.accepts == 3 * 3  # playlist, its reopening, segments
        assert rep["server_closes"]["total"] == 3
