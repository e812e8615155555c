"""hls_ctx's playlist rewrite and a known session's playlist (app/hls_play.py)."""

import os

from helpers.recording import RecordingWriter

from srspy.app import hls_play
from srspy.app.hls_play import HlsPlaylist, HlsSession, playlist_path, with_ctx
from srspy.http.message import HttpRequest

PLAYLIST = """#EXTM3U
#EXT-X-VERSION:6
#EXT-X-MEDIA-SEQUENCE:3
#EXT-X-TARGETDURATION:2
#EXT-X-MAP:URI="s-init.mp4"
#EXT-X-KEY:METHOD=AES-128,URI="http://k/s-3.key"
#EXTINF:2.000, no desc
s-3.ts
#EXTINF:2.000, no desc
s-4.ts?token=a
#EXTINF:2.000, no desc
https://cdn.example.com/live/s-5.m4s
#EXTINF:2.000, no desc
other.aac
"""


def test_segment_uris_get_the_session_id_and_nothing_else_changes():
    out = with_ctx(PLAYLIST, "abc12345")
    lines = out.splitlines()
    assert lines[7] == "s-3.ts?hls_ctx=abc12345"
    assert lines[9] == "s-4.ts?hls_ctx=abc12345&token=a"
    assert lines[11] == "https://cdn.example.com/live/s-5.m4s?hls_ctx=abc12345"
    assert lines[13] == "other.aac"
    assert [x for i, x in enumerate(lines) if i not in (7, 9, 11)] == [
        x for i, x in enumerate(PLAYLIST.splitlines()) if i not in (7, 9, 11)]


def test_playlist_path():
    assert playlist_path("live/s.m3u8") == "/live/s.m3u8"
    assert playlist_path("/v/live/s.m3u8") == "/v/live/s.m3u8"


LL_PLAYLIST = """#EXTM3U
#EXT-X-VERSION:9
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=0.600
#EXT-X-PART-INF:PART-TARGET=0.200
#EXT-X-MAP:URI="s-init.mp4"
#EXT-X-PROGRAM-DATE-TIME:2026-01-02T03:04:05.678Z
#EXT-X-PART:DURATION=0.200,URI="s.parts/5.0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.200,URI="s.parts/5.1.m4s?x=1"
#EXTINF:0.400, no desc
s-5.m4s
#EXT-X-PART:DURATION=0.200,URI="s.parts/6.0.m4s",INDEPENDENT=YES
#EXT-X-PRELOAD-HINT:TYPE=PART,URI="s.parts/6.1.m4s"
"""


def test_low_latency_part_uris_get_the_session_id_too():
    lines = with_ctx(LL_PLAYLIST, "abc12345").splitlines()
    want = LL_PLAYLIST.splitlines()
    want[6] = '#EXT-X-PART:DURATION=0.200,URI="s.parts/5.0.m4s?hls_ctx=abc12345",INDEPENDENT=YES'
    want[7] = '#EXT-X-PART:DURATION=0.200,URI="s.parts/5.1.m4s?hls_ctx=abc12345&x=1"'
    want[9] = "s-5.m4s?hls_ctx=abc12345"
    want[10] = '#EXT-X-PART:DURATION=0.200,URI="s.parts/6.0.m4s?hls_ctx=abc12345",INDEPENDENT=YES'
    want[11] = '#EXT-X-PRELOAD-HINT:TYPE=PART,URI="s.parts/6.1.m4s?hls_ctx=abc12345"'
    assert lines == want  # the map, the date and the other tags unchanged


def test_a_session_gets_the_file_read_again_only_when_it_changed(tmp_path, monkeypatch):
    reads = []
    real_read = hls_play._read
    monkeypatch.setattr(hls_play, "_read", lambda path: reads.append(path) or real_read(path))
    m3u8 = tmp_path / "s.m3u8"

    def publish(text):  # as the segmenter does: a new file renamed over the old one
        (tmp_path / "s.m3u8.tmp").write_text(text)
        os.replace(tmp_path / "s.m3u8.tmp", m3u8)

    play = HlsPlaylist(None, "/live/s.m3u8", str(m3u8), {"hls_ts_ctx": True, "hls_window": 10})
    play.sessions["abc"] = HlsSession("abc", None)

    def get():
        w = RecordingWriter()
        play.serve_http(w, HttpRequest("GET", "/live/s.m3u8?hls_ctx=abc"))
        return w.status, bytes(w.body).decode()

    assert get()[0] == 404  # no playlist yet
    publish(PLAYLIST)
    first = get()
    assert first == (200, with_ctx(PLAYLIST, "abc")) and get() == first and len(reads) == 1
    publish(PLAYLIST.replace("s-3.ts", "s-6.ts"))
    assert get() == (200, with_ctx(PLAYLIST.replace("s-3.ts", "s-6.ts"), "abc")) and len(reads) == 2
    os.unlink(m3u8)
    assert get()[0] == 404
