"""Every sample config SRS ships loads in srspy, and so does every sample srspy ships.

SRS's samples are not part of this repository: the tests on them (marked ``srs_conf``) read
the folder ``SRSPY_SRS_CONF_DIR`` names (see tests/helpers/srsconf.py). They are loaded the
way SRS loads them: from a working directory that holds them as ``conf/``, since their
includes say ``include ./conf/include.vhost.conf;``. Two of them are NGINX
configs kept with SRS's samples: srspy loads them, warning once for each NGINX directive.
"""

import re
from pathlib import Path

import pytest
from helpers.srsconf import srs_conf, srs_conf_dir, srs_samples
from loguru import logger

from srspy.config import load_config

SRS_CONF = srs_conf_dir()
SRSPY_CONF = Path(__file__).resolve().parents[2] / "srspy" / "conf"
NGINX_NOTE = "this is for NGINX server, not SRS"
# What srspy may warn about when loading SRS's own samples.
SAMPLE_WARNING = re.compile(
    r'^(\./)?conf/[\w.-]+\.conf:\d+: (directive "[\w.-]+" is not supported by srspy yet, ignored'
    r'|duplicate (directive )?"[\w. -]+" ignored, the one at conf/[\w.-]+\.conf:\d+ is used)$')

# A missing folder must fail the run, not skip it: the placeholder fails to load.
SRS_SAMPLES = srs_samples(SRS_CONF)
SRSPY_SAMPLES = sorted(SRSPY_CONF.glob("*.conf")) or [SRSPY_CONF / "missing-srspy-samples.conf"]


@pytest.fixture(autouse=True)
def quiet():
    """The samples warn a lot; keep the test output readable."""
    logger.disable("srspy")
    yield
    logger.enable("srspy")


