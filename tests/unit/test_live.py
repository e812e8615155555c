"""LiveSource, LiveConsumer and the jitter: pure logic, no sockets."""

import time

import pytest
from helpers.media import wait_until

from srspy.kernel.codec import F_KEYFRAME, F_SEQUENCE_HEADER
from srspy.live.jitter import SourceJitter, consumer_base
from srspy.live.source import LiveSource, SourceOptions
from srspy.kernel.message import AUDIO, VIDEO, MediaMessage

AVC_SH = bytes([0x17, 0x00, 0, 0, 0]) + b"\x01\x64\x00\x1f\xff\xe1\x00\x00\x01\x00\x00"
AAC_SH = bytes([0xAF, 0x00, 0x12, 0x10])


def key(ts):
    return MediaMessage(VIDEO, ts, 1, bytes([0x17, 0x01, 0, 0, 0]) + b"K" * 10)


def inter(ts):
    return MediaMessage(VIDEO, ts, 1, bytes([0x27, 0x01, 0, 0, 0]) + b"P" * 10)


def audio(ts):
    return MediaMessage(AUDIO, ts, 1, bytes([0xAF, 0x01]) + b"A" * 5)


def make_source(**kw):
    src = LiveSource("/live/s", None, SourceOptions(**kw))
    src.on_publish(object())
    return src


def consumer_at_live_edge(mw_msgs: int, mw_sleep: int):
    """A source that published a keyframe, and a consumer reading from after it."""
    src = make_source(time_jitter="off")
    src.on_video(key(0))
    c = src.create_consumer(mw_msgs=mw_msgs, mw_sleep=mw_sleep)
    c.start_at([], src.log.end, False)
    return src, c


@pytest.mark.parametrize(
    "inputs, expected",
    [
        ([0, 40, 80, 120], [0, 40, 80, 120]),  # starts at -1 + delta, clamped at 0
        ([10000, 10040, 10080], [9, 49, 89]),  # a mid-stream start: the first delta becomes 10 ms
        ([0, 40, 5000, 5040], [0, 40, 50, 90]),  # a jump forward over 250 ms counts as 10 ms
        ([1000, 1040, 1080, 0, 40], [9, 49, 89, 99, 139]),  # a jump back (republish) counts as 10 ms
        ([0, 40, 20, 60], [0, 40, 20, 60]),  # small backward jitter within 250 ms is kept
        ([0, 100, 0], [0, 100, 0]),  # never below zero
    ],
)
def test_jitter_full(inputs, expected):
    j = SourceJitter()
    assert [j.correct(t) for t in inputs] == expected


def test_consumer_base():
    assert consumer_base("full", 1009) == 1000
    assert consumer_base("zero", 777) == 777
    assert consumer_base("off", 777) == 0


def test_new_consumer_gets_headers_then_gop_from_keyframe():
    src = make_source(time_jitter="off")
    src.on_audio(MediaMessage(AUDIO, 0, 1, AAC_SH))
    src.on_video(MediaMessage(VIDEO, 0, 1, AVC_SH))
    for t in range(0, 2000, 40):
        src.on_video(key(t) if t % 1000 == 0 else inter(t))
        src.on_audio(audio(t))
    c = src.create_consumer()
    src.consumer_dumps(c)
    msgs = c.dump(1000)
    assert msgs[0].payload == AAC_SH and msgs[1].payload == AVC_SH
    assert msgs[2].type == VIDEO and msgs[2].flags & F_KEYFRAME and msgs[2].timestamp == 1000
    assert not msgs[2].flags & F_SEQUENCE_HEADER
    assert all(m.timestamp >= 1000 for m in msgs[2:])


