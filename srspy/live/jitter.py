"""Port of SrsRtmpJitter: timestamp correction (``play.time_jitter full|zero|off``).

SRS runs one jitter per consumer. Every consumer of a stream sees the same sequence of
timestamp deltas from the moment it joins, so the ``full`` correction produces the same
corrected deltas for all of them; only the starting point differs. srspy therefore runs
the correction once per source (``SourceJitter``) and gives each consumer a ``base``
offset (the corrected timestamp of the first message it receives), which it subtracts
when it writes a tag. The result equals SRS's output without per-player work on the
publisher's path.
"""

from __future__ import annotations

JITTER_FULL = "full"
JITTER_ZERO = "zero"
JITTER_OFF = "off"

MAX_JITTER_MS = 250
MAX_JITTER_MS_NEG = -250
DEFAULT_FRAME_TIME_MS = 10


class SourceJitter:
    """The ``full`` algorithm's monotonic timeline, shared by all consumers of a source.

    ``correct(ts)`` returns a timestamp that starts at 0, never goes backwards, and
    replaces any jump outside [-250, +250] ms with 10 ms (SRS #425).
    """

    __slots__ = ("last_pkt_time", "last_pkt_correct_time")

    def __init__(self):
        self.last_pkt_time = 0
        self.last_pkt_correct_time = -1

    def correct(self, ts: int) -> int:
        delta = ts - self.last_pkt_time
        if delta < MAX_JITTER_MS_NEG or delta > MAX_JITTER_MS:
            delta = DEFAULT_FRAME_TIME_MS
        t = self.last_pkt_correct_time + delta
        if t < 0:
            t = 0
        self.last_pkt_correct_time = t
        self.last_pkt_time = ts
        return t


def consumer_base(algorithm: str, first_timestamp: int) -> int:
    """The offset a consumer subtracts from every A/V timestamp it sends.

    full: the corrected timestamp of its first message, less one default frame time so
    that, as in SRS, the first frame is not stamped 0 exactly (SRS starts at -1 + delta);
    zero: its first original timestamp; off (and atc): nothing.
    """
    if algorithm == JITTER_FULL:
        return max(0, first_timestamp - DEFAULT_FRAME_TIME_MS + 1)
    if algorithm == JITTER_ZERO:
        return first_timestamp
    return 0
