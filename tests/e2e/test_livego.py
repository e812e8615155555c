"""livego's control API (srspy/plugins/livego): its walk-through step by step, with HTTP
calls, ffmpeg publishing, ffprobe, srspy's clients and nginx-rtmp as the other server.

Answers are asserted as livego gives them (status line = envelope status, the
exact strings), except the fixes README "livego control API" lists."""

import json
import re
import time

import gevent
import jwt
import pytest
from gevent import subprocess

from helpers.flvclient import FlvPlayer, http_get
from helpers.media import ffprobe, publish_args, streams_by_type, wait_published, wait_until
from helpers.relay import start_nginx_rtmp
from srspy.client.rtmp import RtmpClientError, RtmpPullSession, RtmpPushSession
from srspy.plugins.livego.relays import LIVEGO_PULL, LIVEGO_PUSH

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

KEY = re.compile(r"[0-9A-Za-z]{48}")
USAGE_PULL = "url: /control/pull?&oper=start&app=live&name=123456&url=rtmp://192.168.16.136/live/123456"
PARAMS = "control push parameter error, please check them."


def livego_conf(tmp_path, more: str = "", keys: str | None = None) -> str:
    keys = keys or f"{tmp_path}/objs/livego.keys"
    return f"""
http_api {{ enabled on; listen 0; }}
livego {{ enabled on; listen 0; flv_listen 0; keys_file {keys}; {more} }}
"""


def call(srv, path, headers=None, method="GET", body=b""):
    """(status, data) of one API call; the envelope and its headers checked on the way."""
    status, h, raw = http_get(srv.livego.port, path, headers=headers, method=method, body=body)
    assert h["content-type"] == "application/json" and int(h["content-length"]) == len(raw), (h, raw)
    assert "access-control-allow-origin" not in h
    obj = json.loads(raw)
    assert list(obj) == ["status", "data"] and obj["status"] == status, raw
    return status, obj["data"]


def rtmp(srv, path):
    return f"rtmp://127.0.0.1:{srv.rtmp_ports[0]}{path}"


def denied(url):
    """An RTMP publish of ``url`` is refused with NetStream.Publish.Denied."""
    with pytest.raises(RtmpClientError) as e:
        RtmpPushSession(url, start_timeout=5).start().dispose()
    return e.value.status_code == "NetStream.Publish.Denied"


def ffmpeg_refused(flv, url):
    """ffmpeg cannot publish ``url``: it exits with an error soon."""
    r = subprocess.run(publish_args(flv, url), capture_output=True, timeout=30)
    return r.returncode != 0


def api_clients(srv):
    status, h, raw = http_get(srv.api_port, "/api/v1/clients/?count=100")
    assert status == 200
    return json.loads(raw)["clients"]


