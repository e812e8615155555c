"""HLS playlists, names, keys and blocking reloads (srspy/hls/playlist.py, crypto.py),
read back with the m3u8 package."""

from __future__ import annotations

import calendar
import time

import m3u8
import pytest

from srspy.hls import crypto
from srspy.pathvars import UnsafeNameError
from srspy.hls.playlist import (BAD_REQUEST, READY, WAIT, HlsError, Part, Playlist, Segment, blocking_reload,
                                check_name, entry_uri, expand_time, fill_duration, segment_name, target_duration)


def test_plain_ts_playlist_text_as_srs():
    pl = Playlist(window=60, td=10)
    pl.add(Segment(3, 10000, "livestream-3.ts", discontinuity=True))
    pl.add(Segment(4, 9960, "livestream-4.ts"))
    assert pl.text() == (
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-MEDIA-SEQUENCE:3\n#EXT-X-TARGETDURATION:10\n"
        "#EXT-X-DISCONTINUITY\n#EXTINF:10.000, no desc\nlivestream-3.ts\n"
        "#EXTINF:9.960, no desc\nlivestream-4.ts\n")


def test_window_media_sequence_discontinuity_sequence_and_constant_target():
    pl = Playlist(window=20, td=target_duration(5, 1.0, gop_ms=6000))
    removed_all = []
    for seq in range(12):
        removed_all += pl.add(Segment(seq, 6000, f"s-{seq}.ts", discontinuity=seq in (1, 4, 5)))
        p = m3u8.loads(pl.text())
        assert p.target_duration == 6  # the GOP (6 s) beats fragment*ratio (5 s); never changes
        assert p.media_sequence == pl.segments[0].seq == (0 if seq < 4 else seq - 3)
        # SRS's window: sum from the newest until it exceeds 20 s -> 4 segments of 6 s
        assert len(p.segments) == min(seq + 1, 4)
        left = [s for s in removed_all if s.discontinuity]
        assert pl.discontinuity_sequence == len(left)
        assert (p.discontinuity_sequence or 0) == len(left)
        assert all(round(s.duration) <= p.target_duration for s in p.segments)
    assert [s.seq for s in removed_all] == list(range(8))


def test_target_duration_rules():
    assert target_duration(10, 1.0) == 10
    assert target_duration(10, 1.5) == 15
    assert target_duration(2.5, 1.0) == 3
    assert target_duration(2, 1.0, gop_ms=4000) == 4
    assert target_duration(2, 1.0, gop_ms=4001) == 5
    assert target_duration(2, 1.0, first_ms=3400) == 3


def test_window_smaller_than_a_segment_keeps_one():
    pl = Playlist(window=1, td=2)
    pl.add(Segment(0, 2000, "a.ts"))
    pl.add(Segment(1, 2000, "b.ts"))
    assert [s.uri for s in m3u8.loads(pl.text()).segments] == ["b.ts"]


def test_fmp4_version_and_map():
    pl = Playlist(td=2, map_uri="livestream-init.mp4")
    pl.add(Segment(0, 2000, "livestream-0.m4s"))
    p = m3u8.loads(pl.text())
    assert p.version == 6 and p.segment_map[0].uri == "livestream-init.mp4"


def test_aes_keys_listed_and_repeated_when_their_segment_leaves():
    pl = Playlist(window=6, td=2)
    keys = {}
    for seq in range(8):
        key = None
        if crypto.key_starts(seq, 3):
            iv = crypto.sequence_iv(seq)
            key = (f"https://k.example/live/s-{seq}.key", iv)
            keys[seq] = key
        pl.add(Segment(seq, 2000, f"s-{seq}.ts", key=key))
        p = m3u8.loads(pl.text())
        first = p.segments[0]
        # the first listed segment always names the key in force
        assert first.key is not None and first.key.method == "AES-128"
        want = keys[max(k for k in keys if k <= pl.segments[0].seq)]
        assert first.key.uri == want[0] and first.key.iv == "0x" + want[1].hex().upper()
    assert "#EXT-X-KEY" in pl.text() and pl.text().count("#EXT-X-KEY") == 2  # seq 4 (repeated) and 6


def test_aes_encrypt_roundtrip_and_openssl():
    from gevent import subprocess  # the stdlib one hangs once gevent reaps children in this process

    key, iv = crypto.new_key()
    data = bytes(range(256)) * 7 + b"tail"
    enc = crypto.encrypt_segment(data, key, iv)
    assert len(enc) % 16 == 0 and len(enc) > len(data)
    assert crypto.decrypt_segment(enc, key, iv) == data
    out = subprocess.run(["openssl", "enc", "-d", "-aes-128-cbc", "-K", key.hex(), "-iv", iv.hex()],
                         input=enc, capture_output=True, check=True, timeout=30)
    assert out.stdout == data
    with pytest.raises(crypto.HlsKeyError, match="16-byte"):
        crypto.encrypt_segment(data, b"short", iv)
    assert crypto.sequence_iv(5) == b"\x00" * 15 + b"\x05"


