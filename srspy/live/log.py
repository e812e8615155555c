"""The shared message log of one stream: appended once by the publisher, read by every
consumer through a cursor (docs/architecture.md, the hot path).

A position in the log is a sequence number (``seq``): the n-th message appended since the
source was created. ``start`` is the sequence number of the oldest message still kept,
``end`` the one the next message gets. Beside each message the log keeps its value on the
stream's monotonic timeline (``ts_at``), which merged writes, ``queue_length`` and trimming
are measured in. Consumers only read through this API; the source appends and trims.
"""

from __future__ import annotations

from bisect import bisect_left


class MessageLog:
    __slots__ = ("msgs", "tss", "start", "last_ts")

    def __init__(self):
        self.msgs: list = []
        self.tss: list = []
        self.start = 0  # seq of msgs[0]
        self.last_ts = 0  # timeline value of the newest message

    @property
    def end(self) -> int:
        """The seq the next message gets (one past the newest)."""
        return self.start + len(self.msgs)

    def __len__(self) -> int:
        return len(self.msgs)

    def append(self, msg, t: int) -> None:
        self.msgs.append(msg)
        self.tss.append(t)
        self.last_ts = t

    def read(self, seq: int, n: int) -> list:
        """Up to ``n`` messages from ``seq`` on (a slice: the messages are shared)."""
        i = seq - self.start
        return self.msgs[i : i + n]

    def ts_at(self, seq: int) -> int:
        """The timeline value of the message at ``seq`` (which must be kept)."""
        return self.tss[seq - self.start]

    def behind(self, seq: int, window: int) -> bool:
        """True when ``seq`` was trimmed, or its message is more than ``window`` ms older
        than the newest one: a consumer there fell behind ``queue_length``."""
        i = seq - self.start
        return i < 0 or (i < len(self.tss) and self.tss[i] < self.last_ts - window)

    def seq_at_ts(self, t: int) -> int:
        """The seq of the first kept message at or after timeline value ``t``."""
        return self.start + bisect_left(self.tss, t)

    def trim(self, keep: int) -> None:
        """Drop every message before seq ``keep``."""
        k = keep - self.start
        if k > 0:
            del self.msgs[:k]
            del self.tss[:k]
            self.start = keep
