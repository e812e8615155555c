"""Test media made by ffmpeg, and ffmpeg/ffprobe helpers."""

from __future__ import annotations

import json
from gevent import subprocess
from pathlib import Path


def make_flv(path: Path, seconds: int, video: bool = True, audio: bool = True, size: str = "640x360", fps: int = 25,
             acodec: str = "aac") -> Path:
    if path.exists():
        return path
    args = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
    if video:
        args += ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={fps}:duration={seconds}"]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={seconds}"]
    if video:
        args += ["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-pix_fmt", "yuv420p",
                 "-g", str(fps * 2), "-keyint_min", str(fps * 2), "-sc_threshold", "0", "-b:v", "600k"]
    if audio and acodec == "mp3":
        args += ["-c:a", "libmp3lame", "-b:a", "64k", "-ac", "2"]
    elif audio:
        args += ["-c:a", "aac", "-b:a", "64k", "-ac", "2"]
    args += ["-f", "flv", str(path)]
    subprocess.run(args, check=True, timeout=120)
    return path


def publish_args(src: Path, url: str, loop: bool = False, realtime: bool = True) -> list[str]:
    args = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error"]
    if realtime:
        args.append("-re")
    if loop:
        args += ["-stream_loop", "-1"]
    return args + ["-i", str(src), "-c", "copy", "-f", "flv", url]


def ffprobe(url_or_path: str, timeout: float = 30, extra: list[str] | None = None) -> dict:
    args = ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json"] + (extra or []) + [url_or_path]
    out = subprocess.run(args, check=True, capture_output=True, timeout=timeout)
    return json.loads(out.stdout)


def streams_by_type(info: dict) -> dict:
    return {s["codec_type"]: s for s in info.get("streams", [])}


def wait_until(pred, timeout: float = 10.0, interval: float = 0.05, what: str = "condition"):
    """Poll ``pred`` cooperatively (gevent) until it is true; fail after ``timeout``."""
    import time

    import gevent

    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        gevent.sleep(interval)


def wait_published(srv, url: str = "/live/s", timeout: float = 10.0):
    def ready():
        s = srv.sources.sources.get(url)
        return s if s is not None and s.publishing and (s.meta.video_sh or s.meta.audio_sh) else None

    return wait_until(ready, timeout, what=f"{url} published")


def flv_tags(data: bytes) -> list[tuple[int, int, bytes]]:
    """(type, timestamp, payload) of every whole tag in an FLV byte string."""
    from srspy.kernel.flv import iter_tags

    assert data[:3] == b"FLV", data[:16]
    hsize = int.from_bytes(data[5:9], "big")
    return list(iter_tags(data, hsize + 4))
