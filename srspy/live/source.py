"""Port of SrsLiveSource and SrsLiveSourceManager: the hub of one stream.

One ``LiveSource`` per stream URL. An input (the RTMP publisher's greenlet, an edge pull)
calls ``on_message``; each message is appended ONCE to the source's log (log.py, with the
monotonic timeline beside it) and consumers read it through cursors (consumer.py). The GOP
cache is the part of the log from the latest keyframe (``gop_start``); the log is trimmed to
what the slowest consumer, the GOP cache and ``queue_length`` still need.

The manager tells its listeners about publishes and consumers (hub.py), and each source's
``OriginHub`` runs the per-source outputs (forward, and later HLS and DVR).

Waking players. The publisher's greenlet only appends; consumers whose merged write is due
(``mw_msgs``/``mw_latency``, a heap keyed by media time) are collected and handled by ONE
hub callback once the publisher yields (``_flush_due``), so that all messages of one read
go out together. A player parked in ``wait`` leaves a sink (consumer.py ``Sink``): the
callback writes the batch for it with a ``sendmsg`` that never waits, and steady players at
the same cursor and timestamp base share one encoding of it (FLV tags and chunk framing, or
RTMP chunks). No greenlet switch happens for them. Anything else (a send the kernel took
only part of, events, commands, a player catching up) wakes the player's greenlet, which
owns its connection and finishes the work itself.
"""

from __future__ import annotations

import heapq
import itertools
import time
import gevent
from loguru import logger

from ..errors import StreamBusyError
from ..kernel import codec
from ..kernel.codec import F_COLOR_INFO, F_EMPTY_CONFIG, F_KEYFRAME, F_SEQUENCE_HEADER
from ..kernel.flv import split_aggregate
from ..kernel.message import AGGREGATE, AMF0_DATA, AMF3_DATA, AUDIO, VIDEO
from .consumer import MAX_DUMP, LiveConsumer
from .hub import OriginHub, SourceListener
from .jitter import JITTER_FULL, JITTER_OFF, SourceJitter
from .log import MessageLog
from .meta import MetaCache

SOURCE_CLEANUP_S = 3.0  # SRS_SOURCE_CLEANUP: a source with no users dies after this
PURE_AUDIO_GUESS_COUNT = 115  # SRS: that many audio messages after the last video => audio only
TRIM_EVERY = 32
# Players wait for their merged write until the stream's timestamps move mw_latency on;
# when no message comes for this long (the publisher paused, or stopped sending without
# unpublishing), what they wait for is written anyway: SRS's consumer waits at most
# mw_latency (SRS_PERF_MW_SLEEP, 350 ms) for more.
TAIL_S = 0.35

_waiter_ids = itertools.count()


class SourceOptions:
    """The vhost settings a source reads when it is created or published."""

    __slots__ = ("gop_cache", "gop_cache_max_frames", "queue_length_ms", "time_jitter", "atc", "reduce_sequence_header",
                 "parse_sps", "keep_ms")

    def __init__(self, gop_cache=True, gop_cache_max_frames=2500, queue_length_ms=30000, time_jitter=JITTER_FULL, atc=False,
                 reduce_sequence_header=False, parse_sps=True, keep_ms=0):
        self.gop_cache = gop_cache
        self.gop_cache_max_frames = gop_cache_max_frames
        self.queue_length_ms = queue_length_ms
        self.time_jitter = time_jitter
        self.atc = atc
        self.reduce_sequence_header = reduce_sequence_header
        self.parse_sps = parse_sps
        self.keep_ms = keep_ms  # the log keeps at least this much, players or not (fast_cache)

    @classmethod
    def from_vhost(cls, vconf: dict) -> "SourceOptions":
        play = vconf["play"]
        return cls(
            gop_cache=play["gop_cache"],
            gop_cache_max_frames=play["gop_cache_max_frames"],
            queue_length_ms=int(play["queue_length"] * 1000),
            time_jitter=play["time_jitter"],
            atc=play["atc"],
            reduce_sequence_header=play["reduce_sequence_header"],
            parse_sps=vconf["publish"]["parse_sps"],
            keep_ms=int(vconf["http_remux"]["fast_cache"] * 1000) if vconf["http_remux"]["enabled"] else 0,
        )


