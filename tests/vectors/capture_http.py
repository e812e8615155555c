"""Capture the HTTP request vectors of tests/vectors from real clients.

    python tests/vectors/capture_http.py [--out DIR]

Listens on 127.0.0.1 (an ephemeral port), runs each client against it, records the
bytes of its request, answers 404 and closes. Every wait is bounded. Produces
``http_<name>.bin``: ffmpeg and ffprobe opening an HTTP-FLV stream, curl reading the API
(JSONP, Basic auth), POSTing JSON, sending a chunked body, and a kick by DELETE.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import threading

STEP_TIMEOUT = 10.0


def _clients(port: int) -> dict:
    base = f"http://127.0.0.1:{port}"
    curl = ["curl", "-s", "-o", "/dev/null", "--max-time", "5"]
    return {
        "ffmpeg_flv": ["ffmpeg", "-nostdin", "-loglevel", "quiet", "-rw_timeout", "3000000", "-i",
                       f"{base}/live/livestream.flv", "-f", "null", "-"],
        "ffprobe_flv": ["ffprobe", "-loglevel", "quiet", "-rw_timeout", "3000000", f"{base}/live/s.flv?token=abc"],
        "curl_jsonp": curl + [f"{base}/api/v1/streams/?callback=jQuery1_2&_=1700000000000"],
        "curl_auth": curl + ["-u", "admin:pa:ss", f"{base}/api/v1/versions"],
        "curl_post_json": curl + ["-H", "Content-Type: application/json", "-d",
                                  '{"action":"on_publish","app":"live","stream":"s"}', f"{base}/api/v1/raw?rpc=reload"],
        "curl_chunked": curl + ["-H", "Transfer-Encoding: chunked", "--data-binary", "hello world",
                                f"{base}/hooks/on_play"],
        "curl_delete": curl + ["-X", "DELETE", f"{base}/api/v1/clients/abcd1234"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    a = ap.parse_args()
    for name in _clients(0):
        data = _capture_named(name)
        path = os.path.join(a.out, f"http_{name}.bin")
        with open(path, "wb") as f:
            f.write(data)
        print(f"{path}: {len(data)} bytes")


def _capture_named(name: str) -> bytes:
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    port = lst.getsockname()[1]
    lst.close()
    done = threading.Event()
    result = {}

    def serve():
        result["data"] = _serve_once(port, done)

    t = threading.Thread(target=serve)
    t.start()
    done.wait(STEP_TIMEOUT)
    proc = subprocess.Popen(_clients(port)[name], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    t.join(STEP_TIMEOUT * 2)
    try:
        proc.wait(STEP_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    return result.get("data", b"")


def _serve_once(port: int, ready: threading.Event) -> bytes:
    lst = socket.socket()
    lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lst.bind(("127.0.0.1", port))
    lst.listen(1)
    lst.settimeout(STEP_TIMEOUT)
    ready.set()
    try:
        conn, _ = lst.accept()
    finally:
        lst.close()
    conn.settimeout(1.0)
    data = bytearray()
    while True:
        try:
            chunk = conn.recv(65536)
        except socket.timeout:
            break
        if not chunk:
            break
        data += chunk
        head, sep, body = bytes(data).partition(b"\r\n\r\n")
        low = head.lower()
        if not sep:
            continue
        if b"chunked" in low:
            if body.endswith(b"0\r\n\r\n"):
                break
        elif b"content-length:" in low:
            n = int(low.split(b"content-length:")[1].split(b"\r\n")[0])
            if len(body) >= n:
                break
        else:
            break
    conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    conn.close()
    return bytes(data)


if __name__ == "__main__":
    main()
