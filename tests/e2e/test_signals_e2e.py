"""Signals on a real srspy process (``python -m srspy -c FILE``) with the API listening:
SIGHUP reloads, SIGUSR1 reopens the log file, SIGQUIT quits gracefully, SIGTERM fast."""

import json
import signal
import socket
import sys
import time

import pytest
from helpers.flvclient import FlvPlayer, http_get, playing
from helpers.media import publish_args, wait_until
from helpers.net import free_port, port_open

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]


class Srspy:
    """A config file and the srspy process running it."""

    def __init__(self, tmp_path, procs, vhost="", tank="console"):
        self.tmp = tmp_path
        self.rtmp, self.http, self.api, self.exporter = free_port(), free_port(), free_port(), free_port()
        self.conf = tmp_path / "srs.conf"
        self.log = tmp_path / "srs.log"
        self.tank = tank
        self.write(vhost)
        self.out = open(tmp_path / "stdout.txt", "wb")
        self.proc = procs([sys.executable, "-m", "srspy", "-c", str(self.conf)], cwd=tmp_path, stdout=self.out,
                          stderr=self.out)
        wait_until(lambda: all(port_open(p) for p in (self.rtmp, self.http, self.api, self.exporter)), 20,
                   what="srspy listening")

    def write(self, vhost: str, remux: str = "on"):
        self.conf.write_text(f"""
            listen {self.rtmp}; daemon off; pid {self.tmp}/srs.pid; pithy_print_ms 1000;
            srs_log_tank {self.tank}; srs_log_file {self.log}; srs_log_level trace;
            http_server {{ enabled on; listen {self.http}; dir {self.tmp}; }}
            http_api {{ enabled on; listen {self.api}; }}
            exporter {{ enabled on; listen {self.exporter}; }}
            vhost __defaultVhost__ {{ http_remux {{ enabled {remux}; mount [vhost]/[app]/[stream].flv; }} {vhost} }}
        """)

    def rtmp_url(self, path="/live/s"):
        return f"rtmp://127.0.0.1:{self.rtmp}{path}"

    def published(self, path="/live/s.flv") -> bool:
        return flv_status(self.http, path) == 200

    def signal(self, sig):
        self.proc.send_signal(sig)

    def output(self) -> str:
        self.out.flush()
        return (self.tmp / "stdout.txt").read_text(errors="replace")


def flv_status(port, path="/live/s.flv") -> int:
    p = FlvPlayer(port, path)
    try:
        return p.read_head()
    finally:
        p.close()


def test_sighup_applies_security_and_http_remux_to_the_next_player(tmp_path, procs, short_flv):
    s = Srspy(tmp_path, procs)
    procs(publish_args(short_flv, s.rtmp_url(), loop=True))
    wait_until(s.published, 20, what="the stream mounted")
    # deny play for new players
    s.write("security { enabled on; deny play all; allow publish all; }")
    s.signal(signal.SIGHUP)
    wait_until(lambda: flv_status(s.http) == 403, 10, what="the reload denying play")
    # http_remux off: the stream being published is unmounted; on again: mounted again
    s.write("", remux="off")
    s.signal(signal.SIGHUP)
    wait_until(lambda: flv_status(s.http) == 404, 10, what="the stream unmounted")
    s.write("")
    s.signal(signal.SIGHUP)
    wait_until(lambda: flv_status(s.http) == 200, 10, what="the stream mounted again")
    # a config that does not load keeps the running one
    s.conf.write_text(s.conf.read_text() + "\nno_such_directive on;\n")
    s.signal(signal.SIGHUP)
    wait_until(lambda: "reload failed" in s.output(), 10, what="the reload error")
    assert s.proc.poll() is None and flv_status(s.http) == 200
    # a changed listen port needs a restart, and says so
    old_rtmp, s.rtmp = s.rtmp, free_port()
    s.write("")
    s.signal(signal.SIGHUP)
    wait_until(lambda: "needs a restart" in s.output(), 10, what="the restart warning")
    assert port_open(old_rtmp) and not port_open(s.rtmp)
    assert json.loads(http_get(s.api, "/api/v1/raw?rpc=raw")[2])["code"] == 0


def test_sigusr1_reopens_a_moved_log_file(tmp_path, procs):
    s = Srspy(tmp_path, procs, tank="file")
    wait_until(lambda: s.log.exists() and s.log.stat().st_size > 0, 10, what="the log file")
    moved = tmp_path / "srs.log.1"
    s.log.rename(moved)
    http_get(s.api, "/api/v1/versions")  # logged into the moved file, still open
    s.signal(signal.SIGUSR1)
    wait_until(lambda: s.log.exists() and "reopened" in s.log.read_text(), 10, what="a new log file")
    size = moved.stat().st_size
    http_get(s.api, "/api/v1/versions")
    wait_until(lambda: "/api/v1/versions" in s.log.read_text(), 5, what="new lines in the new file")
    assert moved.stat().st_size == size
    wait_until(lambda: "stats: streams=" in s.log.read_text(), 5, what="the periodic summary")


def test_sigquit_ends_publisher_and_player_cleanly(tmp_path, procs, short_flv):
    s = Srspy(tmp_path, procs)
    pub = procs(publish_args(short_flv, s.rtmp_url(), loop=True))
    player = wait_until(lambda: playing(s.http), 20, what="a player")
    player.pump(10, until=lambda q: len(q.tags) > 20)
    assert json.loads(http_get(s.api, "/api/v1/streams/")[2])["streams"][0]["clients"] == 2
    s.signal(signal.SIGQUIT)
    player.pump(8, until=lambda q: q.ended or q.eof)
    assert player.ended, "the player did not get its final chunk"
    assert s.proc.wait(15) == 0
    assert pub.wait(15) is not None
    assert not any(port_open(p) for p in (s.rtmp, s.http, s.api, s.exporter))
    assert not (tmp_path / "srs.pid").exists()


def test_sigterm_quits_fast_with_the_api_listening(tmp_path, procs, short_flv):
    s = Srspy(tmp_path, procs)
    procs(publish_args(short_flv, s.rtmp_url(), loop=True))
    wait_until(s.published, 20, what="the stream mounted")
    keep = socket.create_connection(("127.0.0.1", s.api))  # an idle API connection does not hold the quit
    t0 = time.monotonic()
    s.signal(signal.SIGTERM)
    assert s.proc.wait(10) == 0
    assert time.monotonic() - t0 < 5
    keep.close()
