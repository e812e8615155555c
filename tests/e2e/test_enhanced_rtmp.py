"""Enhanced RTMP end to end: a newer ffmpeg (imageio-ffmpeg's, FFmpeg 7+) publishes HEVC,
AV1 and VP9 in the ExHeader layout; srspy's RTMP client, raw HTTP-FLV and WS-FLV players
and (HEVC) HTTP-TS get the published payloads from the first keyframe, new players start
with the sequence header then a keyframe, and the newer ffmpeg decodes what they got. What
ffmpeg does not write (multitrack, ModEx, an unknown FourCC) is built by hand from the
published file's tags and sent through srspy's RTMP client, with Opus audio."""

from __future__ import annotations

import json
import time

import gevent
import gevent.event
import pytest
from gevent import subprocess
from helpers.flvclient import FlvPlayer, RawPlayer, http_get
from helpers.media import make_flv, newer_ffmpeg, publish_args, wait_published, wait_until
from helpers.net import rtmp_url
from helpers.relay import assert_follows, assert_same_from_keyframe, from_first_keyframe, is_keyframe, is_sequence_header
from helpers.wsclient import WsPlayer

from srspy.client import FlvFileWriter, RtmpPullSession, RtmpPushSession, read_flv_file
from srspy.kernel.codec import parse_audio_tag, parse_video_tag

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(150)]

API = "http_api { enabled on; listen 0; }"
REMUX = "http_remux { enabled on; mount [vhost]/[app]/[stream].flv [vhost]/[app]/[stream].ts; }"
# name: (video encoder, audio encoder, the API's video codec, the API's audio codec)
CODECS = {
    "hevc": ("hevc", "aac", "H265", "AAC"),
    "av1": ("av1", "opus", "AV1", "Opus"),
    "vp9": ("vp9", "aac", "VP9", "AAC"),
}
REORDER = 5  # pictures at the end of a cut HEVC stream that may miss their B-frames (x265 ultrafast: 3 + 1)
FRAMES = 150  # audio/video frames compared from the first keyframe (about 3 s)


@pytest.fixture(scope="session")
def enhanced_flv(media_dir):
    """{name: (path, tags)}: 4 s, 320x240 25 fps, 2 s GOP, written by the newer ffmpeg
    (ExHeader FLV), and the tags that ffmpeg publishes of it: the same file copied by the
    same muxer (which writes VP9's vpcC anew from the stream's parameters)."""
    ff = newer_ffmpeg()
    out = {}
    for name, (v, a, _, _) in CODECS.items():
        src = make_flv(media_dir / f"enhanced-{name}.flv", 4, size="320x240", vcodec=v, acodec=a, ffmpeg=ff)
        ref = media_dir / f"enhanced-{name}-copy.flv"
        if not ref.exists():
            subprocess.run([ff, "-nostdin", "-v", "error", "-y", "-i", str(src), "-c", "copy", "-f", "flv", str(ref)],
                           check=True, capture_output=True, timeout=60)
        out[name] = (src, list(read_flv_file(ref)))
    return out


def api_stream(srv) -> dict | None:
    status, _, body = http_get(srv.api_port, "/api/v1/streams/")
    assert status == 200, body
    streams = json.loads(body)["streams"]
    return streams[0] if streams else None


def check_start(name: str, tags, published) -> None:
    """A new player's first video tag is the published sequence header, its first coded
    video frame a keyframe."""
    video = [p for t, _, p in tags if t == 9] if isinstance(tags[0], tuple) else [m.payload for m in tags if m.type == 9]
    assert video, f"{name}: no video"
    assert is_sequence_header(9, video[0]), f"{name}: first video tag {video[0][:12].hex()} is no sequence header"
    pub_sh = next(p for t, _, p in published if t == 9 and is_sequence_header(9, p))
    assert video[0] == pub_sh, f"{name}: the sequence header differs from the published one"
    frames = [p for p in video[1:] if parse_video_tag(p).is_frame]
    assert frames, f"{name}: no coded video frame"
    assert is_keyframe(frames[0]), f"{name}: first coded frame {frames[0][:12].hex()} is no keyframe"


