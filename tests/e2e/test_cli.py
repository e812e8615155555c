"""The srspy command: -v, -t on every sample, the embedded default, -e, signals, pid, daemon."""

import os
import signal
import sys
import time
from pathlib import Path

import gevent
import pytest
from gevent import subprocess
from helpers.flvclient import playing
from helpers.media import publish_args, wait_until
from helpers.net import free_port, port_open
from helpers.srsconf import srs_conf, srs_conf_dir, srs_samples

from srspy import __version__
from srspy.cli import main
from srspy.config import load_config

pytestmark = pytest.mark.timeout(90)
SRS_CONF = srs_conf_dir()  # SRS's own samples: the tests marked srs_conf
SRS_SAMPLES = srs_samples(SRS_CONF)
SRSPY_CONF = Path(__file__).resolve().parents[2] / "srspy" / "conf"
SRSPY_SAMPLES = sorted(SRSPY_CONF.glob("*.conf"))


def srspy(*args, env=None, **kw):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.Popen([sys.executable, "-m", "srspy", *args], env=e, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kw)


def test_version():
    out = subprocess.run([sys.executable, "-m", "srspy", "-v"], capture_output=True, timeout=30)
    assert out.returncode == 0 and out.stdout.decode().strip() == __version__


@pytest.fixture
def srs_cwd(tmp_path, monkeypatch):
    (tmp_path / "conf").symlink_to(SRS_CONF, target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@srs_conf
@pytest.mark.parametrize("sample", SRS_SAMPLES, ids=lambda p: p.name)
def test_every_srs_sample_passes_dash_t(sample, srs_cwd, capsys):
    assert main(["-t", "-c", f"conf/{sample.name}"]) == 0
    assert "test is successful" in capsys.readouterr().err


def test_srspy_samples_are_there():
    assert len(SRSPY_SAMPLES) >= 6, SRSPY_CONF


@pytest.mark.parametrize("sample", SRSPY_SAMPLES, ids=lambda p: p.name)
def test_every_srspy_sample_passes_dash_t(sample, capsys):
    assert main(["-t", "-c", str(sample)]) == 0
    assert "test is successful" in capsys.readouterr().err


def test_dash_t_reports_file_line_directive(tmp_path):
    bad = tmp_path / "bad.conf"
    bad.write_text("listen 1935;\nvhost v {\n    play { gop_cahe on; }\n}\n")
    out = subprocess.run([sys.executable, "-m", "srspy", "-t", "-c", str(bad)], capture_output=True, timeout=30)
    assert out.returncode == 1
    assert f'{bad}:3: unknown directive "vhost.v.play.gop_cahe"' in out.stderr.decode()


def _ports_env(tmp_path) -> tuple[dict, dict]:
    ports = {"rtmp": free_port(), "http": free_port(), "api": free_port()}
    env = {"SRS_LISTEN": str(ports["rtmp"]), "SRS_HTTP_SERVER_LISTEN": str(ports["http"]),
           "SRS_HTTP_API_LISTEN": str(ports["api"]), "SRS_PID": str(tmp_path / "srspy.pid"),
           "SRS_DAEMON": "off", "SRS_SRS_LOG_TANK": "console"}
    return ports, env


RUN_ENV = {"SRS_LISTEN": "0", "SRS_HTTP_SERVER_LISTEN": "0", "SRS_HTTP_API_LISTEN": "0", "SRS_EXPORTER_LISTEN": "0"}


def _supported_samples() -> list:
    """The SRS samples srspy loads without a warning: everything they ask for, srspy runs."""
    from loguru import logger

    if SRS_CONF is None or not SRS_CONF.is_dir():
        return [SRS_SAMPLES[0]]  # the placeholder: fails where the folder is missing
    here = os.getcwd()
    out = []
    logger.disable("srspy")
    try:
        os.chdir(SRS_CONF.parent)  # their includes say ./conf/...: a folder holding them as conf/
        for sample in SRS_SAMPLES:
            try:
                cfg = load_config(str(sample), env=RUN_ENV)
            except Exception:  # noqa: BLE001 - the -t test above reports load errors
                continue
            if not cfg.warnings and "include" not in sample.read_text():
                out.append(sample)
    finally:
        os.chdir(here)
        logger.enable("srspy")
    return out


SUPPORTED_SAMPLES = _supported_samples()


@srs_conf
def test_many_srs_samples_are_fully_supported():
    assert len(SUPPORTED_SAMPLES) >= 20, [p.name for p in SUPPORTED_SAMPLES]


@srs_conf
@pytest.mark.parametrize("sample", SUPPORTED_SAMPLES, ids=lambda p: p.name)
def test_srs_samples_with_only_supported_directives_run(sample, srs_cwd):
    """A sample srspy loads without warnings starts every listener it asks for."""
    _assert_sample_runs(f"conf/{sample.name}", srs_cwd)


@pytest.mark.parametrize("sample", SRSPY_SAMPLES, ids=lambda p: p.name)
def test_srspy_samples_run(sample, tmp_path):
    """Every sample srspy ships starts every listener it asks for."""
    _assert_sample_runs(str(sample), tmp_path)


def _assert_sample_runs(name: str, workdir: Path):
    from srspy.server import Server

    cfg = load_config(name, env=dict(RUN_ENV, SRS_PID=str(workdir / "srspy.pid")))
    srv = Server(cfg)
    srv.start()
    try:
        assert srv.rtmp_ports and all(port_open(p) for p in srv.rtmp_ports)
        if cfg.root["http_server"]["enabled"]:
            assert port_open(srv.http_port)
    finally:
        with gevent.Timeout(5):
            srv.stop()


def test_embedded_default_then_sigterm_fast(tmp_path):
    ports, env = _ports_env(tmp_path)
    p = srspy(env=env, cwd=tmp_path)
    try:
        wait_until(lambda: port_open(ports["rtmp"]) and port_open(ports["http"]), 15, what="srspy listening")
        wait_until(lambda: (tmp_path / "srspy.pid").exists(), 5, what="the pid file")
        assert (tmp_path / "srspy.pid").read_text().strip() == str(p.pid)
        t0 = time.monotonic()
        p.send_signal(signal.SIGTERM)
        out, _ = p.communicate(timeout=10)
        assert time.monotonic() - t0 < 2.0
        log = out.decode()
        assert "embedded default config" in log and "srs.conf" in log
        assert not (tmp_path / "srspy.pid").exists()
    finally:
        if p.poll() is None:
            p.kill()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGQUIT])
