"""Port of SrsLiveConsumer + SrsMessageQueue, over the source's shared message log.

SRS copies every message into a queue per consumer. srspy keeps ONE log per source
(``LiveSource.log``, log.py) and gives each consumer a cursor into it: the publisher appends a
message once, whatever the number of players, and a player's dump is a list slice. What
SRS's per-consumer queue gives is kept: a queue bounded by duration (``queue_length``),
which on overflow drops what is queued, keeps the sequence headers and restarts at a
keyframe; merged-write waits (``mw_msgs`` and ``mw_latency``) woken by an event, never
by polling; pause; and per-consumer timestamps (see jitter.py).
"""

from __future__ import annotations

from collections import deque

import gevent
from gevent import Timeout
from gevent.event import Event
from gevent.hub import Waiter

from ..kernel.codec import F_KEYFRAME, F_SEQUENCE_HEADER
from ..kernel.message import AUDIO, VIDEO
from .jitter import consumer_base

# SRS_PERF_MW_MSGS: the most messages one merged write takes.
MAX_DUMP = 128
# A player's first write is kept small (headers, the keyframe and a few frames) so that
# its first picture goes out at once; the rest of the GOP follows in catch-up turns.
FIRST_DUMP = 16
# Then the rest of the GOP, in writes of this many messages, one per catch-up turn.
CATCH_UP_DUMP = 64
FRESH_YIELD_S = 0.05
_NO_BASE = 1 << 40  # while a consumer has no timestamp base, what it sends is stamped 0


class _CatchUp:
    """Players catching up after they joined take turns: one write (CATCH_UP_DUMP
    messages) per idle iteration of the loop, so that other connections' I/O (new
    players' handshakes and first pictures) goes first. A turn waits at most
    FRESH_YIELD_S, so catching up never stops: 64 messages per 50 ms is several times
    the rate of any live stream."""

    def __init__(self):
        self.queue: deque = deque()
        self.watcher = None

    def wait(self, timeout: float):
        if self.watcher is None:
            self.watcher = gevent.get_hub().loop.idle()
        waiter = Waiter()
        self.queue.append(waiter)
        if not self.watcher.active:
            self.watcher.start(self._turn)
        with Timeout(timeout, False):
            waiter.get()

    def _turn(self):
        if self.queue:
            self.queue.popleft().switch(None)
        if not self.queue:
            self.watcher.stop()


_catch_up = _CatchUp()


class Sink:
    """What a player gives its consumer (``consumer.sink``) so that a due merged write is
    done in the hub, without a greenlet switch, while the player's greenlet is parked.

    Every call happens in the hub and must never wait or switch greenlets."""

    __slots__ = ()

    def variant(self):
        """A hashable naming how this player encodes a batch (protocol, chunk size, ...),
        or None when it cannot take a write from the hub now (closing, a send left
        unfinished, a command or error for the player's own greenlet)."""
        return None

    def pack_shared(self, msgs: list, base: int) -> tuple:
        """The wire bytes of ``msgs`` for every player of the same variant at the same
        cursor and base: ``(iovecs, wire size, media bytes)``."""
        raise NotImplementedError

    def send_shared(self, iov: list, wire: int, media: int) -> bool:
        """Send without waiting; False when the kernel took part (the rest is kept and the
        player's greenlet finishes it)."""
        raise NotImplementedError