class LiveSource:
    def __init__(self, url: str, req, options: SourceOptions, manager=None):
        self.url = url
        self.req = req
        self.options = options
        self.manager = manager
        self.log = MessageLog()  # the shared log
        self.appended = 0
        # GOP cache over the log
        self.gop_start = -1
        self.gop_frames = 0
        self.audio_after_video = 0
        # publish state
        self.epoch = 0
        self.publish_start = 0  # seq of the current publish's first message
        self.publisher = None  # the publishing connection (anything with .cid)
        self.can_publish = True
        self.jitter = SourceJitter()
        self.jitter_algorithm = JITTER_OFF if options.atc else options.time_jitter
        self.meta = MetaCache()
        self.consumers: dict = {}
        self.waiters: list = []  # heap of (wake_ts, id, consumer, token)
        self.idle_waiters: list = []  # (consumer, token) waiting for the next message
        self.due: list | None = None  # consumers whose merged write is due (_flush_due)
        self.tail = None  # timer: waiting players are written when the publisher pauses (_tail)
        self.loop = gevent.get_hub().loop
        self.origin_hub = OriginHub(self)
        self.sink_errors = 0  # players' writes that failed in the hub (logged once per source)
        self.attachments: dict = {}  # per-stream state of outputs, by name (app/stream_ts.py)
        self.video_info: dict | None = None
        self.audio_info: dict | None = None
        self.frames = 0
        self.recv_bytes = 0
        self.dropped = 0
        self.created = time.monotonic()
        self.idle_since = time.monotonic()
        self.stat = None  # set by the statistics module

    # -- publish -------------------------------------------------------------------
    @property
    def publishing(self) -> bool:
        return not self.can_publish

    def on_publish(self, publisher):
        """Port of SrsLiveSource::on_publish: take the stream for ``publisher``."""
        if not self.can_publish:
            raise StreamBusyError(f"rtmp: stream {self.url} is busy")
        self.can_publish = False
        self.publisher = publisher
        self.epoch += 1
        self.publish_start = self.log.end
        self.gop_start = -1
        self.gop_frames = 0
        self.meta.clear()
        self.video_info = self.audio_info = None
        self.options = self.manager.options_for(self.req) if self.manager is not None else self.options
        self.jitter_algorithm = JITTER_OFF if self.options.atc else self.options.time_jitter
        for c in list(self.consumers):
            c.notify("publish")
        if self.manager is not None:
            self.manager.publish_started(self)

    def on_unpublish(self):
        """Port of SrsLiveSource::on_unpublish: clear the GOP cache, tell players, free the name."""
        if self.can_publish:
            return
        self.gop_start = -1
        self.meta.previous_audio_sh = self.meta.audio_sh
        self.meta.previous_video_sh = self.meta.video_sh
        try:
            if self.manager is not None:
                self.manager.publish_ended(self)
            for c in list(self.consumers):
                c.notify("unpublish")
        finally:
            self.publisher = None
            self.can_publish = True  # last, as SRS: handlers above may switch greenlets
            self.idle_since = time.monotonic()
            self._trim()

    # -- ingest (publisher greenlet) -----------------------------------------------
    def on_message(self, msg) -> bool:
        """A message from the publisher: audio, video, data (AMF3 data unwrapped) and
        aggregates go in; False for anything else (commands are the caller's)."""
        t = msg.type
        if t == VIDEO:
            self.on_video(msg)
        elif t == AUDIO:
            self.on_audio(msg)
        elif t == AMF0_DATA or t == AMF3_DATA:
            if t == AMF3_DATA and msg.payload[:1] == b"\x00":
                msg.payload = msg.payload[1:]
            self.on_meta_data(msg)
        elif t == AGGREGATE:
            for sub in split_aggregate(msg):
                self.on_message(sub)
        else:
            return False
        return True

    def on_audio(self, msg):
        payload = msg.payload
        self.recv_bytes += len(payload)
        flags = codec.audio_flags(payload)
        msg.flags = flags
        if flags & F_SEQUENCE_HEADER:
            meta = self.meta
            if self.options.reduce_sequence_header and meta.audio_sh is not None and meta.audio_sh.payload == payload:
                return
            if not flags & F_EMPTY_CONFIG or meta.audio_sh is None:  # the latest non-empty one wins
                meta.audio_sh = msg
                self._parse_audio_info(payload)
        elif not payload:
            return
        elif self.audio_info is None:
            self._parse_audio_info(payload)
        self.audio_after_video += 1
        if self.audio_after_video > PURE_AUDIO_GUESS_COUNT:
            self.gop_start = -1
        self._append(msg, self._correct(msg))

    def on_video(self, msg) -> bool:
        """False when the codec is unknown and the message dropped (SRS #421)."""
        payload = msg.payload
        if not codec.is_video_codec_ok(payload):
            return False
        self.recv_bytes += len(payload)
        flags = codec.video_flags(payload)
        msg.flags = flags
        if flags & F_SEQUENCE_HEADER:
            meta = self.meta
            if self.options.reduce_sequence_header and meta.video_sh is not None and meta.video_sh.payload == payload:
                return True
            if not flags & F_EMPTY_CONFIG or meta.video_sh is None:  # the latest non-empty one wins
                meta.video_sh = msg
                self._parse_video_info(payload)
        elif flags & F_COLOR_INFO:
            self.meta.video_color = msg  # enhanced RTMP colour metadata: new players get it too
        else:
            self.frames += 1
        self.audio_after_video = 0
        t = self._correct(msg)
        seq = self.log.end
        if flags & F_KEYFRAME and not flags & F_SEQUENCE_HEADER:
            if self.options.gop_cache:
                self.gop_start = seq
                self.gop_frames = 0
        elif self.gop_start >= 0:
            self.gop_frames += 1
            if self.gop_frames > self.options.gop_cache_max_frames:
                self.gop_start = -1  # a GOP without end: stop caching it (SRS #3236)
        self._append(msg, t)
        return True

    def on_meta_data(self, msg) -> bool:
        m = self.meta.update_metadata(msg)
        if m is None:
            return False
        self._append(m, self.log.last_ts)
        return True

    def _parse_video_info(self, payload: bytes):
        """Codec name (H264, H265, AV1, VP9, either RTMP layout), profile, level, size."""
        try:
            self.video_info = codec.video_info(payload, self.options.parse_sps)
        except (ValueError, IndexError) as e:
            name = codec.parse_video_tag(payload).codec
            logger.warning("source {}: cannot parse the {} sequence header: {}", self.url, name, e)
            self.video_info = {"codec": name if name != codec.UNKNOWN else "Others", "profile": "", "level": "",
                               "width": 0, "height": 0}

    def _parse_audio_info(self, payload: bytes):
        """Codec name (AAC, MP3, Opus, FLAC, ...), sample rate, channels, profile."""
        try:
            self.audio_info = codec.audio_info(payload)
        except (ValueError, IndexError):
            self.audio_info = {"codec": codec.parse_audio_tag(payload).codec, "sample_rate": 0, "channel": 0,
                               "profile": ""}

    def _correct(self, msg) -> int:
        """Apply the source-level jitter; return the monotonic timeline value."""
        t = self.jitter.correct(msg.timestamp)
        if self.jitter_algorithm == JITTER_FULL:
            msg.timestamp = t
        return t

    def _append(self, msg, t: int):
        log = self.log
        log.append(msg, t)
        due = None
        if self.idle_waiters:
            idle, self.idle_waiters = self.idle_waiters, []
            for c, token in idle:
                if c.wait_token == token and c.waiting:
                    if c.mw_sleep or c.mw_msgs:
                        self.add_waiter(c, t + c.mw_sleep if c.mw_sleep else t - 1)
                    elif due is None:
                        due = [c]
                    else:
                        due.append(c)
        waiters = self.waiters
        if waiters and waiters[0][0] < t:
            end = log.end
            later = []
            if due is None:
                due = []
            while waiters and waiters[0][0] < t:
                entry = heapq.heappop(waiters)
                c = entry[2]
                if c.wait_token != entry[3] or not c.waiting:
                    continue
                if end - c.cursor > c.mw_msgs:
                    due.append(c)
                else:
                    later.append(entry)
            for entry in later:
                heapq.heappush(waiters, entry)
        if due:
            if self.due is None:
                # one hub callback for what is due, once the publisher's greenlet yields:
                # the messages of one read go out together, in one write per player
                self.due = due
                self.loop.run_callback(self._flush_due)
            else:
                self.due.extend(due)
        if waiters:
            self.tail.again(self._tail)  # TAIL_S from this message on
        self.appended += 1
        if self.appended % TRIM_EVERY == 0:
            self._trim()

    def _flush_due(self):
        """In the hub: the due players' merged writes. A player parked with a sink that
        can take a write now is written to from here, with no greenlet switch; steady
        players at the same cursor, base and variant share one encoding of the batch (FLV
        tags or RTMP chunks, one ``sendmsg`` each). Any other player is woken instead, and
        so is one whose write the kernel took only part of."""
        due, self.due = self.due, None
        groups: dict = {}
        for c in due:
            if not c.waiting:
                continue
            try:
                variant = c.sink.variant() if c.sink is not None and not c.events else None
                if variant is None:
                    c.event.set()
                elif c.steady():
                    key = (c.cursor, c.ts_base, variant)
                    g = groups.get(key)
                    if g is None:
                        groups[key] = [c]
                    else:
                        g.append(c)
                else:  # its own batch (a shrink, a republish, a keyframe to wait for...)
                    msgs = c.dump()
                    self._send_for(c, c.sink.pack_shared(msgs, c.timestamp_base()) if msgs else None)
            except Exception:  # noqa: BLE001 - a player's failure is its own
                self._sink_failed(c)
        read = self.log.read
        for (cursor, base, _), members in groups.items():
            msgs = read(cursor, MAX_DUMP)
            n = len(msgs)
            try:
                packed = members[0].sink.pack_shared(msgs, base)
            except Exception:  # noqa: BLE001 - this group's players do it themselves
                for c in members:
                    self._sink_failed(c)
                continue
            for c in members:
                c.skip(n)
                try:
                    self._send_for(c, packed)
                except Exception:  # noqa: BLE001 - a player's failure is its own
                    self._sink_failed(c)

    @staticmethod
    def _send_for(c, packed):
        """Send ``packed`` (iovecs, wire size, media bytes) through the consumer's sink and
        re-arm it; wake its player when the send or the re-arm says there is more to do."""
        if (packed is None or c.sink.send_shared(*packed)) and c.arm():
            return
        c.event.set()

    def _sink_failed(self, c):
        """A write from the hub raised: the player's greenlet takes over (and meets the
        error itself). Logged with its traceback once per source, then counted."""
        c.sink = None
        self.sink_errors += 1
        if self.sink_errors == 1:
            logger.exception("source {}: a player's write failed in the hub (further ones are counted)", self.url)
        c.event.set()

    def add_waiter(self, consumer, wake_ts: int):
        heapq.heappush(self.waiters, (wake_ts, next(_waiter_ids), consumer, consumer.wait_token))
        tail = self.tail
        if tail is None:
            tail = self.tail = self.loop.timer(TAIL_S, TAIL_S)
        if not tail.active:
            tail.start(self._tail)

    def _tail(self):
        """No message for TAIL_S while players wait for their merged write: write them
        what they have (as if their wait timed out), through the same path as a due write."""
        self.tail.stop()
        waiters, self.waiters = self.waiters, []
        due = [entry[2] for entry in waiters if entry[2].wait_token == entry[3] and entry[2].waiting]
        if not due:
            return
        if self.due is None:
            self.due = due
            self._flush_due()
        else:
            self.due.extend(due)

    def _trim(self):
        """Drop the head of the log that no consumer, nor the GOP cache, still needs;
        never keep more than queue_length for consumers (they shrink when they come back)."""
        log = self.log
        keep = log.end
        for c in self.consumers:
            if c.cursor < keep:
                keep = c.cursor
        if len(log):
            hard = log.seq_at_ts(log.last_ts - self.options.queue_length_ms)
            if keep < hard:
                keep = hard
        if self.gop_start >= 0 and self.gop_start < keep:
            keep = self.gop_start
        if self.options.keep_ms and len(log):
            keep = min(keep, log.seq_at_ts(log.last_ts - self.options.keep_ms))
        log.trim(keep)

    # -- consumers -------------------------------------------------------------------
    def create_consumer(self, mw_msgs: int = 8, mw_sleep: int = 350, owner=None, player: bool = True) -> LiveConsumer:
        """A consumer at the end of the log (``consumer_dumps`` moves it to where it starts).
        The listeners hear of it before it exists: an edge pull started by the first player
        publishes first, and the new consumer starts at that publish."""
        if self.manager is not None:
            self.manager.consumer_creating(self, player)
        c = LiveConsumer(self, mw_msgs, mw_sleep, self.options.queue_length_ms, owner, player)
        self.consumers[c] = True
        return c

    def consumer_dumps(self, consumer: LiveConsumer, dump_seq_headers=True, dump_meta=True, dump_gop=True,
                       back_ms: int = 0):
        """Port of SrsLiveSource::consumer_dumps: metadata, sequence headers, then the GOP;
        with ``back_ms`` (an audio player's ``fast_cache``), the last ``back_ms`` of the log."""
        log = self.log
        end = log.end
        if not self.publishing:
            consumer.start_at([], end, True)
            return
        pending = self.meta.dumps(metadata=dump_meta, sequence_headers=dump_seq_headers)
        if back_ms > 0 and len(log):
            consumer.start_at(pending, max(self.publish_start, log.seq_at_ts(log.last_ts - back_ms)), False)
            return
        if dump_gop and self.options.gop_cache and self.gop_start >= self.log.start:
            consumer.start_at(pending, self.gop_start, False)
        else:
            consumer.start_at(pending, end, self.meta.video_sh is not None or self.frames > 0)

    def on_consumer_destroy(self, consumer):
        self.consumers.pop(consumer, None)
        self.dropped += consumer.dropped
        consumer.dropped = 0
        if not self.consumers:
            self.idle_since = time.monotonic()
        if self.manager is not None:
            self.manager.consumer_destroyed(self, consumer)

    def on_consumer_shrink(self, consumer):
        if self.manager is not None:
            self.manager.shrinks += 1

    def has_players(self) -> bool:
        """A consumer that counts as a player (not a relay, not a per-source output)."""
        return any(c.player for c in self.consumers)

    def is_dead(self, now: float) -> bool:
        return self.can_publish and not self.consumers and now - self.idle_since >= SOURCE_CLEANUP_S