def test_low_latency_tags():
    pl = Playlist(window=60, td=2, map_uri="init.mp4", part_target=0.2, part_segments=1)
    for seq in range(3):
        parts = [Part(f"s-{seq}.{i}.m4s", 200, i % 5 == 0) for i in range(10)]
        pl.add(Segment(seq, 2000, f"s-{seq}.m4s", parts=parts, date=1700000000 + 2 * seq))
    pl.add_part(Part("s-3.0.m4s", 200, True))
    pl.add_part(Part("s-3.1.m4s", 200, False), preload="s-3.2.m4s")
    text = pl.text()
    p = m3u8.loads(text)
    assert p.server_control.can_block_reload == "YES" and float(p.server_control.part_hold_back) == 0.6
    assert float(p.part_inf.part_target) == 0.2
    assert p.preload_hint.uri == "s-3.2.m4s" and p.preload_hint.hint_type == "PART"
    # parts listed for the last closed segment (part_segments=1) and the open one only
    assert [len(s.parts) for s in p.segments] == [0, 0, 10, 2]  # the open segment: its parts only
    assert [x.uri for x in p.rendition_reports] == []
    assert "s-3.1.m4s" in text and text.index("s-3.0.m4s") > text.index("s-2.m4s")
    assert p.segments[2].parts[0].independent == "YES"
    assert p.segments[0].program_date_time.timestamp() == 1700000000


def test_blocking_reload_decisions():
    pl = Playlist(td=2, part_target=0.2)
    for seq in range(5, 8):
        pl.add(Segment(seq, 2000, f"{seq}.m4s"))
    pl.add_part(Part("8.0.m4s", 200, True))
    pl.add_part(Part("8.1.m4s", 200, False))
    assert blocking_reload(pl, None, None) == READY
    assert blocking_reload(pl, 7, None) == READY
    assert blocking_reload(pl, 8, None) == WAIT
    assert blocking_reload(pl, 9, None) == WAIT
    assert blocking_reload(pl, 10, None) == BAD_REQUEST  # beyond the open segment plus one
    assert blocking_reload(pl, 8, 1) == READY
    assert blocking_reload(pl, 8, 2) == WAIT
    assert blocking_reload(pl, 8, 1 + 15) == WAIT  # advance part limit 3/0.2 = 15
    assert blocking_reload(pl, 8, 1 + 16) == BAD_REQUEST
    assert blocking_reload(pl, 9, 0) == WAIT
    assert blocking_reload(pl, 3, 0) == READY
    with pytest.raises(HlsError, match="without _HLS_msn"):
        blocking_reload(pl, None, 1)
    with pytest.raises(HlsError, match="negative"):
        blocking_reload(pl, -1, None)


def test_names_and_variables():
    now = calendar.timegm((2026, 3, 4, 5, 6, 7)) + 0.089
    assert segment_name("[app]/[stream]-[seq].ts", "v", "live", "s", 12, now) == "live/s-12.ts"
    name = segment_name("[vhost]/[app]/[stream]/[2006][01][02]-[15][04][05]-[999]-[timestamp]-[seq].ts",
                        "__defaultVhost__", "live", "s", 3, now, utc=True)
    assert name == f"__defaultVhost__/live/s/20260304-050607-089-{int(now * 1000)}-3.ts"
    assert segment_name("[stream]-[timestamp].ts", "v", "a", "s", 1, now, floor_index=88) == "s-88.ts"
    assert fill_duration("s-[seq]-[duration].ts".replace("[seq]", "2"), 10023) == "s-2-10023.ts"
    local = expand_time("[15]", now)
    assert local == f"{time.localtime(now).tm_hour:02d}"


@pytest.mark.parametrize("app,stream", [("..", "s"), ("live", "../x"), ("live", "a/b"), ("live", "a\0"),
                                         ("/etc", "s"), ("live", ""), ("live", "a\\b"), ("live", "x" * 300)])
def test_unsafe_names_refused(app, stream):
    with pytest.raises(UnsafeNameError, match="path: "):
        segment_name("[app]/[stream]-[seq].ts", "v", app, stream, 0, 0)


def test_app_with_slash_allowed_as_srs():
    assert check_name("app", "live/sub") == "live/sub"


def test_entry_prefix_rules():
    assert entry_uri("live/s-3.ts", "live/s.m3u8") == "s-3.ts"
    assert entry_uri("live/s-3.ts", "live/s.m3u8", "http://cdn") == "http://cdn/live/s-3.ts"
    assert entry_uri("live/s-3.ts", "live/s.m3u8", "http://cdn/") == "http://cdn/s-3.ts"
    assert entry_uri("s-3.ts", "s.m3u8", "http://cdn") == "http://cdn/s-3.ts"


def test_no_playlist_before_the_first_segment():
    with pytest.raises(HlsError, match="no segment"):
        Playlist().text()