def test_gop_cache_off_waits_for_next_keyframe():
    src = make_source(time_jitter="off", gop_cache=False)
    src.on_video(MediaMessage(VIDEO, 0, 1, AVC_SH))
    src.on_video(key(0))
    src.on_video(inter(40))
    c = src.create_consumer()
    src.consumer_dumps(c)
    src.on_video(inter(80))
    src.on_audio(audio(80))
    src.on_video(key(120))
    msgs = c.dump()
    assert [m.type for m in msgs] == [VIDEO, AUDIO, VIDEO]  # SH, audio, then the keyframe
    assert msgs[0].payload == AVC_SH and msgs[2].timestamp == 120
    assert c.dropped == 1


def test_queue_overflow_shrinks_to_headers_and_next_keyframe():
    src = make_source(time_jitter="off", queue_length_ms=2000)
    src.on_audio(MediaMessage(AUDIO, 0, 1, AAC_SH))
    src.on_video(MediaMessage(VIDEO, 0, 1, AVC_SH))
    src.on_video(key(0))
    c = src.create_consumer()
    src.consumer_dumps(c)
    c.dump(3)  # takes the headers and the keyframe, then falls behind
    for t in range(40, 10000, 40):
        src.on_video(key(t) if t % 2000 == 0 else inter(t))
    msgs = c.dump(1000)
    assert c.dropped > 0
    assert msgs[0].payload == AAC_SH and msgs[1].payload == AVC_SH
    assert msgs[2].flags & F_KEYFRAME and msgs[2].timestamp == 8000
    assert len(src.log) < 120  # the log was trimmed to queue_length, not kept for the slow player


def test_republish_never_sends_old_leftovers():
    src = make_source(time_jitter="off")
    src.on_video(MediaMessage(VIDEO, 0, 1, AVC_SH))
    src.on_video(key(0))
    c = src.create_consumer()
    src.consumer_dumps(c)
    c.dump()
    src.on_video(inter(40))  # never read by the consumer
    src.on_unpublish()
    assert c.pop_events() == ["unpublish"]
    src.on_publish(object())
    assert c.pop_events() == ["publish"]
    src.on_video(inter(0))  # the new publisher starts badly: must be skipped
    new_sh = MediaMessage(VIDEO, 0, 1, AVC_SH + b"\x01")
    src.on_video(new_sh)
    src.on_video(key(0))
    msgs = c.dump()
    assert [m.payload for m in msgs] == [new_sh.payload, key(0).payload]


def test_full_jitter_timestamps_start_near_zero_for_each_consumer():
    src = make_source()  # full
    src.on_video(MediaMessage(VIDEO, 5000, 1, AVC_SH))
    for t in range(5000, 7000, 40):
        src.on_video(key(t) if t == 6000 else inter(t))
    c = src.create_consumer()
    src.consumer_dumps(c)
    msgs = c.dump()
    base = c.timestamp_base()
    ts = [m.timestamp - base for m in msgs if not m.flags & F_SEQUENCE_HEADER]
    assert ts[0] == 9 and ts[1] == 49


def test_wait_wakes_on_merged_write_condition():
    import gevent

    src, c = consumer_at_live_edge(2, 100)
    woke = []

    def player():
        c.wait(5.0)
        woke.append(len(src.log))

    g = gevent.spawn(player)
    gevent.sleep(0)
    for t in (40, 80, 120):
        src.on_video(inter(t))
        gevent.sleep(0)
    assert woke == []  # 3 messages but only 80 ms queued
    src.on_video(inter(160))
    gevent.sleep(0)
    g.join(1)
    assert woke == [5]


def test_a_paused_publisher_does_not_hold_back_what_players_wait_for():
    """The merged-write wake follows the stream's timestamps; when no message comes for
    TAIL_S the waiting players are written what they have, as SRS's timed wait does."""
    import gevent

    from srspy.live.source import TAIL_S

    src, c = consumer_at_live_edge(8, 350)
    woke = []

    def player():
        c.wait(None)  # no timeout of its own
        woke.append(gevent.get_hub().loop.now())

    g = gevent.spawn(player)
    gevent.sleep(0)
    src.on_video(inter(40))
    src.on_video(inter(80))  # then the publisher pauses
    sent = gevent.get_hub().loop.now()
    gevent.sleep(TAIL_S / 2)
    assert woke == []
    g.join(2)
    assert woke and TAIL_S * 0.8 <= woke[0] - sent <= TAIL_S + 0.3
    assert [m.timestamp for m in c.dump()] == [40, 80]
    assert not src.tail.active  # nobody waits any more


