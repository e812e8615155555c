"""srspy's pages in a real browser (headless Chromium): the landing page, the player, the console.

ffmpeg publishes; the browser plays through mpegts.js/hls.js as a user's would. Each test
saves screenshots under its tmp_path and fails on any console error of the pages.
"""

import re
import time
from urllib.parse import quote

import gevent
import pytest
from gevent import subprocess
from helpers.browser import browser_fixture  # noqa: F401 - the ``browser`` fixture
from helpers.media import make_flv, publish_args, wait_published, wait_until
from helpers.net import free_port, rtmp_url

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

AUTH = "auth { enabled on; username admin; password secret; }"

# Every output the player must play: (http_remux block of the default vhost, the URL of live/s
# given the server). A new output adds its line here (WS-FLV: "ws://...:{http}/live/s.flv",
# HTTP-TS: a .ts mount, HLS: an hls block and ".../live/s.m3u8").
FLV_TS = "http_remux { enabled on; mount [vhost]/[app]/[stream].flv [vhost]/[app]/[stream].ts; }"
PLAYER_OUTPUTS = [
    pytest.param("http_remux { enabled on; mount [vhost]/[app]/[stream].flv; }",
                 lambda srv: f"http://127.0.0.1:{srv.http_port}/live/s.flv", id="http-flv"),
    pytest.param(FLV_TS, lambda srv: f"http://127.0.0.1:{srv.http_port}/live/s.ts", id="http-ts"),
    pytest.param(FLV_TS, lambda srv: f"ws://127.0.0.1:{srv.http_port}/live/s.flv", id="ws-flv"),
    pytest.param(FLV_TS, lambda srv: f"ws://127.0.0.1:{srv.http_port}/live/s.ts", id="ws-ts"),
]


def base(srv) -> str:
    return f"http://127.0.0.1:{srv.http_port}/"


def player_state(b) -> dict:
    return b.js("return window.srspyPlayer || {}")


def playing(b, since_session: int = 0, min_time: float = 1.5):
    """The player is playing session > ``since_session`` and its video advanced past ``min_time``."""
    s = player_state(b)
    st = s.get("stats") or {}
    ok = (s.get("state") == "playing" and s.get("sessions", 0) > since_session
          and (st.get("currentTime") or 0) > min_time and (st.get("decodedFrames") or 0) > 10)
    return s if ok else None


def test_landing_page_names_the_configured_ports(make_server, browser):
    api_port = free_port()
    srv = make_server(extra=f"http_api {{ enabled on; listen {api_port}; }}")
    browser.get(base(srv))
    browser.wait(lambda: browser.js("return document.querySelectorAll('#outputs tr').length") >= 3,
                 what="the outputs listed")
    values = browser.js("return Array.from(document.querySelectorAll('input, textarea')).map(e => e.value)")
    r, h = srv.rtmp_ports[0], srv.http_port
    assert f"rtmp://127.0.0.1:{r}/live" in values and "livestream" in values, values
    assert any(v.endswith(f"rtmp://127.0.0.1:{r}/live/livestream") and v.startswith("ffmpeg ") for v in values)
    rows = browser.js("return Array.from(document.querySelectorAll('#outputs tr')).map("
                      "t => [t.dataset.output, t.querySelector('input').value])")
    assert rows == [["RTMP", f"rtmp://127.0.0.1:{r}/live/livestream"],
                    ["HTTP-FLV", f"http://127.0.0.1:{h}/live/livestream.flv"],
                    ["WS-FLV", f"ws://127.0.0.1:{h}/live/livestream.flv"]]
    assert browser.js("return document.getElementById('api-line').textContent") == \
        f"API: http://127.0.0.1:{api_port}/api/v1/"
    assert browser.js("return document.getElementById('noinfo').classList.contains('hidden')")
    browser.screenshot("landing")
    assert browser.errors() == []


