"""hls_ctx's playlist rewrite (app/hls_play.py)."""

from srspy.app.hls_play import playlist_path, with_ctx

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