def test_a_wake_while_busy_is_kept():
    """A command or event that comes while the player is not parked (sending) makes its
    next wait return at once, even with no timeout."""
    import gevent

    src, c = consumer_at_live_edge(8, 350)
    c.fresh = False
    c.wakeup()
    with gevent.Timeout(2):
        c.wait(None)  # returns: the wake was kept
    t0 = time.monotonic()
    c.wait(0.05)  # and it was used up: this one waits out its timeout
    assert time.monotonic() - t0 >= 0.04


def test_source_manager_collects_dead_sources():
    from srspy.live.source import SOURCE_CLEANUP_S, SourceManager
    from srspy.request import Request, discover_tc_url

    mgr = SourceManager()
    req = discover_tc_url("rtmp://127.0.0.1/live", "gc", Request())
    req.vhost = "__defaultVhost__"
    src = mgr.fetch_or_create(req)
    assert mgr.fetch_or_create(req) is src
    c = src.create_consumer()
    now = src.idle_since
    mgr.collect(now + 100)
    assert "/live/gc" in mgr.sources  # a consumer keeps it
    c.dispose()
    mgr.collect(src.idle_since + SOURCE_CLEANUP_S - 0.5)
    assert "/live/gc" in mgr.sources  # not dead long enough
    mgr.collect(src.idle_since + SOURCE_CLEANUP_S + 0.1)
    assert "/live/gc" not in mgr.sources


def test_a_joining_player_catches_up_in_small_writes():
    import gevent

    from srspy.live.consumer import CATCH_UP_DUMP, FIRST_DUMP

    src = make_source(time_jitter="off")
    src.on_video(MediaMessage(VIDEO, 0, 1, AVC_SH))
    for t in range(0, 4000, 20):  # a 200-message GOP
        src.on_video(key(t) if t == 0 else inter(t))
    c = src.create_consumer(mw_msgs=8, mw_sleep=350)
    src.consumer_dumps(c)
    sizes = []

    def player():
        while True:
            msgs = c.dump()
            if not msgs:
                return
            sizes.append(len(msgs))
            c.wait(0.5)

    gevent.spawn(player).join(5)
    assert sizes[0] == 1 + FIRST_DUMP  # the sequence header, then the keyframe and 15 frames
    assert sizes[1:3] == [CATCH_UP_DUMP, CATCH_UP_DUMP]  # then the GOP, a turn each
    assert sum(sizes) == 201 and not c.fresh


class RecordingSink:
    """A player's send side that records what the source asks of it."""

    packs = []

    def __init__(self, variant=("rec",)):
        self._variant = variant
        self.sent = []

    def variant(self):
        return self._variant

    def pack_shared(self, msgs, base):
        RecordingSink.packs.append((tuple(m.timestamp for m in msgs), base))
        return [m.payload for m in msgs], sum(len(m.payload) for m in msgs), len(msgs)

    def send_shared(self, iov, wire, media):
        self.sent.append((iov, wire))
        return True


def test_due_steady_players_share_one_encoding_and_stay_parked():
    import gevent

    src = make_source(time_jitter="off")
    src.on_video(key(0))
    players = []
    for variant in (("rec",), ("rec",), ("other",)):
        c = src.create_consumer(mw_msgs=0, mw_sleep=0)
        c.start_at([], src.log.start, False)
        assert c.dump() and c.started  # the first write, by the player itself
        c.fresh = False
        c.sink = RecordingSink(variant)
        players.append(c)
    woke = []

    def park(c):
        c.wait(2.0)
        woke.append(c)

    RecordingSink.packs.clear()
    jobs = [gevent.spawn(park, c) for c in players]
    gevent.sleep(0)
    src.on_video(inter(40))
    src.on_video(inter(80))
    wait_until(lambda: RecordingSink.packs, 2, interval=0.01, what="the hub callback")  # it runs once the publisher yields
    assert RecordingSink.packs == [((40, 80), 0), ((40, 80), 0)]  # one per variant, not per player
    for c in players:
        assert [w for _, w in c.sink.sent] == [len(inter(40).payload) * 2]
        assert c.cursor == src.log.end
    assert woke == []  # nobody was woken: the writes were done for them
    for c in players:
        c.dispose()
    gevent.joinall(jobs, timeout=3)