class SourceManager:
    """Port of SrsLiveSourceManager: fetch or create sources, collect the dead ones, tell
    the listeners (hub.py) and start each source's outputs at publish."""

    def __init__(self, options_for=None):
        self.sources: dict[str, LiveSource] = {}
        self._options_for = options_for
        self.listeners: list[SourceListener] = []
        self.output_factories: list = []  # callables: source -> [HubOutput]
        self._gc = None
        self.shrinks = 0

    def add_listener(self, listener: SourceListener) -> None:
        self.listeners.append(listener)

    def add_output_factory(self, factory) -> None:
        """``factory(source) -> [HubOutput]``, asked at every publish (an empty list: none)."""
        self.output_factories.append(factory)

    def options_for(self, req) -> SourceOptions:
        return self._options_for(req) if self._options_for else SourceOptions()

    def fetch(self, req) -> LiveSource | None:
        return self.sources.get(req.stream_url)

    def fetch_or_create(self, req) -> LiveSource:
        url = req.stream_url
        src = self.sources.get(url)
        if src is not None:
            src.req.update_auth(req)
            return src
        src = LiveSource(url, req.copy(), self.options_for(req), self)
        self.sources[url] = src
        return src

    def start(self, interval: float = SOURCE_CLEANUP_S):
        self._gc = gevent.spawn(self._gc_loop, interval)

    def stop(self):
        """Stop collecting and stop every source's outputs."""
        if self._gc is not None:
            self._gc.kill(block=False)
            self._gc = None
        for src in list(self.sources.values()):
            src.origin_hub.stop_all()

    def _gc_loop(self, interval: float):
        while True:
            gevent.sleep(interval)
            self.collect()

    def collect(self, now: float | None = None):
        now = time.monotonic() if now is None else now
        for url, src in list(self.sources.items()):
            if src.is_dead(now):
                del self.sources[url]
                logger.debug("source {} is dead, freed", url)

    # -- what the sources tell the manager ------------------------------------------------
    def publish_started(self, src):
        for listener in self.listeners:
            listener.on_publish(src)
        src.origin_hub.on_publish(self.output_factories)

    def publish_ended(self, src):
        src.origin_hub.on_unpublish()
        for listener in reversed(self.listeners):
            listener.on_unpublish(src)

    def consumer_creating(self, src, player: bool):
        for listener in self.listeners:
            listener.on_consumer_creating(src, player)

    def consumer_destroyed(self, src, consumer):
        for listener in self.listeners:
            listener.on_consumer_destroyed(src, consumer)
