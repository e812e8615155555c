"""Media for the container tests: FLV messages from ffmpeg files, an H.264 stream with
B-frames, and HEVC messages built from libx265's Annex-B output (ffmpeg 5.1 cannot write
HEVC into FLV), packed as Enhanced RTMP video tag bodies."""

from __future__ import annotations

import json
from pathlib import Path

from gevent import subprocess

from srspy.kernel.flv import FlvDecoder
from srspy.kernel.message import AUDIO, VIDEO, MediaMessage
from srspy.kernel.ts import split_annexb


def flv_messages(path: Path) -> list[MediaMessage]:
    return FlvDecoder().feed(Path(path).read_bytes())


def make_bframes_flv(path: Path, seconds: int = 4) -> Path:
    """H.264 High with 2 B-frames (non-zero composition times) and AAC, 25 fps, 1 s GOP."""
    if not path.exists():
        subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
                        "-f", "lavfi", "-i", f"testsrc2=size=320x240:rate=25:duration={seconds}",
                        "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}",
                        "-c:v", "libx264", "-preset", "fast", "-bf", "2", "-g", "25", "-keyint_min", "25",
                        "-sc_threshold", "0", "-pix_fmt", "yuv420p", "-c:a", "aac", "-ac", "1",
                        "-f", "flv", str(path)], check=True, timeout=120)
    return path


def _hvcc(vps: bytes, sps: bytes, pps: bytes) -> bytes:
    rbsp = sps[2:].replace(b"\x00\x00\x03", b"\x00\x00")
    ptl = rbsp[1:13]  # general profile_tier_level: 12 bytes after the NAL header and one byte
    rec = bytes([1]) + ptl
    rec += bytes([0xF0, 0x00, 0xFC, 0xFD, 0xF8, 0xF8, 0x00, 0x00, 0x0F, 3])
    for t, nal in ((32, vps), (33, sps), (34, pps)):
        rec += bytes([0x80 | t]) + (1).to_bytes(2, "big") + len(nal).to_bytes(2, "big") + nal
    return rec


def hevc_messages(workdir: Path, seconds: int = 3, fps: int = 25, gop: int = 25, size: str = "320x240",
                  audio_from: Path | None = None) -> list[MediaMessage]:
    """HEVC video messages (Enhanced RTMP bodies: sequence start with hvcC, then
    CodedFrames with length-prefixed NAL units), timestamps fps-paced from 0. With
    ``audio_from`` (an FLV), its audio messages are merged in by timestamp."""
    raw = workdir / f"hevc-{seconds}-{fps}-{gop}-{size}.h265"
    if not raw.exists():
        subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
                        "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={fps}:duration={seconds}",
                        "-c:v", "libx265", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
                        "-x265-params", f"aud=1:bframes=0:keyint={gop}:min-keyint={gop}:scenecut=0:log-level=error",
                        "-f", "hevc", str(raw)], check=True, timeout=120)
    nalus = split_annexb(raw.read_bytes())
    params: dict[int, bytes] = {}
    frames: list[list[bytes]] = []
    for nal in nalus:
        t = (nal[0] >> 1) & 0x3F
        if t == 35:  # access unit delimiter: a new picture
            frames.append([])
            continue
        if t in (32, 33, 34):
            params.setdefault(t, nal)
            continue
        if t >= 39:  # SEI: not needed by a decoder
            continue
        frames[-1].append(nal)
    msgs = [MediaMessage(VIDEO, 0, 1, bytes([0x90]) + b"hvc1" + _hvcc(params[32], params[33], params[34]))]
    for i, frame in enumerate(f for f in frames if f):
        key = any(16 <= ((n[0] >> 1) & 0x3F) <= 23 for n in frame)
        body = b"".join(len(n).to_bytes(4, "big") + n for n in frame)
        b0 = 0x80 | ((1 if key else 2) << 4) | 1
        msgs.append(MediaMessage(VIDEO, i * 1000 // fps, 1, bytes([b0]) + b"hvc1" + b"\x00\x00\x00" + body))
    if audio_from is not None:
        last = msgs[-1].timestamp
        audio = [m for m in flv_messages(audio_from) if m.type == AUDIO and m.timestamp <= last]
        msgs = sorted(msgs + audio, key=lambda m: (m.timestamp, m.type != AUDIO or m.payload[1] != 0))
    return msgs


def probe_packets(path: Path, stream: str, check: bool = True) -> list[dict]:
    """ffprobe's packets of the first ``stream`` ("v" or "a"): pts_time, dts_time, flags.
    ``check=False`` reads what ffprobe got out of a damaged file before it gave up."""
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", f"{stream}:0", "-show_packets",
                          "-show_entries", "packet=pts_time,dts_time,flags,size", "-of", "json", str(path)],
                         check=check, capture_output=True, timeout=60)
    return json.loads(out.stdout or b"{}").get("packets", [])


def decode_errors(path: Path) -> str:
    """What ffmpeg says when decoding the whole file (empty when clean)."""
    out = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-f", "null", "-"],
                         capture_output=True, timeout=120)
    return out.stderr.decode(errors="replace") + ("" if out.returncode == 0 else f"exit {out.returncode}")


def frame_sizes(path: Path) -> list[str]:
    """``WxH`` of every decoded video frame, in order (ffprobe decodes the whole file)."""
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "frame=width,height",
                          "-of", "json", str(path)], check=True, capture_output=True, timeout=120)
    return [f"{f['width']}x{f['height']}" for f in json.loads(out.stdout).get("frames", [])]
