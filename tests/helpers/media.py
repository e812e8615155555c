"""Test media made by ffmpeg, and ffmpeg/ffprobe helpers."""

from __future__ import annotations

import json
from gevent import subprocess
from pathlib import Path


# Video encoders by codec (the newer ffmpeg, newer_ffmpeg(), has all of them; the system
# ffmpeg only libx264). {g} is the GOP in frames.
VIDEO_ENCODERS = {
    "h264": "-c:v libx264 -preset ultrafast -tune zerolatency -g {g} -keyint_min {g} -sc_threshold 0 -b:v 600k",
    "hevc": "-c:v libx265 -preset ultrafast -x265-params log-level=error:keyint={g}:min-keyint={g}:scenecut=0:open-gop=0"
            " -b:v 300k",
    "av1": "-c:v libsvtav1 -preset 10 -g {g} -svtav1-params scd=0 -b:v 300k",
    "vp9": "-c:v libvpx-vp9 -deadline realtime -cpu-used 8 -g {g} -keyint_min {g} -b:v 300k",
}
AUDIO_ENCODERS = {"aac": "-c:a aac -b:a 64k -ac 2", "mp3": "-c:a libmp3lame -b:a 64k -ac 2",
                  "opus": "-c:a libopus -b:a 64k -ac 2 -ar 48000"}


def newer_ffmpeg() -> str:
    """The FFmpeg shipped by the imageio-ffmpeg wheel (a 7.x+ build): it writes enhanced
    FLV (hvc1, av01, vp09 ExHeader tags, Opus audio), which the system's ffmpeg 5.1 cannot."""
    import imageio_ffmpeg

    # imageio_ffmpeg.get_ffmpeg_exe() checks the binary with the blocking subprocess module,
    # which hangs under the tests' gevent patching: take the shipped binary directly.
    found = sorted((Path(imageio_ffmpeg.__file__).parent / "binaries").glob("ffmpeg-*"))
    assert found, "imageio-ffmpeg ships no ffmpeg binary for this platform"
    return str(found[-1])


def make_flv(path: Path, seconds: int, video: bool = True, audio: bool = True, size: str = "640x360", fps: int = 25,
             acodec: str = "aac", vcodec: str = "h264", ffmpeg: str = "ffmpeg") -> Path:
    if path.exists():
        return path
    args = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
    if video:
        args += ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={fps}:duration={seconds}"]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={seconds}"]
    if video:
        args += VIDEO_ENCODERS[vcodec].format(g=fps * 2).split() + ["-pix_fmt", "yuv420p"]
    if audio:
        args += AUDIO_ENCODERS[acodec].split()
    args += ["-f", "flv", str(path)]
    subprocess.run(args, check=True, timeout=120, capture_output=True)  # the error is in the exception
    return path


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


def publish_args(src: Path, url: str, loop: bool = False, realtime: bool = True, ffmpeg: str = "ffmpeg") -> list[str]:
    """ffmpeg's command line to publish ``src`` as is to ``url``; ``ffmpeg`` names the binary
    (newer_ffmpeg() for enhanced RTMP)."""
    args = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error"]
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


def concat_flv(path: Path, parts: list[Path], gap_ms: int = 40) -> Path:
    """One FLV of ``parts`` played one after the other, as an encoder that changes its
    settings mid-publish sends them: each part's tags (its sequence headers included; its
    onMetaData only for the first) on one clock, each part ``gap_ms`` after the last tag
    of the one before."""
    from srspy.client.flvfile import FlvFileWriter, read_flv_file

    if path.exists():
        return path
    w = FlvFileWriter(str(path))
    w.write_header(True, True)
    offset = 0
    for i, part in enumerate(parts):
        tags = list(read_flv_file(part))
        for t in tags:
            if t.type == 18 and i:
                continue
            w.write_tag(t.type, t.timestamp + offset, t.payload)
        offset += max(t.timestamp for t in tags) + gap_ms
    w.close()
    return path
