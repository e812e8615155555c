"""srspy's live HLS in a real browser: the player page (hls.js in headless Chromium) plays
what ffmpeg publishes over RTMP, as TS segments, fMP4 segments and low-latency parts, with
audio and video, audio only and video only. Screenshots are saved under each test's tmp_path."""

from urllib.parse import quote

import pytest
from helpers.browser import browser_fixture  # noqa: F401 - the ``browser`` fixture
from helpers.media import publish_args, wait_published, wait_until
from helpers.net import rtmp_url

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(150)]


FORMS = {"ts": "hls_use_fmp4 off;", "fmp4": "hls_use_fmp4 on;", "ll": "hls_low_latency on; hls_part_duration 0.2;"}


def hls_vhost(root, form: str) -> str:
    return f"hls {{ enabled on; hls_path {root}; hls_fragment 2; hls_window 10; {FORMS[form]} }}"


@pytest.mark.parametrize("form", list(FORMS))
@pytest.mark.parametrize("media", ["av", "audio", "video"])
def test_player_plays_live_hls(make_server, procs, browser, tmp_path, request, form, media):
    src = request.getfixturevalue({"av": "short_flv", "audio": "audio_flv", "video": "video_flv"}[media])
    srv = make_server(vhost_extra=hls_vhost(tmp_path / "html", form))
    procs(publish_args(src, rtmp_url(srv), loop=True))
    wait_published(srv)
    wait_until(lambda: (tmp_path / "html" / "live" / "s.m3u8").exists(), 15, what="the first playlist")
    url = f"http://127.0.0.1:{srv.http_port}/live/s.m3u8"
    browser.get(f"http://127.0.0.1:{srv.http_port}/players/?autostart=1&url={quote(url, safe='')}")

    def advancing(past: float):
        s = browser.js("return window.srspyPlayer || {}")
        st = s.get("stats") or {}
        return s if s.get("state") == "playing" and (st.get("currentTime") or 0) > past else None

    s = browser.wait(lambda: advancing(1.0), 30, what=f"{url} playing")
    assert s["engine"] == "hls.js"
    st = s["stats"]
    if media != "audio":
        assert (st["width"], st["height"]) == (640, 360) and st["videoCodec"].startswith("avc1")
    if media != "video":
        assert (st.get("audioCodec") or "").startswith("mp4a.40"), st
    assert bool(st.get("videoCodec")) == (media != "audio") and bool(st.get("audioCodec")) == (media != "video"), st
    t0 = st["currentTime"]
    s = browser.wait(lambda: (x := advancing(t0 + 2)) and x, 20, what="the time advancing")
    if media != "audio":
        assert s["stats"]["decodedFrames"] > 25
    browser.screenshot(f"hls-{media}-{form}")
    assert browser.errors() == []
