"""security (allow/deny by ip), refer and max_connections against real clients.

Every 127.x.y.z address is the loopback on Linux, so a player binding 127.0.0.2 as its
source address is "another ip" for the server.
"""

import socket
import time

import pytest
from helpers.flvclient import FlvPlayer
from helpers.media import publish_args, wait_published, wait_until
from helpers.net import rtmp_url

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]


def flv_status(srv, source_ip="127.0.0.1", path="/live/s.flv", headers=None) -> int:
    """The status of an HTTP-FLV request from ``source_ip``."""
    s = socket.create_connection(("127.0.0.1", srv.http_port), timeout=5, source_address=(source_ip, 0))
    hdrs = {"Host": "127.0.0.1", **(headers or {})}
    s.sendall((f"GET {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items()) + "\r\n").encode())
    data = b""
    while b"\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    s.close()
    return int(data.split()[1]) if data else 0


def rtmp_play_ok(procs, srv) -> bool:
    p = procs(["ffmpeg", "-nostdin", "-loglevel", "error", "-i", rtmp_url(srv), "-t", "1", "-c", "copy",
               "-f", "null", "-"])
    return p.wait(20) == 0


def test_deny_play_by_ip(make_server, procs, short_flv):
    srv = make_server(vhost_extra="security { enabled on; deny play 127.0.0.2; }")
    procs(publish_args(short_flv, rtmp_url(srv), loop=True))
    wait_published(srv)
    assert flv_status(srv, "127.0.0.2") == 403
    assert flv_status(srv, "127.0.0.1") == 200
    assert rtmp_play_ok(procs, srv)


def test_allow_play_by_cidr_refuses_the_others(make_server, procs, short_flv):
    srv = make_server(vhost_extra="security { enabled on; allow publish 127.0.0.1; allow play 127.0.0.0/31; }")
    procs(publish_args(short_flv, rtmp_url(srv), loop=True))
    wait_published(srv)
    assert flv_status(srv, "127.0.0.1") == 200
    assert flv_status(srv, "127.0.0.3") == 403


def test_deny_publish_by_ip(make_server, procs, short_flv):
    srv = make_server(vhost_extra="security { enabled on; deny publish 127.0.0.1; allow play all; }")
    pub = procs(publish_args(short_flv, rtmp_url(srv), loop=True))
    assert pub.wait(20) != 0
    assert not any(s.publishing for s in srv.sources.sources.values())
    assert flv_status(srv) == 404


def test_only_deny_rules_play_everyone_else(make_server, procs, short_flv):
    srv = make_server(vhost_extra="security { enabled on; deny publish 10.0.0.0/8; }")
    procs(publish_args(short_flv, rtmp_url(srv), loop=True))
    wait_published(srv)
    assert flv_status(srv, "127.0.0.5") == 200
    assert rtmp_play_ok(procs, srv)


def test_refer_play(make_server, procs, short_flv):
    srv = make_server(vhost_extra="refer { enabled on; play ossrs.net; }")
    procs(publish_args(short_flv, rtmp_url(srv), loop=True))
    wait_published(srv)
    assert flv_status(srv, headers={"Referer": "http://www.ossrs.net/players/srs.html"}) == 200
    assert flv_status(srv, headers={"Referer": "http://evil.example/"}) == 403
    assert flv_status(srv) == 403


def _closed_at_once(port: int) -> bool:
    s = socket.create_connection(("127.0.0.1", port), timeout=2)
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False
    finally:
        s.close()


def test_max_connections_counts_every_tcp_connection(make_server, procs, short_flv, tmp_path):
    srv = make_server(text=f"""
        listen 0; max_connections 3; daemon off; pid {tmp_path}/srspy.pid; srs_log_tank console; srs_log_level warn;
        http_server {{ enabled on; listen 0; dir {tmp_path}; }}
        vhost __defaultVhost__ {{ http_remux {{ enabled on; }} }}
    """)
    held = [socket.create_connection(("127.0.0.1", srv.rtmp_ports[0])),
            socket.create_connection(("127.0.0.1", srv.http_port))]
    wait_until(lambda: len(srv.conns) == 2, 5, what="two connections")
    player = FlvPlayer(srv.http_port, "/nothing.flv")  # the third, an HTTP one
    wait_until(lambda: len(srv.conns) == 3, 5, what="three connections")
    t0 = time.monotonic()
    assert _closed_at_once(srv.rtmp_ports[0])
    assert _closed_at_once(srv.http_port)
    assert time.monotonic() - t0 < 2
    assert srv.rejected == 2
    assert srv.stat.clients_errs == 2
    for s in held:
        s.close()
    player.close()
    wait_until(lambda: len(srv.conns) == 0, 5, what="the connections closed")
    procs(publish_args(short_flv, rtmp_url(srv), loop=True))
    wait_published(srv)