def test_livego_walkthrough(make_server, procs, short_flv, tmp_path):
    srv = make_server(extra=livego_conf(tmp_path))

    # 1. a key for a room: created once, then the same
    status, key = call(srv, "/control/get?room=movie")
    assert status == 200 and KEY.fullmatch(key), key
    assert call(srv, "/control/get?room=movie") == (200, key)
    assert call(srv, "/control/get") == (400, "url: /control/get?room=<ROOM_NAME>")
    status, h, raw = http_get(srv.livego.port, "/control/get")
    assert raw == b'{"status":400,"data":"url: /control/get?room=\\u003cROOM_NAME\\u003e"}'  # Go's escaping
    status, h, raw = http_get(srv.livego.port, "/control/nothing")
    assert (status, raw) == (404, b"404 page not found\n") and h["content-type"].startswith("text/plain")

    # 2. publish with the key: the stream lives under the room
    pub = procs(publish_args(short_flv, rtmp(srv, f"/live/{key}"), loop=True))
    source = wait_published(srv, "/live/movie")
    assert f"/live/{key}" not in srv.sources.sources and source.req.stream == "movie"
    assert srv.stat.clients[source.publisher.cid].req.stream == "movie"  # statistics (and hooks) see the room

    # 3. play the room: RTMP, HTTP-FLV on livego's port and on srspy's own
    assert set(streams_by_type(ffprobe(rtmp(srv, "/live/movie")))) == {"video", "audio"}
    info = streams_by_type(ffprobe(f"http://127.0.0.1:{srv.livego.flv_port}/live/movie.flv"))
    assert info["video"]["codec_name"] == "h264" and info["audio"]["codec_name"] == "aac"
    assert set(streams_by_type(ffprobe(f"http://127.0.0.1:{srv.http_port}/live/movie.flv"))) == {"video", "audio"}
    flv = FlvPlayer(srv.livego.flv_port, "/live/movie.flv")
    assert flv.read_head() == 200 and flv.headers["access-control-allow-origin"] == "*"
    flv.pump(until=lambda p: any(t[0] == 9 for t in p.tags), seconds=10)
    assert flv.flv_flags == 0x05
    status, h, raw = http_get(srv.livego.flv_port, "/live/nobody.flv")
    assert (status, raw) == (404, b"invalid path\n")
    status, h, raw = http_get(srv.livego.flv_port, "/live/movie")
    assert (status, raw) == (400, b"invalid path\n")

    # 4. livestat: the publisher, an RTMP player, non-zero speeds (kbit/s, 5 s windows)
    got = []
    player = RtmpPullSession(rtmp(srv, "/live/movie"), got.append, read_timeout=10).start()

    def stat_ready():
        status, data = call(srv, "/stat/livestat")
        pubs = data["publishers"] or []
        ok = pubs and pubs[0]["video_speed"] > 0 and pubs[0]["audio_speed"] > 0 and data["players"]
        return data if ok else None

    data = wait_until(stat_ready, timeout=20, what="livestat speeds")
    (p,) = data["publishers"]
    assert list(p) == ["key", "url", "stream_id", "video_total_bytes", "video_speed", "audio_total_bytes",
                       "audio_speed"]
    assert p["key"] == "live/movie" and p["url"] == rtmp(srv, "/live/movie") and p["stream_id"] == 1
    assert p["video_total_bytes"] > 50_000 and p["audio_total_bytes"] > 5_000
    # short.flv: ~600 kbit/s of video and 64 kbit/s of audio, published in real time
    assert 150 < p["video_speed"] < 3000 and 20 < p["audio_speed"] < 300, p
    (pl,) = data["players"]
    assert pl["key"] == "live/movie" and pl["url"] == rtmp(srv, "/live/movie") and pl["stream_id"] == 1
    assert 0 < pl["video_total_bytes"] <= p["video_total_bytes"]
    status, one = call(srv, "/stat/livestat?room=live/movie")
    assert status == 200 and one["publishers"][0]["key"] == "live/movie"
    assert call(srv, "/stat/livestat?room=live/nothing") == (404, "room not found or inactive")
    status, h, raw = http_get(srv.livego.flv_port, "/streams")
    streams = json.loads(raw)
    assert status == 200 and streams["publishers"] == [{"key": "live/movie", "id": source.publisher.cid}]
    assert {"key": "live/movie", "id": player.unique_key} not in streams["players"]  # ids are the server's
    assert len(streams["players"]) == 2 and {s["key"] for s in streams["players"]} == {"live/movie"}
    player.dispose()
    flv.close()

    # 5. reset: a new key; the old one no longer publishes
    status, key2 = call(srv, "/control/reset?room=movie")
    assert status == 200 and KEY.fullmatch(key2) and key2 != key
    assert call(srv, "/control/reset") == (400, "url: /control/reset?room=<ROOM_NAME>")
    pub.kill()
    pub.wait(5)
    wait_until(lambda: not srv.sources.sources["/live/movie"].publishing, what="unpublished")
    assert ffmpeg_refused(short_flv, rtmp(srv, f"/live/{key}"))
    assert denied(rtmp(srv, f"/live/{key}"))
    assert denied(rtmp(srv, "/live/movie"))  # a room name is no key (rtmp_noauth off)
    RtmpPushSession(rtmp(srv, f"/live/{key2}"), start_timeout=5).start().dispose()

    # 6. delete: the room and its key are gone
    assert call(srv, "/control/delete?room=movie") == (200, "Ok")
    assert call(srv, "/control/delete?room=movie") == (404, "room not found")
    assert call(srv, "/control/delete") == (400, "url: /control/delete?room=<ROOM_NAME>")
    assert denied(rtmp(srv, f"/live/{key2}"))
    status, key3 = call(srv, "/control/get?room=movie")
    assert status == 200 and key3 not in (key, key2)

    # 7. pull from nginx-rtmp into a room
    nginx = start_nginx_rtmp(procs, tmp_path / "nginx")
    upstream = f"rtmp://127.0.0.1:{nginx}/live/up"
    procs(publish_args(short_flv, upstream, loop=True))
    wait_until(lambda: _nginx_publishing(upstream), timeout=15, what="nginx publishing")
    q = f"app=live&name=pulled&url={upstream}"
    assert call(srv, f"/control/pull?oper=start&{q}") == (200, f"<h1>pull url start {upstream} ok</h1></br>")
    wait_published(srv, "/live/pulled")
    assert set(streams_by_type(ffprobe(rtmp(srv, "/live/pulled")))) == {"video", "audio"}
    (c,) = [c for c in api_clients(srv) if c["type"] == LIVEGO_PULL]
    assert c["url"] == "/live/pulled" and c["name"] == "pulled" and c["recv_bytes"] > 10_000
    assert call(srv, f"/control/pull?oper=stop&{q}") == (200, f"<h1>push url stop {upstream} ok</h1></br>")
    wait_until(lambda: not srv.sources.sources["/live/pulled"].publishing, what="pull stopped")
    assert call(srv, f"/control/pull?oper=stop&{q}") == (
        400, "session key[pull:live/pulled] not exist, please check it again.")
    assert call(srv, "/control/pull?oper=start&app=live&name=x") == (400, PARAMS)
    assert call(srv, "/control/pull?app=live&name=x&url=%zz") == (400, USAGE_PULL)
    status, data = call(srv, "/control/pull?app=live&name=x&url=rtmp://127.0.0.1:1/live/x")
    assert status == 400 and data.startswith("push error=") and "refused" in data

    # 8. push a room to nginx-rtmp
    procs(publish_args(short_flv, rtmp(srv, f"/live/{key3}"), loop=True))
    wait_published(srv, "/live/movie")
    target = f"rtmp://127.0.0.1:{nginx}/live/pushed"
    q = f"app=live&name=movie&url={target}"
    assert call(srv, f"/control/push?oper=start&{q}") == (200, f"<h1>push url start {target} ok</h1></br>")
    info = streams_by_type(ffprobe(target))
    assert info["video"]["codec_name"] == "h264" and info["audio"]["codec_name"] == "aac"
    (c,) = [c for c in api_clients(srv) if c["type"] == LIVEGO_PUSH]
    assert c["url"] == "/live/movie" and c["send_bytes"] > 10_000
    assert call(srv, f"/control/push?oper=stop&{q}") == (200, f"<h1>push url stop {target} ok</h1></br>")
    assert call(srv, f"/control/push?oper=stop&{q}") == (
        200, "<h1>session key[push:live/movie] not exist, please check it again.</h1>")
    assert call(srv, "/control/push?oper=start&app=live") == (200, PARAMS)
    status, data = call(srv, "/control/push?app=live&name=movie&url=rtmp://127.0.0.1:1/live/x")
    assert status == 200 and data.startswith("push error=")
    wait_until(lambda: not [c for c in srv.stat.clients.values() if c.type == LIVEGO_PUSH], what="push gone")


