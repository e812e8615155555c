"""WS-FLV and HTTP-FLV in flv.js, the player many existing pages embed (srspy ships it in
srspy/www/js beside mpegts.js): a page in http_server.dir plays srspy's live stream in
headless Chromium over ws:// and http://."""

from urllib.parse import quote

import pytest
from helpers.browser import browser_fixture  # noqa: F401 - the ``browser`` fixture
from helpers.media import publish_args, wait_published
from helpers.net import rtmp_url

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>flv.js</title><link rel="icon" href="data:,"></head><body>
<video id="v" muted autoplay playsinline width="640" height="360"></video>
<script src="/js/flv.min.js"></script>
<script>
  var url = new URLSearchParams(location.search).get('url');
  var v = document.getElementById('v');
  window.flvState = {errors: [], media: null};
  var p = flvjs.createPlayer({type: 'flv', isLive: true, url: url}, {enableStashBuffer: false});
  p.on(flvjs.Events.ERROR, function (t, d) { window.flvState.errors.push(t + ' ' + d); });
  p.on(flvjs.Events.MEDIA_INFO, function (mi) { window.flvState.media = mi.mimeType; });
  p.attachMediaElement(v); p.load(); p.play();
</script></body></html>
"""


@pytest.mark.parametrize("scheme", ["ws", "http"])
def test_flvjs_plays_live(make_server, procs, short_flv, browser, tmp_path, scheme):
    srv = make_server()
    (tmp_path / "html" / "flvjs.html").write_text(PAGE)
    procs(publish_args(short_flv, rtmp_url(srv), loop=True))
    wait_published(srv)
    url = f"{scheme}://127.0.0.1:{srv.http_port}/live/s.flv"
    browser.get(f"http://127.0.0.1:{srv.http_port}/flvjs.html?url={quote(url, safe='')}")
    state = "return {t: document.getElementById('v').currentTime, " \
            "frames: document.getElementById('v').webkitDecodedFrameCount, s: window.flvState}"
    got = browser.wait(lambda: (x := browser.js(state)) and x["t"] > 2 and x["frames"] > 25 and x, 25,
                       what=f"flv.js playing {url}")
    assert got["s"]["errors"] == [] and got["s"]["media"].startswith("video/x-flv")
    browser.screenshot(f"flvjs-{scheme}")
    assert browser.errors() == []
