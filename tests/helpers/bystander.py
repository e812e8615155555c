"""A stream that must not notice an attack or a fault on another one.

``Bystander(port)`` publishes /live/ok with synthetic frames (helpers/rtmpraw.py's
Publisher) and plays it over RTMP, keeping the arrival time of each video message; tests
then assert that video kept arriving (no gap over a second) while they hurt something else.
The ``bystander`` fixture of tests/conftest.py makes them and closes them at the end.
"""

from __future__ import annotations

import time

import gevent

from helpers.rtmpraw import Publisher, RawRtmp
from srspy.kernel.message import VIDEO


class Bystander:
    """A publisher of /live/``stream`` and a player of it, whose video arrival times are kept."""

    def __init__(self, port: int, stream: str = "ok"):
        self.pub = Publisher(port, stream)
        self.player = RawRtmp(port, timeout=10)
        self.player.handshake()
        self.player.play(stream)
        self.arrivals: list[float] = []
        self.g = gevent.spawn(self._read)
        self.wait_fed()

    def _read(self):
        try:
            while True:
                for m in self.player.read():
                    if m.type == VIDEO:
                        self.arrivals.append(time.monotonic())
                del self.player.msgs[:]
        except (OSError, EOFError):
            pass

    def wait_fed(self, n: int = 10, timeout: float = 10.0) -> None:
        start = len(self.arrivals)
        deadline = time.monotonic() + timeout
        while len(self.arrivals) < start + n:
            assert time.monotonic() < deadline, "the bystander player stopped receiving video"
            gevent.sleep(0.02)

    def max_gap_since(self, t0: float) -> float:
        """The longest wait for video since ``t0`` (until the last arrival)."""
        times = [t0] + [t for t in self.arrivals if t >= t0]
        return max(b - a for a, b in zip(times, times[1:])) if len(times) > 1 else float("inf")

    def assert_fed_since(self, t0: float, max_gap: float = 1.0) -> None:
        """Video arrived all along since ``t0`` (no gap over ``max_gap`` seconds), and still arrives."""
        self.wait_fed()
        gap = self.max_gap_since(t0)
        assert gap < max_gap, f"the other stream's player waited {gap:.2f}s for video"

    def close(self):
        self.g.kill()
        self.pub.g.kill()
        self.player.close()
        self.pub.c.close()
