"""Shared fixtures: in-process servers on port 0, test media made by ffmpeg, clients."""

from gevent import monkey

monkey.patch_all(subprocess=False, thread=False, queue=False, select=False)  # xdist workers need the real subprocess module

import os  # noqa: E402

# trio (installed with selenium) registers a Hypothesis plugin; importing it runs a plain
# subprocess (ctypes.util.find_library) that never returns in this gevent-patched process,
# which hung every run at its summary. The tests need no Hypothesis plugin.
os.environ.setdefault("HYPOTHESIS_NO_PLUGINS", "1")
import shutil  # noqa: E402
from gevent import subprocess  # noqa: E402  (cooperative, unlike the unpatched module)
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent  # noqa: E402
import pytest  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

from helpers.media import make_flv  # noqa: E402


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
            raise pytest.UsageError(f"{tool} is required by the test suite (apt-get install -y ffmpeg)")
