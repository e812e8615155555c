"""HTTP-TS, HTTP-AAC and HTTP-MP3 as SRS's http_remux, and WS-TS: ffmpeg publishes over
RTMP; ffprobe, ffmpeg and raw clients play the live ``.ts``, ``.aac`` and ``.mp3``."""

from __future__ import annotations

import json

import gevent
import pytest
from gevent import subprocess
from helpers.flvclient import RawPlayer, grab
from helpers.media import make_flv, publish_args, wait_published
from helpers.net import rtmp_url
from helpers.wsclient import WsPlayer

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

ALL = ("http_remux { enabled on; mount [vhost]/[app]/[stream].flv [vhost]/[app]/[stream].ts "
       "[vhost]/[app]/[stream].aac [vhost]/[app]/[stream].mp3; }")
# SRS's PAT and A+V PMT sections (pointer field, section, CRC), outputs.md-style oracle bytes.
PAT = bytes.fromhex("0000B00D0001C100000001F0012E701905")
PMT_AV = bytes.fromhex("0002B0170001C10000E100F0000FE101F0001BE100F000F2D91563")


def probe(path: str, *extra) -> dict:
    out = subprocess.run(["ffprobe", "-v", "error", "-of", "json", *extra, path], check=True, capture_output=True,
                         timeout=60)
    return json.loads(out.stdout)


def decode_errors(path: str, *extra) -> str:
    """What ffmpeg says at -v debug-level checks about decoding ``path`` (continuity, PES, decode)."""
    out = subprocess.run(["ffmpeg", "-nostdin", "-v", "verbose", *extra, "-i", path, "-f", "null", "-"],
                         capture_output=True, timeout=90)
    assert out.returncode == 0, out.stderr[-2000:]
    bad = [line for line in out.stderr.decode(errors="replace").splitlines()
           if any(k in line.lower() for k in ("continuity", "error", "corrupt", "invalid", "non monoton", "pes packet"))]
    return "\n".join(bad)


def packets_of(data: bytes, pid: int) -> list[bytes]:
    assert len(data) >= 188 and data[0] == 0x47
    return [data[i:i + 188] for i in range(0, len(data) - 187, 188) if ((data[i + 1] & 0x1F) << 8 | data[i + 2]) == pid]


