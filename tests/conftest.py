"""Shared fixtures: in-process servers on port 0, test media made by ffmpeg, clients."""

import os

# Hypothesis runs the plugins other packages register for it when it is first imported;
# trio's (trio comes with selenium) calls ctypes.util.find_library, which starts ldconfig
# with the standard subprocess module, left unpatched below: once the gevent hub has run,
# that Popen never returns (its read of the exec status blocks). A run without unit tests
# imports hypothesis only in its terminal summary, and hung there.
os.environ.setdefault("HYPOTHESIS_NO_PLUGINS", "1")

from gevent import monkey  # noqa: E402

monkey.patch_all(subprocess=False, thread=False, queue=False, select=False)  # xdist workers need the real subprocess module

import shutil  # noqa: E402
from gevent import subprocess  # noqa: E402  (cooperative, unlike the unpatched module)
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent  # noqa: E402
import pytest  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

from helpers.bystander import Bystander  # noqa: E402
from helpers.hookserver import HookServer  # noqa: E402
from helpers.media import make_flv  # noqa: E402
from helpers.srsconf import ENV as SRS_CONF_ENV, srs_conf_dir  # noqa: E402

TESTS = Path(__file__).resolve().parent
# tests/<kind>/... carries the marker <kind>: `-m unit` runs the unit tests only.
KINDS = ("unit", "integration", "e2e", "bench")
SRS_CONF_LEFT_OUT = pytest.StashKey[int]()


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def av_flv(media_dir):
    """20 s, 640x360 25 fps H.264 (2 s GOP) + AAC 44.1 kHz stereo."""
    return make_flv(media_dir / "av.flv", 20, video=True, audio=True)


@pytest.fixture(scope="session")
def short_flv(media_dir):
    """6 s of the same, for tests that loop it."""
    return make_flv(media_dir / "short.flv", 6, video=True, audio=True)


@pytest.fixture(scope="session")
def audio_flv(media_dir):
    return make_flv(media_dir / "audio.flv", 6, video=False, audio=True)


@pytest.fixture(scope="session")
def video_flv(media_dir):
    return make_flv(media_dir / "video.flv", 6, video=True, audio=False)


BASE_CONF = """
listen 0;
max_connections 1000;
daemon off;
pid {tmp}/srspy.pid;
srs_log_tank console;
srs_log_level {level};
http_server {{ enabled on; listen 0; dir {tmp}/html; }}
vhost __defaultVhost__ {{
    {remux}
    {vhost_extra}
}}
{extra}
"""


@pytest.fixture
def make_server(tmp_path):
    """make_server(extra=..., vhost_extra=..., remux=..., text=None) -> a started in-process Server.

    ``extra`` goes at the top level, ``vhost_extra`` and ``remux`` (the http_remux block)
    into ``__defaultVhost__``; ``text`` replaces the whole config."""
    from srspy import log
    from srspy.server import Server

    servers = []
    (tmp_path / "html").mkdir(exist_ok=True)

    def make(extra: str = "", vhost_extra: str = "", text: str | None = None, level: str = "warn",
             remux: str = "http_remux { enabled on; mount [vhost]/[app]/[stream].flv; }"):
        log.setup("console", os.environ.get("SRSPY_TEST_LOG", level))
        conf = text if text is not None else BASE_CONF.format(tmp=tmp_path, extra=extra, vhost_extra=vhost_extra, level=level, remux=remux)
        srv = Server.from_text(conf)
        srv.start()
        servers.append(srv)
        return srv

    yield make
    for srv in servers:
        with gevent.Timeout(5, False):
            srv.stop()


@pytest.fixture
def bystander():
    """bystander(rtmp_port, stream="ok") -> a Bystander (helpers/bystander.py), closed at the end."""
    made = []

    def make(port, stream: str = "ok"):
        made.append(Bystander(port, stream))
        return made[-1]

    yield make
    for b in made:
        b.close()


@pytest.fixture
def hooks():
    """An HTTP hook receiver on a free port (tests/helpers/hookserver.py), closed after the test."""
    hs = HookServer()
    yield hs
    hs.close()


@pytest.fixture
def procs():
    """Subprocesses a test starts; every one is killed at the end, by its own pid."""
    started = []

    def spawn(args, **kw):
        kw.setdefault("stdout", subprocess.DEVNULL)
        kw.setdefault("stderr", subprocess.DEVNULL)
        p = subprocess.Popen(args, **kw)
        started.append(p)
        return p

    yield spawn
    for p in started:
        if p.poll() is None:
            p.kill()
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            pass


def pytest_configure(config):
    for tool in ("ffmpeg", "ffprobe"):
        if shutil.which(tool) is None:
            raise pytest.UsageError(f"{tool} is required by the test suite (bash tools/test-deps.sh installs it)")


@pytest.hookimpl(tryfirst=True)  # before `-m` selects by marker
def pytest_collection_modifyitems(config, items):
    for item in items:
        try:
            kind = item.path.relative_to(TESTS).parts[0]
        except ValueError:
            continue
        if kind in KINDS:
            item.add_marker(kind)
    if srs_conf_dir() is None:
        left = [item for item in items if item.get_closest_marker("srs_conf")]
        if left:
            items[:] = [item for item in items if not item.get_closest_marker("srs_conf")]
            config.hook.pytest_deselected(items=left)
        config.stash[SRS_CONF_LEFT_OUT] = len(left)


def pytest_terminal_summary(terminalreporter, config):
    if srs_conf_dir() is not None:
        return
    n = config.stash.get(SRS_CONF_LEFT_OUT, None)  # None: collected by xdist workers, not here
    if n != 0:
        what = "the tests" if n is None else f"{n} tests"
        terminalreporter.write_line(f"{SRS_CONF_ENV} is not set: {what} on SRS's own sample configs (marker srs_conf) were left out")