def test_graceful_quit_ends_players_cleanly(tmp_path, procs, short_flv, sig):
    ports, env = _ports_env(tmp_path)
    p = srspy("-c", str(Path(__file__).resolve().parents[2] / "conf" / "http.flv.live.conf"), env=env, cwd=tmp_path)
    try:
        wait_until(lambda: port_open(ports["rtmp"]) and port_open(ports["http"]), 15, what="srspy listening")
        procs(publish_args(short_flv, f"rtmp://127.0.0.1:{ports['rtmp']}/live/s", loop=True))
        player = wait_until(lambda: playing(ports["http"]), 15, what="a player")
        player.pump(10, until=lambda q: len(q.tags) > 20)
        p.send_signal(sig)
        player.pump(5, until=lambda q: q.ended or q.eof)
        assert player.ended, "the player did not get its final chunk"
        assert p.wait(10) == 0
    finally:
        if p.poll() is None:
            p.kill()


def test_env_only(tmp_path, procs, short_flv):
    ports, env = _ports_env(tmp_path)
    env.update({"SRS_HTTP_SERVER_ENABLED": "on", "SRS_VHOST_HTTP_REMUX_ENABLED": "on"})
    p = srspy("-e", env=env, cwd=tmp_path)
    try:
        wait_until(lambda: port_open(ports["rtmp"]) and port_open(ports["http"]), 15, what="srspy listening")
        procs(publish_args(short_flv, f"rtmp://127.0.0.1:{ports['rtmp']}/live/s", loop=True))
        player = wait_until(lambda: playing(ports["http"]), 15, what="a player")
        player.pump(10, until=lambda q: len(q.tags) > 10)
        assert player.flv_flags == 5
    finally:
        p.kill()
        p.wait(5)


def test_daemon_on_detaches(tmp_path):
    ports, env = _ports_env(tmp_path)
    env["SRS_DAEMON"] = "on"
    env.pop("SRS_SRS_LOG_TANK")
    conf = tmp_path / "d.conf"
    conf.write_text("listen 1935; daemon on; srs_log_tank file; srs_log_file ./srspy.log; vhost __defaultVhost__ { }\n")
    p = srspy("-c", str(conf), env=env, cwd=tmp_path)
    assert p.wait(10) == 0  # the foreground process returns at once
    pid_file = tmp_path / "srspy.pid"
    wait_until(lambda: pid_file.exists() and pid_file.read_text().strip(), 10, what="the daemon's pid file")
    pid = int(pid_file.read_text())
    try:
        assert pid != p.pid
        wait_until(lambda: port_open(ports["rtmp"]), 10, what="the daemon listening")
        assert "started" in (tmp_path / "srspy.log").read_text()
    finally:
        os.kill(pid, signal.SIGTERM)
    wait_until(lambda: not port_open(ports["rtmp"]), 10, what="the daemon gone")
