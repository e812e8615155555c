"""A player's or an API client's objects go when its connection ends, by reference
counting, not at the cyclic collector's next full pass.

Garbage left in reference cycles lives until Python's rare full collections (a
connection that lived a few seconds is in the oldest generation by then): a server with
players coming and going then carries an ever-changing heap of dead connections, buffers
and tracebacks, which a long soak shows as a creeping RSS (tools/soak.py). The collector is
switched off while clients come and go here, and the garbage it finds afterwards must hold
nothing of theirs.
"""

import gc
import urllib.request

import pytest

from helpers.media import publish_args, wait_published, wait_until
from helpers.net import rtmp_url
from srspy.client.rtmp import RtmpPullSession

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

CONNECTION_TYPES = {"RtmpConn", "RtmpServer", "RtmpProtocol", "HttpConn", "HttpParser", "HttpStreamPlayer",
                    "LiveConsumer", "ClientClosed", "Greenlet"}


def rtmp_play(srv):
    session = RtmpPullSession(rtmp_url(srv), start_timeout=10, read_timeout=10).start()
    for n, _ in enumerate(session, 1):
        if n >= 30:
            break
    session.dispose()


def http_get(port: int, path: str, size: int = -1) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
        return r.read(size)


def test_players_and_api_clients_leave_no_cyclic_garbage(make_server, procs, av_flv):
    srv = make_server(extra="http_api { enabled on; listen 0; }")
    procs(publish_args(av_flv, rtmp_url(srv), loop=True))
    wait_published(srv)
    publisher = set(srv.conns)
    gc.collect()
    gc.disable()
    try:
        for _ in range(4):
            rtmp_play(srv)
            assert http_get(srv.http_port, "/live/s.flv", 50_000)[:3] == b"FLV"
            assert b'"code":0' in http_get(srv.api_port, "/api/v1/clients/").replace(b" ", b"")
        wait_until(lambda: set(srv.conns) == publisher, 10, what="the players' connections closed")
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        kinds = {type(o).__name__ for o in gc.garbage}
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert not kinds & CONNECTION_TYPES, f"left in reference cycles: {sorted(kinds & CONNECTION_TYPES)}"