def _nginx_publishing(url) -> bool:
    got = []
    try:
        s = RtmpPullSession(url, got.append, start_timeout=3).start()
    except Exception:  # noqa: BLE001 - not yet
        return False
    gevent.sleep(0.5)
    s.dispose()
    return any(m.type == 9 for m in got)


def test_keys_survive_a_restart(make_server, tmp_path):
    keys = tmp_path / "objs" / "livego.keys"
    srv = make_server(extra=livego_conf(tmp_path))
    _, key = call(srv, "/control/get?room=movie")
    _, other = call(srv, "/control/get?room=other")
    assert json.loads(keys.read_text()) == {"rooms": {"movie": key, "other": other}}
    assert keys.stat().st_mode & 0o777 == 0o600
    with gevent.Timeout(5):
        srv.stop()
    srv2 = make_server(extra=livego_conf(tmp_path))
    assert call(srv2, "/control/get?room=movie") == (200, key)
    RtmpPushSession(rtmp(srv2, f"/live/{key}"), start_timeout=5).start().dispose()
    _, key2 = call(srv2, "/control/reset?room=movie")
    assert json.loads(keys.read_text())["rooms"]["movie"] == key2
    assert [p.name for p in keys.parent.iterdir()] == ["livego.keys"]  # no temporary file left