@pytest.fixture
def srs_cwd(tmp_path, monkeypatch):
    """A working directory with SRS's samples as ./conf, as SRS runs from its trunk."""
    (tmp_path / "conf").symlink_to(SRS_CONF, target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@srs_conf
def test_srs_samples_are_there():
    assert SRS_CONF is not None and SRS_CONF.is_dir(), f"SRS's sample configs are missing: {SRS_CONF}"
    assert len(list(SRS_CONF.glob("*.conf"))) >= 100


@srs_conf
@pytest.mark.parametrize("sample", SRS_SAMPLES, ids=lambda p: p.name)
def test_srs_sample_loads(sample, srs_cwd):
    name = f"conf/{sample.name}"
    if NGINX_NOTE in sample.read_text():
        return _assert_nginx_sample_ignored(name, sample)
    cfg = load_config(name, env={})
    assert cfg.listens()
    for vhost in cfg.vhost_names():
        assert isinstance(cfg.vhost_get(vhost, "play.mw_latency"), int)
        assert 128 <= cfg.vhost_get(vhost, "chunk_size") <= 65536
    for w in cfg.warnings:
        assert SAMPLE_WARNING.match(w), w


def _assert_nginx_sample_ignored(name, sample):
    """SRS's NGINX samples load: NGINX's directives are warned about, one each, and ignored."""
    cfg = load_config(name, env={})
    assert cfg.warnings == [
        f'{name}:4: directive "worker_processes" is not supported by srspy yet, ignored',
        f'{name}:5: directive "events" is not supported by srspy yet, ignored',
        f'{name}:9: directive "http" is not supported by srspy yet, ignored',
    ]


@srs_conf
def test_srs_full_conf_values(srs_cwd):
    cfg = load_config("conf/full.conf", env={})
    assert cfg.get("http_api.listen") == "8080"  # the first of its three http_api blocks
    assert cfg.get("http_api.auth.username") == "admin"
    assert cfg.get("heartbeat.interval") == 9.3
    assert cfg.get("heartbeat.device_id") == "my-srs-device"
    assert cfg.get("stats.disk") == ["sda", "sdb", "xvda", "xvdb"]
    assert cfg.vhost_get("play.srs.com", "play.gop_cache") is False
    assert cfg.vhost_get("play.srs.com", "play.send_min_interval") == 10.0
    assert cfg.vhost_get("jitter.srs.com", "play.time_jitter") == "full"
    assert cfg.vhost_get("chunksize.srs.com", "chunk_size") == 128
    assert cfg.vhost_get("security.srs.com", "security.rules") == ["allow play all", "allow publish all"]
    assert cfg.vhost_get("cluster.srs.com", "cluster.coworkers") == ["127.0.0.1:9091", "127.0.0.1:9092"]
    assert cfg.vhost_get("hooks.callback.srs.com", "http_hooks.on_stop") == [
        "http://127.0.0.1:8085/api/v1/sessions", "http://localhost:8085/api/v1/sessions"]
    assert "include.srs.com" in cfg.vhost_names()  # from ./conf/include.vhost.conf
    assert 'conf/full.conf:2735: directive "is_full" is not supported by srspy yet, ignored' in cfg.warnings


@srs_conf
def test_srs_compatible_conf_is_transformed(srs_cwd):
    v = load_config("conf/compatible.conf", env={}).vhost("__defaultVhost__")
    assert v["refer"]["enabled"] and v["refer"]["play"] == ["github.com", "github.io"]
    assert (v["publish"]["firstpkt_timeout"], v["publish"]["normal_timeout"], v["publish"]["mr_latency"]) == (20000, 7000, 350)
    assert (v["cluster"]["mode"], v["cluster"]["vhost"]) == ("remote", "same.edge.srs.com")
    assert v["forward"]["destination"] == ["127.0.0.1:1936", "127.0.0.1:1937"]
    assert (v["play"]["gop_cache"], v["play"]["queue_length"], v["play"]["mw_latency"], v["play"]["atc"]) == (False, 10.0, 100, True)


@srs_conf
def test_srs_ipv6_listen(srs_cwd):
    assert load_config("conf/console.ipv46.conf", env={}).listens() == ["1935", "[::]:1935"]


def _env_docs(text):
    """(variable, line of the directive it documents) from full.conf's "Overwrite by env" notes."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        for var in re.findall(r"Overwrite by env (SRS_\w+)(?: or (SRS_\w+))?", line):
            for v in filter(None, var):
                j = next(k for k in range(i + 1, len(lines)) if lines[k].strip() and not lines[k].lstrip().startswith("#"))
                yield v, j + 1


@srs_conf
def test_env_names_documented_by_srs_resolve(srs_cwd):
    """Each "Overwrite by env SRS_X" of SRS's full.conf names the directive below it, or one srspy ignores."""
    from srspy.config.compat import is_unsupported
    from srspy.config.env import NOT_DIRECTIVES, resolve
    from srspy.config.parser import parse_file
    from srspy.config.schema import ANY, schema

    paths = {}

    def walk(d, spec):
        for c in d.children:
            sp = spec + (c.name,)
            paths.setdefault(c.line, sp)
            if c.block:
                walk(c, sp + ((ANY,) if c.name == "vhost" and spec == () else ()))
    walk(parse_file("conf/full.conf", include_dirs=["."]), ())
    checked = 0
    for var, line in _env_docs(Path("conf/full.conf").read_text()):
        if var in NOT_DIRECTIVES:  # SRS_CONFIG_FILE stands for -c, not for a directive
            continue
        spec_path = paths[line]
        if schema().kind(spec_path) is None:
            assert any(is_unsupported(spec_path[:n]) for n in range(1, len(spec_path) + 1)), (var, spec_path)
            assert resolve(var, schema()) is None, var
            continue
        assert resolve(var, schema()) == spec_path, var
        checked += 1
    assert checked > 60


@pytest.mark.parametrize("sample", SRSPY_SAMPLES, ids=lambda p: p.name)
def test_srspy_sample_loads(sample):
    cfg = load_config(str(sample), env={})
    assert cfg.warnings == []
    assert cfg.get("daemon") is False
    assert cfg.get("srs_log_tank") == "console"
    assert cfg.listens() == ["1935"]


def test_srspy_samples_are_there():
    names = {p.name for p in SRSPY_CONF.glob("*.conf")}
    assert {"srs.conf", "rtmp.conf", "http.flv.live.conf", "realtime.flv.conf", "console.conf", "full.conf"} <= names


def test_srspy_realtime_flv_values():
    v = load_config(str(SRSPY_CONF / "realtime.flv.conf"), env={}).vhost("__defaultVhost__")
    assert (v["tcp_nodelay"], v["min_latency"]) == (True, True)
    assert (v["play"]["gop_cache"], v["play"]["queue_length"], v["play"]["mw_latency"]) == (False, 10.0, 100)
    assert v["publish"]["mr"] is False
    assert v["http_remux"]["enabled"] is True


def test_srspy_srs_conf_values():
    cfg = load_config(str(SRSPY_CONF / "srs.conf"), env={})
    assert (cfg.get("http_api.enabled"), cfg.get("http_api.listen")) == (True, "1985")
    assert (cfg.get("http_server.enabled"), cfg.get("http_server.listen")) == (True, "8080")
    assert cfg.vhost_get("__defaultVhost__", "http_remux.mount") == ["[vhost]/[app]/[stream].flv"]