def check_ts(data: bytes, tmp_path, name: str) -> None:
    assert all(data[i] == 0x47 for i in range(0, len(data) - 187, 188)), "TS sync lost"
    # the first packet is a PAT, then the PMT: SRS's sections (the packet's counter aside)
    assert data[1] == 0x40 and data[2] == 0x00 and data[4:4 + len(PAT)] == PAT
    assert data[188 + 1] == 0x50 and data[188 + 2] == 0x01 and data[188 + 4:188 + 4 + len(PMT_AV)] == PMT_AV
    path = tmp_path / name
    path.write_bytes(data[: len(data) // 188 * 188])
    info = probe(str(path), "-show_programs", "-show_streams")
    prog = info["programs"][0]
    assert prog["program_num"] == 1 and prog["pmt_pid"] == 4097
    ids = {s["codec_type"]: (s["codec_name"], s["id"]) for s in prog["streams"]}
    assert ids == {"video": ("h264", "0x100"), "audio": ("aac", "0x101")}
    first = probe(str(path), "-show_packets", "-select_streams", "v", "-read_intervals", "%+#1")["packets"][0]
    assert first["flags"].startswith("K"), first  # the first video packet is a keyframe
    assert decode_errors(str(path)) == ""


def test_http_ts_live(make_server, procs, short_flv, tmp_path):
    srv = make_server(remux=ALL)
    procs(publish_args(short_flv, rtmp_url(srv), loop=True))
    wait_published(srv)
    data, headers = grab(srv.http_port, "/live/s.ts", 1_000_000)
    assert headers["content-type"] == "video/MP2T" and headers["transfer-encoding"] == "chunked"
    check_ts(data, tmp_path, "first.ts")
    # a player that joins mid-GOP: starts at the GOP's keyframe with PAT/PMT, no continuity error
    gevent.sleep(1.1)
    late, _ = grab(srv.http_port, "/live/s.ts", 600_000)
    check_ts(late, tmp_path, "late.ts")
    # two players at once get the same bytes from where the second one starts (one TS)
    a, b = RawPlayer(srv.http_port, "/live/s.ts"), RawPlayer(srv.http_port, "/live/s.ts")
    assert a.read_head() == 200 and b.read_head() == 200
    for q in (a, b):
        q.pump(20, until=lambda q: len(q.body) >= 400_000)
    one, two = bytes(a.body), bytes(b.body)
    probe_at = two[188 * 40: 188 * 41]
    at = one.find(probe_at)
    assert at >= 0 and at % 188 == 0
    n = min(len(one) - at, len(two) - 188 * 40) // 188 * 188
    assert n > 188 * 200 and one[at:at + n] == two[188 * 40:188 * 40 + n]
    a.close()
    b.close()
    # ffmpeg decodes 5 s of the live stream with no error, and a vhost serves .flv beside .ts
    assert decode_errors(f"http://127.0.0.1:{srv.http_port}/live/s.ts", "-t", "5") == ""
    flv = probe(f"http://127.0.0.1:{srv.http_port}/live/s.flv", "-show_streams")
    assert {s["codec_name"] for s in flv["streams"]} == {"h264", "aac"}


def test_ws_ts(make_server, procs, short_flv, tmp_path):
    srv = make_server(remux=ALL)
    procs(publish_args(short_flv, rtmp_url(srv), loop=True))
    wait_published(srv)
    p = WsPlayer(srv.http_port, "/live/s.ts", flv=False)
    assert p.read_head() == 101
    p.pump(20, until=lambda q: len(q.body) >= 600_000)
    assert all(fin == 1 and op == 2 and not masked for fin, op, _, masked in p.frames)
    assert all(n % 188 == 0 for _, _, n, _ in p.frames)
    check_ts(bytes(p.body), tmp_path, "ws.ts")
    p.close()


def test_http_aac_live(make_server, procs, short_flv, tmp_path):
    srv = make_server(remux=ALL)
    procs(publish_args(short_flv, rtmp_url(srv), loop=True))
    wait_published(srv)
    data, headers = grab(srv.http_port, "/live/s.aac", 40_000)
    assert headers["content-type"] == "audio/x-aac"
    assert data[0] == 0xFF and data[1] & 0xF0 == 0xF0  # ADTS sync
    path = tmp_path / "live.aac"
    path.write_bytes(data)
    st = probe(str(path), "-show_streams", "-show_format")
    assert st["format"]["format_name"] == "aac" and st["streams"][0]["codec_name"] == "aac"
    assert st["streams"][0]["sample_rate"] == "44100" and st["streams"][0]["channels"] == 2
    assert decode_errors(f"http://127.0.0.1:{srv.http_port}/live/s.aac", "-t", "3") == ""


def test_aac_fast_cache_for_audio_only(make_server, procs, audio_flv):
    """fast_cache 2: a new .aac player of an audio-only stream gets the last 2 s at once."""
    srv = make_server(remux=ALL.replace("; }", "; fast_cache 2; }"))
    procs(publish_args(audio_flv, rtmp_url(srv), loop=True))
    wait_published(srv)
    gevent.sleep(3)
    p = RawPlayer(srv.http_port, "/live/s.aac")
    assert p.read_head() == 200
    p.pump(0.3)
    frames = 0
    data = bytes(p.body)
    i = 0
    while i + 7 <= len(data) and data[i] == 0xFF:
        frames += 1
        i += ((data[i + 3] & 3) << 11) | (data[i + 4] << 3) | (data[i + 5] >> 5)
    assert frames * 1024 / 44100 >= 1.5, f"{frames} AAC frames in the first 0.3 s ({len(data)} bytes: {data[:16]!r})"
    p.close()


def test_http_mp3_live(make_server, procs, media_dir, tmp_path):
    src = make_flv(media_dir / "mp3.flv", 6, acodec="mp3")
    srv = make_server(remux=ALL)
    procs(publish_args(src, rtmp_url(srv), loop=True))
    wait_published(srv)
    data, headers = grab(srv.http_port, "/live/s.mp3", 30_000)
    assert headers["content-type"] == "audio/mpeg"
    assert data[:3] == b"ID3" and data[10:20] == bytes(10)
    path = tmp_path / "live.mp3"
    path.write_bytes(data)
    st = probe(str(path), "-show_streams", "-show_format")
    assert st["format"]["format_name"] == "mp3" and st["streams"][0]["codec_name"] == "mp3"
    assert decode_errors(f"http://127.0.0.1:{srv.http_port}/live/s.mp3", "-t", "3") == ""
    # the same stream into TS: MP3 on PID 0x102 with stream type 0x03
    ts, _ = grab(srv.http_port, "/live/s.ts", 300_000)
    tsp = tmp_path / "mp3.ts"
    tsp.write_bytes(ts[: len(ts) // 188 * 188])
    ids = {s["codec_type"]: (s["codec_name"], s["id"]) for s in probe(str(tsp), "-show_streams")["streams"]}
    assert ids == {"video": ("h264", "0x100"), "audio": ("mp3", "0x102")}