def test_noauth_and_other_apps(make_server, tmp_path):
    srv = make_server(extra=livego_conf(tmp_path, "rtmp_noauth on;"))
    s = RtmpPushSession(rtmp(srv, "/live/room1"), start_timeout=5).start()  # a room name publishes
    wait_until(lambda: "/live/room1" in srv.sources.sources and srv.sources.sources["/live/room1"].publishing)
    s.dispose()
    status, key = call(srv, "/control/get?room=room1")  # ... and got a key
    assert status == 200 and json.loads((tmp_path / "objs/livego.keys").read_text())["rooms"] == {"room1": key}
    s = RtmpPushSession(rtmp(srv, f"/live/{key}?token=x"), start_timeout=5).start()  # a key still goes to its room
    wait_until(lambda: srv.sources.sources["/live/room1"].publishing and f"/live/{key}" not in srv.sources.sources)
    s.dispose()

    srv2 = make_server(extra=livego_conf(tmp_path, keys=f"{tmp_path}/k2.json", more="apps live;"))
    s = RtmpPushSession(rtmp(srv2, "/other/free"), start_timeout=5).start()  # not a keyed app
    wait_until(lambda: "/other/free" in srv2.sources.sources and srv2.sources.sources["/other/free"].publishing)
    s.dispose()
    assert denied(rtmp(srv2, "/live/free"))


def test_jwt(make_server, tmp_path):
    srv = make_server(extra=livego_conf(tmp_path, 'jwt { secret "s3cret-s3cret-s3cret-s3cret-s3cret-s3cret-s3cret-s3cret-01"; }'))
    secret = "s3cret-s3cret-s3cret-s3cret-s3cret-s3cret-s3cret-s3cret-01"
    good = jwt.encode({"sub": "ops", "exp": int(time.time()) + 60}, secret, algorithm="HS256")
    assert call(srv, "/control/get?room=a") == (403, "Required authorization token not found")
    assert call(srv, "/nothing") == (403, "Required authorization token not found")  # the whole port
    assert call(srv, "/control/get?room=a", {"Authorization": f"Bearer {good}"})[0] == 200
    assert call(srv, f"/control/get?room=a&jwt={good}")[0] == 200
    assert call(srv, f"/control/get?room=a&jwt={good}", {"Authorization": "Basic eDp5"}) == (
        403, "Authorization header format must be Bearer {token}")
    expired = jwt.encode({"exp": int(time.time()) - 10}, secret, algorithm="HS256")
    assert call(srv, f"/control/get?room=a&jwt={expired}") == (403, "Token is expired")
    forged = jwt.encode({"sub": "x"}, "another-secret-another-secret-another-secret-another-secret-01", algorithm="HS256")
    assert call(srv, f"/control/get?room=a&jwt={forged}") == (403, "signature is invalid")
    hs384 = jwt.encode({"sub": "x"}, secret, algorithm="HS384")
    assert call(srv, f"/control/get?room=a&jwt={hs384}") == (
        403, "Expected HS256 signing method but token specified HS384")
    assert call(srv, "/control/get?room=a&jwt=abc") == (403, "token contains an invalid number of segments")
    assert call(srv, "/control/get", method="OPTIONS") == (400, "url: /control/get?room=<ROOM_NAME>")


def test_form_body_and_limits(make_server, tmp_path):
    srv = make_server(extra=livego_conf(tmp_path, "max_rooms 2;"))
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    status, key = call(srv, "/control/get?room=query", form, method="POST", body=b"room=body")
    assert status == 200 and srv.livego.keys.room_of(key) == "body"  # Go: the body's value first
    assert call(srv, "/control/get?room=" + "r" * 257) == (400, "room name longer than 256 bytes")
    assert call(srv, "/control/get?room=second")[0] == 200
    assert call(srv, "/control/get?room=third") == (400, "too many rooms (livego.max_rooms 2)")


def test_api_port_admission_is_the_server_s(make_server, tmp_path):
    """The livego listeners admit connections under max_connections, as srspy's API does."""
    import socket

    (tmp_path / "html").mkdir(exist_ok=True)
    srv = make_server(text=f"""
listen 0; max_connections 1; daemon off; pid {tmp_path}/srspy.pid; srs_log_tank console; srs_log_level warn;
vhost __defaultVhost__ {{ }}
livego {{ enabled on; listen 0; flv_listen 0; keys_file ""; }}
""")
    idle = socket.create_connection(("127.0.0.1", srv.livego.port), timeout=5)
    wait_until(lambda: len(srv.conns) == 1, what="the first connection admitted")
    second = socket.create_connection(("127.0.0.1", srv.livego.flv_port), timeout=5)
    assert second.recv(100) == b""  # closed at once
    wait_until(lambda: srv.rejected == 1, what="the second connection rejected")
    idle.close()
    second.close()
    wait_until(lambda: not srv.conns, what="the first connection gone")
    assert call(srv, "/control/get")[0] == 400
