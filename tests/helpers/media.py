"""Test media made by ffmpeg, and ffmpeg/ffprobe helpers."""

from __future__ import annotations

import json
from gevent import subprocess
from pathlib import Path


def make_flv(path: Path, seconds: int, video: bool = True, audio: bool = True, size: str = "640x360", fps: int = 25,
             audio_codec: str = "aac") -> Path:
    """An FLV made by ffmpeg: H.264 (2 s GOP) and/or 44.1 kHz stereo audio, AAC or MP3
    (``audio_codec="mp3"``)."""
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
    if audio:
        if audio_codec == "mp3":
            args += ["-c:a", "libmp3lame", "-ar", "44100", "-b:a", "64k", "-ac", "2"]
        else:
            args += ["-c:a", "aac", "-b:a", "64k", "-ac", "2"]
    args += ["-f", "flv", str(path)]
    subprocess.run(args, check=True, timeout=120)
    return path


def newer_ffmpeg() -> str:
    """The FFmpeg shipped by the imageio-ffmpeg wheel (a 7.x+ build): it writes enhanced
    FLV (hvc1, av01, vp09 ExHeader tags, Opus audio), which the system's ffmpeg 5.1 cannot."""
    import imageio_ffmpeg

    # imageio_ffmpeg.get_ffmpeg_exe() checks the binary with the blocking subprocess module,
    # which hangs under the tests' gevent patching: take the shipped binary directly.
    found = sorted((Path(imageio_ffmpeg.__file__).parent / "binaries").glob("ffmpeg-*"))
    assert found, "imageio-ffmpeg ships no ffmpeg binary for this platform"
    return str(found[-1])


ENHANCED_VIDEO_ARGS = {
    "hevc": ["-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error:keyint=25:min-keyint=25:scenecut=0:bframes=2"],
    "av1": ["-c:v", "libaom-av1", "-usage", "realtime", "-cpu-used", "8", "-g", "25"],
    "vp9": ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-g", "25"],
}
ENHANCED_AUDIO_ARGS = {"aac": ["-c:a", "aac", "-b:a", "64k"], "opus": ["-c:a", "libopus", "-b:a", "48k"]}


def make_enhanced_flv(path: Path, seconds: int, video: str = "hevc", audio: str | None = "aac", size: str = "320x240") -> Path:
    """An enhanced-RTMP FLV (ExHeader video tags) made by the newer FFmpeg: 25 fps, 1 s GOP."""
    if path.exists():
        return path
    args = [newer_ffmpeg(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=25:duration={seconds}"]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}"]
    args += ["-pix_fmt", "yuv420p"] + ENHANCED_VIDEO_ARGS[video]
    if audio:
        args += ENHANCED_AUDIO_ARGS[audio] + ["-ac", "2"]
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