def test_on_message_takes_aggregates_data_and_refuses_commands():
    from srspy.kernel.flv import encode_tag
    from srspy.kernel.message import AGGREGATE, AMF0_COMMAND, AMF3_DATA
    from srspy.kernel import amf0

    src = make_source(time_jitter="off")
    body = encode_tag(9, 1000, key(0).payload) + encode_tag(8, 1023, audio(0).payload)
    assert src.on_message(MediaMessage(AGGREGATE, 5000, 1, body))
    assert [(m.type, m.timestamp) for m in src.log.msgs] == [(VIDEO, 5000), (AUDIO, 5023)]
    meta = amf0.encode_all("onMetaData", {"width": 640.0})
    assert src.on_message(MediaMessage(AMF3_DATA, 0, 1, b"\x00" + meta))
    assert src.meta.metadata is not None
    assert not src.on_message(MediaMessage(AMF0_COMMAND, 0, 1, amf0.encode_all("FCUnpublish", 3.0, None)))


def test_a_parked_player_that_is_not_steady_gets_its_own_batch():
    import gevent

    src = make_source(time_jitter="off")
    src.on_video(key(0))
    c = src.create_consumer(mw_msgs=0, mw_sleep=0)
    c.start_at([], src.log.end, True)  # waits for the next keyframe
    c.started, c.fresh = True, False
    c.sink = RecordingSink()
    woke = []

    def park():
        c.wait(2.0)
        woke.append(True)

    job = gevent.spawn(park)
    gevent.sleep(0)
    RecordingSink.packs.clear()
    src.on_video(inter(40))  # skipped: not a keyframe
    src.on_video(key(80))
    wait_until(lambda: RecordingSink.packs, 2, interval=0.01, what="the hub callback")
    # the frame before the keyframe was skipped by its own dump; the keyframe written for it
    assert RecordingSink.packs == [((80,), 0)] and len(c.sink.sent) == 1
    assert woke == []
    c.dispose()
    job.join(3)


def test_malformed_or_oversized_metadata_is_dropped_with_a_warning():
    from loguru import logger

    from srspy.kernel import amf0
    from srspy.kernel.message import AMF0_DATA
    from srspy.live.meta import MAX_METADATA_BYTES, MetaCache

    warnings: list[str] = []
    sink = logger.add(lambda m: warnings.append(m), format="{message}", level="WARNING")
    try:
        cache = MetaCache()
        good = amf0.encode_all("@setDataFrame", "onMetaData", amf0.EcmaArray(width=640.0, duration=3.0))
        assert cache.update_metadata(MediaMessage(AMF0_DATA, 0, 1, good)) is not None
        kept = cache.metadata
        refs = amf0.encode_all("onMetaData") + b"\x08\x00\x00\x00\x01\x00\x01a\x07\x00\x00\x00\x00\x09"
        assert cache.update_metadata(MediaMessage(AMF0_DATA, 0, 1, refs)) is None
        big = amf0.encode_all("onMetaData", {"pad": "x" * MAX_METADATA_BYTES})
        assert cache.update_metadata(MediaMessage(AMF0_DATA, 0, 1, big)) is None
    finally:
        logger.remove(sink)
    assert cache.metadata is kept  # the last good metadata stays for new players
    assert amf0.decode_all(kept.payload)[1]["width"] == 640.0
    assert len(warnings) == 2
    assert "reference marker 0x07" in warnings[0] and f"larger than {MAX_METADATA_BYTES}" in warnings[1]