@pytest.mark.parametrize("remux, url_of", PLAYER_OUTPUTS)
def test_player_plays_and_reconnects(make_server, procs, short_flv, browser, remux, url_of):
    srv = make_server(remux=remux)
    pub = procs(publish_args(short_flv, rtmp_url(srv), loop=True))
    wait_published(srv)
    url = url_of(srv)
    browser.get(f"{base(srv)}players/?autostart=1&url={quote(url, safe='')}")
    s = browser.wait(lambda: playing(browser), 20, what=f"{url} playing")
    st = s["stats"]
    assert (st["width"], st["height"]) == (640, 360)
    assert st["videoCodec"].startswith("avc1") and st["audioCodec"].startswith("mp4a.40")
    # mpegts.js took the container the URL names (MPEG-TS reported as video/mp2t)
    assert st["mimeType"].startswith("video/mp2t" if url.endswith(".ts") else "video/x-flv"), st["mimeType"]
    t0 = st["currentTime"]
    s = browser.wait(lambda: (x := playing(browser)) and x["stats"]["currentTime"] > t0 + 2 and x, 15,
                     what="the video time advancing")
    st = s["stats"]
    assert st["droppedFrames"] <= st["decodedFrames"] // 5
    assert st["latency"] is not None and 0 <= st["latency"] < 5
    assert st["kbps"] and st["kbps"] > 100 and 20 <= st["fps"] <= 30
    shown = browser.js("return Object.fromEntries(Array.from(document.querySelectorAll('#stats tr'))"
                       ".map(t => [t.cells[0].textContent, t.cells[1].textContent]))")
    assert shown["Resolution"] == "640x360" and shown["Video codec"].startswith("H.264")
    assert shown["Behind live edge"].endswith(" s") and shown["Bitrate"].endswith("kbps")
    share = browser.js("return document.getElementById('share').href")
    assert share == f"{base(srv)}players/?autostart=1&url={quote(url, safe='')}"
    browser.screenshot("player")
    assert browser.errors() == []

    sessions = s["sessions"]
    pub.kill()
    browser.wait(lambda: player_state(browser)["ended"] + player_state(browser)["errors"] >= 1, 15,
                 what="the player noticing the end of the stream")
    assert player_state(browser)["state"] in ("waiting", "connecting")
    procs(publish_args(short_flv, rtmp_url(srv), loop=True))
    wait_published(srv)
    s = browser.wait(lambda: playing(browser, since_session=sessions), 30, what="playing again after republish")
    assert s["reconnects"] >= 1
    browser.screenshot("player-reconnected")


@pytest.mark.parametrize("api, auth", [
    pytest.param("shared", False, id="shared-port"),
    pytest.param("shared", True, id="shared-port-auth"),
    pytest.param("own", True, id="own-port-auth-cors"),
])
def test_console_lists_previews_and_kicks(make_server, procs, short_flv, browser, api, auth):
    listen = "0" if api == "shared" else str(free_port())
    srv = make_server(extra=f"http_api {{ enabled on; listen {listen}; {AUTH if auth else ''} }}")
    assert (srv.api_port == srv.http_port) == (api == "shared")
    browser.get(f"{base(srv)}console/")
    if auth:
        browser.wait(lambda: browser.js("return window.srspyConsole.authRequired"), what="the sign-in form")
        browser.screenshot("console-sign-in")
        assert browser.js("return window.srspyConsole.polls") == 0
        browser.js("document.getElementById('username').value = 'admin';"
                   "document.getElementById('password').value = 'secret';"
                   "document.getElementById('login-button').click()")
    browser.wait(lambda: browser.js("return window.srspyConsole.polls") >= 1, what="the console reading the API")

    procs(publish_args(short_flv, rtmp_url(srv), loop=True))
    t0 = time.monotonic()

    def listed():
        return browser.js("""
            const s = window.srspyConsole.streams.find(s => s.url === '/live/s' && s.publish.active);
            const row = document.querySelector('tr[data-stream="/live/s"]');
            return s && row && s.kbps.recv_30s > 0 && s.video
                ? [row.innerText, row.querySelector('td.kbps').textContent] : null""")

    row_text, kbps = browser.wait(listed, 10, what="the stream listed with its kbps")
    assert time.monotonic() - t0 < 5, f"listed after {time.monotonic() - t0:.1f} s"
    assert "live/s" in row_text and "live" in row_text and "640x360" in row_text and "AAC" in row_text
    assert "127.0.0.1" in row_text
    assert int(re.match(r"(\d+) kbps / ", kbps).group(1)) > 100, kbps

    browser.js("document.querySelector('tr[data-stream=\"/live/s\"] button.preview').click()")
    frame = browser.driver.find_element("id", "preview-frame")
    browser.driver.switch_to.frame(frame)
    browser.wait(lambda: playing(browser), 20, what="the preview playing")
    browser.driver.switch_to.default_content()
    cid = browser.wait(lambda: browser.js(
        "const c = window.srspyConsole.clients.find(c => c.type === 'flv-play'); "
        "return c && document.querySelector('tr[data-client=\"' + c.id + '\"]') ? c.id : null"),
        10, what="the preview's client listed")
    browser.screenshot("console")
    assert browser.errors() == []

    browser.js(f"document.querySelector('tr[data-client=\"{cid}\"] button.kick').click()")
    wait_until(lambda: cid not in srv.stat.clients, 5, what="the kicked client gone from the server")
    browser.wait(lambda: cid in browser.js("return window.srspyConsole.kicked"), what="the kick confirmed")
    browser.driver.switch_to.frame(browser.driver.find_element("id", "preview-frame"))
    browser.wait(lambda: player_state(browser)["ended"] >= 1, 10, what="the preview's stream ended by the kick")
    browser.driver.switch_to.default_content()
    browser.wait(lambda: not browser.js(f"return !!document.querySelector('tr[data-client=\"{cid}\"]')"),
                 what="the kicked client gone from the table")
    browser.screenshot("console-kicked")
    # the kicked player's connection was closed mid-body: the browser logs that, and only that
    assert all("/live/s.flv" in e and "ERR_INCOMPLETE_CHUNKED_ENCODING" in e for e in browser.errors())


