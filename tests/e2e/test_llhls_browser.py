"""Low-latency HLS in a real browser: hls.js (``lowLatencyMode``) in headless Chromium plays
srspy's low-latency playlist within 2 s of the live edge, through its hls_ctx session (a
redirect to ``?hls_ctx=``), and standard HLS (TS,
``hls_fragment 2``) is measured beside it. One test does both, one after the other: the
figures are timing-sensitive and must not share the machine with each other."""

from urllib.parse import quote

import gevent
import pytest
from helpers.browser import browser_fixture  # noqa: F401 - the ``browser`` fixture
from helpers.media import publish_args, wait_published, wait_until
from helpers.net import rtmp_url

pytestmark = [pytest.mark.e2e, pytest.mark.serial, pytest.mark.timeout(180)]

LL_BOUND_S = 2.0
SETTLE_S = 4  # hls.js seeks to its target latency and speeds up to reach it
MEASURE_S = 6

PAGE = """<!doctype html><meta charset="utf-8"><title>hls.js latency</title>
<video id="v" muted autoplay playsinline width="640" height="360"></video>
<script src="/js/hls.min.js"></script>
<script>
  var q = new URLSearchParams(location.search), v = document.getElementById('v');
  var h = new Hls({lowLatencyMode: q.get('ll') === '1'});
  window.fatal = []; window.stalls = [];
  h.on(Hls.Events.ERROR, function (e, d) { window.stalls.push(d.details + '@' + v.currentTime.toFixed(2)); });
  h.on(Hls.Events.ERROR, function (e, d) { if (d.fatal) window.fatal.push(d.type + ' ' + d.details); });
  h.loadSource(q.get('src'));
  h.attachMedia(v);
  v.play();
  window.sample = function () {
    var d = h.playingDate;
    return {t: v.currentTime, latency: h.latency, age: d ? (Date.now() - d.getTime()) / 1000 : null,
            frames: v.getVideoPlaybackQuality().totalVideoFrames, ll: h.lowLatencyMode,
            target: h.targetLatency, drift: h.drift, sync: h.liveSyncPosition,
            parts: h.levels[0] && h.levels[0].details ? h.levels[0].details.partList && h.levels[0].details.partList.length : -1,
            buffered: Array.from({length: v.buffered.length}, function (_, i) { return [v.buffered.start(i), v.buffered.end(i)]; }), stalls: window.stalls,
            rate: v.playbackRate};
  };
</script>
"""


def measure(browser, srv, low_latency: bool) -> dict:
    """Play live/s with hls.js; after SETTLE_S of playback, sample the latency and the age of
    the playing PROGRAM-DATE-TIME every 0.5 s for MEASURE_S."""
    src = f"http://127.0.0.1:{srv.http_port}/live/s.m3u8"
    browser.get(f"http://127.0.0.1:{srv.http_port}/latency.html?ll={int(low_latency)}&src={quote(src, safe='')}")
    browser.wait(lambda: browser.js("return window.sample && window.sample().t > 0.5"), 30, what=f"{src} playing")
    gevent.sleep(SETTLE_S)  # the player's own catching up is what is measured after it
    samples = []
    for _ in range(int(MEASURE_S / 0.5)):
        samples.append(browser.js("return window.sample()"))
        gevent.sleep(0.5)
    assert browser.js("return window.fatal") == []
    assert samples[-1]["t"] > samples[0]["t"] + MEASURE_S * 0.7, samples  # it plays on
    assert samples[-1]["frames"] > samples[0]["frames"]
    browser.screenshot("ll" if low_latency else "standard")
    lat = [s["latency"] for s in samples]
    ages = [s["age"] for s in samples if s["age"] is not None]
    return {"latency_max": max(lat), "latency_mean": sum(lat) / len(lat),
            "age_max": max(ages) if ages else None, "age_mean": sum(ages) / len(ages) if ages else None,
            "ll": samples[-1]["ll"]}


def test_hlsjs_low_latency_within_2s_and_standard_beside_it(make_server, procs, short_flv, browser, tmp_path):
    (tmp_path / "html" / "latency.html").write_text(PAGE)
    root = tmp_path / "html"
    srv = make_server(vhost_extra=f"hls {{ enabled on; hls_path {root}; hls_fragment 2; hls_window 10; "
                                  "hls_low_latency on; hls_part_duration 0.2; }")
    pub = procs(publish_args(short_flv, rtmp_url(srv), loop=True))
    wait_published(srv)
    wait_until(lambda: (root / "live" / "s.m3u8").exists(), 15, what="the low-latency playlist")
    ll = measure(browser, srv, True)
    print(f"\nLL-HLS (parts 0.2 s): hls.js latency mean {ll['latency_mean']:.2f} s max {ll['latency_max']:.2f} s; "
          f"PROGRAM-DATE-TIME age mean {ll['age_mean']:.2f} s max {ll['age_max']:.2f} s")
    assert ll["ll"] is True
    assert ll["latency_max"] <= LL_BOUND_S, ll
    assert ll["age_max"] is not None and ll["age_max"] <= LL_BOUND_S, ll
    # hls_ctx on (the default): hls.js followed the redirect to its session once and kept
    # the session's URL for every reload since (one viewer, one hls-play client)
    sessions = [c for c in srv.stat.dumps_clients(0, 100) if c["type"] == "hls-play"]
    assert len(sessions) == 1 and sessions[0]["url"] == "/live/s", sessions
    ll_play = srv.hls.streams["/live/s"].ll.sessions.sessions[sessions[0]["id"]]
    assert ll_play.send_bytes > 100_000  # the parts it fetched counted for it

    # standard HLS on a second server (TS, hls_fragment 2), after the first is done
    pub.kill()
    root2 = tmp_path / "html2"
    srv2 = make_server(text=None, vhost_extra=f"hls {{ enabled on; hls_path {root2}; hls_fragment 2; "
                                              "hls_window 10; hls_ctx off; }")
    procs(publish_args(short_flv, rtmp_url(srv2), loop=True))
    wait_published(srv2)
    wait_until(lambda: (root2 / "live" / "s.m3u8").exists(), 15, what="the standard playlist")
    std = measure(browser, srv2, False)
    print(f"standard HLS (hls_fragment 2): hls.js latency mean {std['latency_mean']:.2f} s "
          f"max {std['latency_max']:.2f} s")
    # hls.js counts standard HLS's latency from the end of the last listed segment, which is
    # itself up to a fragment old: the figure is reported, not bounded
    assert std["latency_mean"] > ll["latency_mean"], (std, ll)