def ffmpeg_decodes(path, what: str) -> None:
    r = subprocess.run([newer_ffmpeg(), "-nostdin", "-v", "error", "-i", str(path), "-f", "null", "-"],
                       capture_output=True, timeout=90)
    assert r.returncode == 0 and not r.stderr.strip(), f"{what}: ffmpeg decode: {r.stderr.decode(errors='replace')[-1500:]}"


def write_flv(path, items) -> None:
    w = FlvFileWriter(str(path))
    for it in items:
        t, ts, p = (it[0], it[1], it[2]) if isinstance(it, tuple) else (it.type, it.timestamp, it.payload)
        w.write_tag(t, ts, p)
    w.close()


def rtmp_player(srv, got: list):
    return RtmpPullSession(rtmp_url(srv), got.append, read_timeout=10, start_timeout=10).start()


def http_players(srv) -> tuple[FlvPlayer, WsPlayer]:
    h = FlvPlayer(srv.http_port, "/live/s.flv")
    assert h.read_head() == 200, h.raw_head
    w = WsPlayer(srv.http_port, "/live/s.flv")
    assert w.read_head() == 101, w.raw_head
    return h, w


def pump_tags(p: FlvPlayer, n: int = FRAMES, timeout: float = 20) -> None:
    p.pump(timeout, until=lambda q: len(from_first_keyframe(q.tags)) >= n)


@pytest.mark.parametrize("name", list(CODECS))
def test_ffmpeg_publishes_enhanced_rtmp(name, make_server, procs, enhanced_flv, tmp_path):
    src, published = enhanced_flv[name]
    first_video = next(p for t, _, p in published if t == 9)
    assert first_video[0] & 0x80, f"{name}: the newer ffmpeg did not write the ExHeader layout"
    srv = make_server(extra=API, remux=REMUX if name == "hevc" else "http_remux { enabled on; mount [vhost]/[app]/[stream].flv; }")
    procs(publish_args(src, rtmp_url(srv), loop=True, ffmpeg=newer_ffmpeg()))
    wait_published(srv)
    got: list = []
    pull = rtmp_player(srv, got)
    h, w = http_players(srv)
    try:
        pump_tags(h)
        pump_tags(w)
        wait_until(lambda: len(from_first_keyframe(got)) >= FRAMES, 20, what=f"{name}: RTMP frames")
        for what, tags in (("rtmp", list(got)), ("http-flv", h.tags), ("ws-flv", w.tags)):
            check_start(f"{name} {what}", tags, published)
            assert_same_from_keyframe(published, tags, min_tags=FRAMES - 10)
            path = tmp_path / f"{what}.flv"
            write_flv(path, tags)
            ffmpeg_decodes(path, f"{name} over {what}")
        _, _, vname, aname = CODECS[name]
        s = wait_until(lambda: api_stream(srv), 5, what="the stream in the API")
        assert s["video"]["codec"] == vname and s["audio"]["codec"] == aname, (s["video"], s["audio"])
        if name != "vp9":  # VP9's vpcC carries no frame size
            assert s["video"]["width"] == 320 and s["video"]["height"] == 240, s["video"]
        if name == "hevc":
            check_hevc_ts(srv, src, tmp_path)
    finally:
        pull.close()
        h.close()
        w.close()