def test_player_says_plainly_when_the_browser_cannot_decode_hevc(make_server, browser, tmp_path):
    """An HEVC stream (a static MPEG-TS file from http_server.dir): played where the browser
    decodes HEVC, otherwise a plain message naming the codec, and no reconnection loop."""
    srv = make_server()
    subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "testsrc2=size=320x240:rate=25:duration=3", "-c:v", "libx265", "-preset", "ultrafast",
                    "-x265-params", "log-level=error", "-pix_fmt", "yuv420p", "-f", "mpegts",
                    str(tmp_path / "html" / "hevc.ts")], check=True, timeout=60)
    browser.get(f"{base(srv)}players/?autostart=1&url={quote(base(srv) + 'hevc.ts', safe='')}")
    decodes = browser.js("return MediaSource.isTypeSupported('video/mp4; codecs=\"hvc1.1.6.L63.90\"')")
    s = browser.wait(lambda: (x := player_state(browser)) and (x["unsupported"] or x["state"] == "playing") and x,
                     20, what="HEVC played or refused")
    browser.screenshot("player-hevc")
    if decodes:
        assert s["state"] == "playing" and s["stats"]["videoCodec"].startswith(("hvc1", "hev1"))
        return
    assert s["state"] == "unsupported" and "cannot decode HEVC (H.265)" in s["unsupported"]
    notice = browser.js("return document.getElementById('notice')")
    assert notice.is_displayed() and "cannot decode HEVC (H.265)" in notice.text and "ffplay" in notice.text
    gevent.sleep(2)
    assert player_state(browser)["reconnects"] == 0 and player_state(browser)["state"] == "unsupported"
    assert browser.errors() == []


AV_IN = ["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25:duration=8",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100:duration=8"]
H264_AAC = ["-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p", "-c:a", "aac"]
TONE = ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100:duration=8"]
# (file served from http_server.dir, ffmpeg output arguments, what the player shows)
STATIC_FILES = [
    pytest.param("s.ts", AV_IN + H264_AAC + ["-f", "mpegts"], "video", id="ts-mpegts.js"),
    pytest.param("s.m3u8", AV_IN + H264_AAC + ["-f", "hls", "-hls_time", "2", "-hls_playlist_type", "vod"], "video",
                 id="m3u8-hls.js"),
    pytest.param("s.aac", TONE + ["-c:a", "aac", "-f", "adts"], "audio", id="aac-audio"),
    pytest.param("s.mp3", TONE + ["-c:a", "libmp3lame", "-f", "mp3"], "audio", id="mp3-audio"),
]


@pytest.mark.parametrize("name, args, kind", STATIC_FILES)
def test_player_dispatches_each_container_by_url(make_server, browser, tmp_path, name, args, kind):
    """The player's engines, each on a file the HTTP server serves: mpegts.js for .ts, hls.js for
    .m3u8, the browser's <audio> for .aac and .mp3 (the live outputs of those forms play alike)."""
    srv = make_server()
    subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args,
                    str(tmp_path / "html" / name)], check=True, timeout=60)
    url = base(srv) + name
    browser.get(f"{base(srv)}players/?autostart=1&url={quote(url, safe='')}")

    def advancing():
        s = player_state(browser)
        return s if s.get("state") == "playing" and (s["stats"].get("currentTime") or 0) > 1.5 else None

    s = browser.wait(advancing, 20, what=f"{name} playing")
    assert s["engine"] == {"s.ts": "mpegts", "s.m3u8": "hls.js"}.get(name, "audio")
    visible = browser.js("return [!document.getElementById('video').classList.contains('hidden'),"
                         " !document.getElementById('audio').classList.contains('hidden')]")
    assert visible == ([True, False] if kind == "video" else [False, True])
    if kind == "video":
        assert (s["stats"]["width"], s["stats"]["height"]) == (640, 360) and s["stats"]["decodedFrames"] > 10
        assert s["stats"]["videoCodec"].startswith("avc1")
    browser.screenshot("player-" + name.replace(".", "-"))
    assert browser.errors() == []


@pytest.mark.parametrize("ext, acodec", [("aac", "aac"), ("mp3", "mp3")])
def test_player_plays_live_audio_outputs(make_server, procs, media_dir, browser, ext, acodec):
    """srspy's live .aac and .mp3 mounts in the player's <audio>: the time advances."""
    src = make_flv(media_dir / f"live-{acodec}.flv", 6, acodec=acodec)
    srv = make_server(remux=f"http_remux {{ enabled on; mount [vhost]/[app]/[stream].{ext}; }}")
    procs(publish_args(src, rtmp_url(srv), loop=True))
    wait_published(srv)
    url = f"http://127.0.0.1:{srv.http_port}/live/s.{ext}"
    browser.get(f"{base(srv)}players/?autostart=1&url={quote(url, safe='')}")

    def advancing():
        s = player_state(browser)
        return s if s.get("state") == "playing" and (s["stats"].get("currentTime") or 0) > 2 else None

    s = browser.wait(advancing, 25, what=f"live .{ext} playing")
    assert s["engine"] == "audio"
    browser.screenshot(f"player-live-{ext}")
    assert browser.errors() == []