class LiveConsumer:
    """One reader of a LiveSource: a player (RTMP, HTTP streams), a relay or a per-source
    output (``player`` False: it does not count as a player)."""

    __slots__ = (
        "source", "cursor", "epoch", "pending", "ts_base", "need_keyframe", "paused",
        "dropped", "disposed", "events", "event", "waiting", "wait_token",
        "mw_msgs", "mw_sleep", "queue_length", "owner", "player", "started", "fresh", "sink", "__weakref__",
    )

    def __init__(self, source, mw_msgs: int = 8, mw_sleep: int = 350, queue_length_ms: int = 30000, owner=None,
                 player: bool = True):
        self.source = source
        self.cursor = source.log.end
        self.epoch = source.epoch
        self.pending: list = []
        self.ts_base = None  # subtracted from what it sends (jitter.py); None before its first frame
        self.need_keyframe = False
        self.paused = False
        self.dropped = 0
        self.disposed = False
        self.events: list = []
        self.event = Event()
        self.waiting = False
        self.wait_token = 0
        self.mw_msgs = mw_msgs
        self.mw_sleep = mw_sleep
        self.queue_length = queue_length_ms
        self.owner = owner
        self.player = player  # False for relays and per-source outputs: they keep no edge pull alive
        self.started = False
        self.fresh = True  # catching up after it joined: a write per turn, others first (see wait)
        # The player's send side, set while it may be parked in wait(): when a merged
        # write is due, the source sends it from the hub without waking the player (see
        # LiveSource._flush_due and ``Sink``); None: the player is woken to do it.
        self.sink = None

    # -- set-up --------------------------------------------------------------------
    def set_merged_write(self, mw_msgs: int, mw_sleep: int):
        self.mw_msgs = max(0, min(mw_msgs, MAX_DUMP))
        self.mw_sleep = max(0, mw_sleep)

    def start_at(self, pending: list, cursor: int, need_keyframe: bool):
        """Where the consumer starts: metadata/sequence headers first, then the log at ``cursor``."""
        self.pending = pending
        self.cursor = cursor
        self.need_keyframe = need_keyframe

    # -- reading -------------------------------------------------------------------
    def dump(self, max_msgs: int = MAX_DUMP) -> list:
        """Take up to ``max_msgs`` messages (SrsLiveConsumer::dump_packets)."""
        if self.paused or self.disposed:
            return []
        if self.fresh:
            max_msgs = min(max_msgs, CATCH_UP_DUMP if self.started else len(self.pending) + FIRST_DUMP)
        src = self.source
        if self.epoch != src.epoch:
            self._restart_for_republish()
        log = src.log
        if log.behind(self.cursor, self.queue_length):
            self._shrink()
        out = self.pending
        if out:
            self.pending = []
        room = max_msgs - len(out)
        if room > 0 and self.cursor < log.end:
            batch = log.read(self.cursor, room)
            self.cursor += len(batch)
            if self.need_keyframe:
                batch = self._skip_to_keyframe(batch)
            if self.ts_base is None:
                for m in batch:
                    if m.type == VIDEO or m.type == AUDIO:
                        self.ts_base = consumer_base(src.jitter_algorithm, m.timestamp)
                        break
            if out:
                out.extend(batch)
            else:
                out = batch
        if out and not self.started:
            self.started = True
        return out

    def steady(self) -> bool:
        """A plain reader of the log: what it sends next is the log from ``cursor`` on,
        stamped with ``ts_base``: the same bytes as any other steady consumer at the same
        cursor and base."""
        src = self.source
        log = src.log
        return (not self.pending and not self.paused and not self.events and self.started
                and not self.need_keyframe and self.ts_base is not None and self.epoch == src.epoch
                and log.start <= self.cursor < log.end and not log.behind(self.cursor, self.queue_length))

    def skip(self, n: int):
        """It was sent the next ``n`` messages of the log by the hub (a shared batch)."""
        self.cursor += n

    def timestamp_base(self) -> int:
        """The offset to subtract from A/V timestamps of the last dump (0-stamping before any frame)."""
        return _NO_BASE if self.ts_base is None else self.ts_base

    def _skip_to_keyframe(self, batch: list) -> list:
        kept = []
        for m in batch:
            if self.need_keyframe and m.type == VIDEO:
                if m.flags & F_SEQUENCE_HEADER:
                    kept.append(m)
                    continue
                if not m.flags & F_KEYFRAME:
                    self.dropped += 1
                    continue
                self.need_keyframe = False
            kept.append(m)
        return kept

    def _shrink(self):
        """Port of SrsMessageQueue::shrink: the consumer fell more than queue_length behind.

        Drop what it had not sent, keep the sequence headers, and restart at the latest
        keyframe (or wait for the next one)."""
        src = self.source
        end = src.log.end
        gop = src.gop_start
        restart = gop if gop > self.cursor and gop >= src.log.start else end
        self.dropped += max(0, restart - self.cursor)
        self.pending = src.meta.dumps(metadata=False)
        self.cursor = restart
        self.need_keyframe = restart == end
        src.on_consumer_shrink(self)

    def _restart_for_republish(self):
        """A new publisher took the stream: never send leftovers of the old one."""
        src = self.source
        self.epoch = src.epoch
        self.pending = []
        self.cursor = src.publish_start
        self.need_keyframe = True

    # -- waiting -------------------------------------------------------------------
    def arm(self) -> bool:
        """Register to be woken when a merged write is worth it (SrsLiveConsumer::wait's
        condition). False when there is something to send now, and nothing registered."""
        if self.pending or self.events or self.disposed or self.epoch != self.source.epoch:
            return False
        if self.paused:
            return True  # only an event (unpause, close) wakes a paused player
        src = self.source
        log = src.log
        if self.cursor < log.start:
            return False
        n = log.end - self.cursor
        self.wait_token += 1
        if n > 0:
            first = log.ts_at(self.cursor)
            if n > self.mw_msgs and (log.last_ts - first > self.mw_sleep or self.mw_sleep == 0):
                return False
            src.add_waiter(self, first + self.mw_sleep if self.mw_sleep else first - 1)
        else:
            src.idle_waiters.append((self, self.wait_token))
        return True

    def wait(self, timeout: float | None = 1.0):
        """Block until a merged write is worth it (SrsLiveConsumer::wait), an event comes,
        or ``timeout`` passes. The publisher wakes us (or writes for us, see ``sink``);
        nobody polls."""
        if self.fresh and self.started:
            # Its first picture is out. The rest of what it joined with (the GOP) goes in
            # writes of CATCH_UP_DUMP, one player's per idle turn of the loop (at most
            # FRESH_YIELD_S later), so that players joining in a burst all get their first
            # picture before any of them gets the whole GOP.
            if self.source.log.end - self.cursor <= CATCH_UP_DUMP:
                self.fresh = False
            _catch_up.wait(FRESH_YIELD_S)
        if not self.arm():
            return
        self.waiting = True
        try:
            self.event.wait(timeout)
        finally:
            self.waiting = False
        self.event.clear()

    def wakeup(self):
        """Wake the player; a wake that comes while it is not waiting (busy sending, or in
        its catch-up turn) is kept: its next wait returns at once."""
        self.event.set()

    def notify(self, event: str):
        """Queue a stream event for the player (``publish``, ``unpublish``) and wake it."""
        self.events.append(event)
        self.wakeup()

    def pop_events(self) -> list:
        ev = self.events
        if ev:
            self.events = []
        return ev

    # -- end -----------------------------------------------------------------------
    def dispose(self):
        if not self.disposed:
            self.disposed = True
            self.source.on_consumer_destroy(self)
            self.wakeup()