def check_hevc_ts(srv, src, tmp_path) -> None:
    """HTTP-TS of the HEVC stream: stream type 0x24 in the PMT, a keyframe first, decodes to
    the published pictures."""
    p = RawPlayer(srv.http_port, "/live/s.ts")
    assert p.read_head() == 200, p.raw_head
    p.pump(20, until=lambda q: len(q.body) >= 800 * 188)
    p.close()
    data = bytes(p.body[: len(p.body) // 188 * 188])
    assert data[0] == 0x47 and data[188] == 0x47
    pmt = data[188:376]  # after the PAT; its ES loop starts at 17: stream type, PID, info length
    assert (pmt[1] & 0x1F) << 8 | pmt[2] == 0x1001 and sorted((pmt[17], pmt[22])) == [0x0F, 0x24], pmt[:40].hex()
    path = tmp_path / "hevc.ts"
    path.write_bytes(data)
    out = subprocess.run(["ffprobe", "-v", "error", "-of", "json", "-show_streams", "-show_packets", "-select_streams", "v",
                          "-read_intervals", "%+#1", str(path)], capture_output=True, timeout=60, check=True)
    info = json.loads(out.stdout)
    assert info["streams"][0]["codec_name"] == "hevc", info["streams"]
    assert info["packets"][0]["flags"].startswith("K"), info["packets"][0]
    ffmpeg_decodes(path, "hevc over http-ts")
    # the pictures are the published ones, in order, from that keyframe; the TS ends
    # mid-stream, where pictures reordered around the cut B-frames are left out
    got = frame_md5s(path)[:-REORDER]
    assert len(got) >= 25, f"only {len(got)} HEVC pictures in the TS"
    assert_follows(frame_md5s(src), got, "hevc over http-ts pictures")


def frame_md5s(path) -> list[str]:
    """The md5 of every decoded video picture of ``path`` (the newer ffmpeg's framemd5)."""
    r = subprocess.run([newer_ffmpeg(), "-nostdin", "-v", "error", "-i", str(path), "-map", "0:v", "-f", "framemd5", "-"],
                       capture_output=True, timeout=90, check=True)
    return [line.rsplit(",", 1)[1].strip() for line in r.stdout.decode().splitlines() if line and not line.startswith("#")]


# -- hand-built tags through srspy's RTMP client ----------------------------------------------
MT_MANY_TRACKS = 1
UNKNOWN_KEY = b"\x91zzzz" + bytes(range(32))  # a keyframe of a FourCC nobody knows
UNKNOWN_SH = b"\x90zzzz" + bytes(16)  # and its SequenceStart


def opus_tags(published) -> list[tuple[int, int, bytes]]:
    """Enhanced Opus audio built anew from another file's Opus packets and OpusHead."""
    out = []
    for t, ts, p in published:
        if t != 8:
            continue
        a = parse_audio_tag(p)
        assert a.codec == "Opus", a
        if a.packet_type in (0, 1):  # SequenceStart, CodedFrames (the multichannel config is left out)
            out.append((8, ts, bytes([0x90 | a.packet_type]) + b"Opus" + p[a.offset:a.end]))
    assert out[0][2][:1] == b"\x90" and len(out) > 100
    return out


def modex(p: bytes) -> bytes:
    """An enhanced video/audio tag wrapped in a ModEx TimestampOffsetNano (UI24, 1000 ns)."""
    return bytes([(p[0] & 0xF0) | 7, 3 - 1, 0, 0x03, 0xE8, p[0] & 0x0F]) + p[1:]


def track(track_id: int, body: bytes) -> bytes:
    return bytes([track_id]) + len(body).to_bytes(3, "big") + body


def multitrack(p: bytes) -> bytes:
    """An enhanced single-track video tag as a ManyTracks tag: track 0 and a copy as track 1."""
    body = p[5:]
    return bytes([(p[0] & 0xF0) | 6, (MT_MANY_TRACKS << 4) | (p[0] & 0x0F)]) + p[1:5] + track(0, body) + track(1, body)


def track1_only(frame_type: int, packet_type: int, body: bytes) -> bytes:
    """A OneTrack multitrack tag that carries track 1 only."""
    return bytes([0x80 | frame_type << 4 | 6, packet_type]) + b"hvc1" + bytes([1]) + body


def hand_built(variant: str, enhanced_flv) -> list[tuple[int, int, bytes]]:
    """HEVC video (ExHeader, as ffmpeg publishes it) with hand-built Opus audio, turned into
    ``variant``: plain, modex (every tag ModEx-wrapped), multitrack (tracks 0 and 1, plus
    track-1-only sequence headers and keyframes that must not count), unknown (tags of an
    unknown FourCC mid-stream, a SequenceStart and keyframes among them)."""
    video = [(t, ts, p) for t, ts, p in enhanced_flv["hevc"][1] if t == 9]
    tags = sorted(video + opus_tags(enhanced_flv["av1"][1]), key=lambda x: x[1])
    out = []
    n = 0
    for t, ts, p in tags:
        if variant == "modex":
            out.append((t, ts, modex(p)))
        elif variant == "multitrack" and t == 9:
            out.append((t, ts, multitrack(p)))
            if is_sequence_header(t, p):
                out.append((9, ts, track1_only(1, 0, b"\x01" + bytes(22))))
        else:
            out.append((t, ts, p))
        if t == 9 and parse_video_tag(p).is_frame:
            n += 1
            if n % 10 == 5 and variant == "multitrack":
                out.append((9, ts, track1_only(1, 1, bytes(3) + b"\x00\x00\x00\x02\x26\x01")))
            if n % 10 == 5 and variant == "unknown":
                out.append((9, ts, UNKNOWN_SH if n % 20 == 5 else UNKNOWN_KEY))
    return out


def push_loop(url: str, tags: list, ready) -> None:
    """Publish ``tags`` in real time and loop them (the headers once, as ffmpeg's
    -stream_loop): a greenlet the test kills."""
    first = next(i for i, (t, _, p) in enumerate(tags) if t == 9 and is_keyframe(p))
    head = [x for x in tags[:first] if not (x[0] == 8 and parse_audio_tag(x[2]).packet_type == 1)]
    body = [x for x in tags if x not in head]
    span = tags[-1][1] + 40
    s = RtmpPushSession(url, write_timeout=10, start_timeout=10).start()
    try:
        for t, ts, p in head:
            s.write_flv_tag((t, ts, p))
        start = time.monotonic()
        for loop in range(100):
            for t, ts, p in body:
                at = loop * span + ts
                gevent.sleep(max(0.0, start + at / 1000 - 0.3 - time.monotonic()))
                s.write_flv_tag((t, at, p))
                ready.set()
    finally:
        s.close()


@pytest.mark.parametrize("variant", ["plain", "modex", "multitrack", "unknown"])
def test_hand_built_enhanced_tags(variant, make_server, enhanced_flv, tmp_path):
    tags = hand_built(variant, enhanced_flv)
    srv = make_server(extra=API)
    ready = gevent.event.Event()
    g = gevent.spawn(push_loop, rtmp_url(srv), tags, ready)
    pull = h = None
    try:
        assert ready.wait(10), "the publish did not start"
        wait_published(srv)
        got: list = []
        pull = rtmp_player(srv, got)
        h = FlvPlayer(srv.http_port, "/live/s.flv")
        assert h.read_head() == 200, h.raw_head
        pump_tags(h)
        wait_until(lambda: len(from_first_keyframe(got)) >= FRAMES, 20, what=f"{variant}: RTMP frames")
        assert not g.dead, f"{variant}: the publish ended: {g.exception!r}"
        for what, received in (("rtmp", list(got)), ("http-flv", h.tags)):
            check_start(f"{variant} {what}", received, tags)
            assert_same_from_keyframe(tags, received, min_tags=FRAMES - 10)
            items = [(m.type, m.payload) for m in received] if what == "rtmp" else [(t, p) for t, _, p in received]
            assert any(t == 8 and parse_audio_tag(p).codec == "Opus" and parse_audio_tag(p).packet_type == 1
                       for t, p in items), f"{variant}: no Opus frames"
            if variant == "unknown":
                assert UNKNOWN_KEY in [p for t, p in items], "the unknown FourCC's tags were not passed through"
            if variant in ("plain", "modex"):
                path = tmp_path / f"{what}.flv"
                write_flv(path, received)
                ffmpeg_decodes(path, f"{variant} over {what}")
        s = wait_until(lambda: api_stream(srv), 5, what="the stream in the API")
        assert s["video"]["codec"] == "H265" and s["audio"]["codec"] == "Opus", (s["video"], s["audio"])
        assert s["video"]["width"] == 320 and s["video"]["height"] == 240, s["video"]
        source = srv.sources.sources["/live/s"]
        assert source.meta.video_sh.payload == next(p for t, _, p in tags if t == 9 and is_sequence_header(9, p))
        assert source.publishing and not g.dead
    finally:
        g.kill(block=True, timeout=5)
        if pull is not None:
            pull.close()
        if h is not None:
            h.close()
