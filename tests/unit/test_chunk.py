"""RTMP chunk decoder and encoder: captured ffmpeg bytes, hand-made chunks, round trips."""

from __future__ import annotations

import os
import random
import time

import pytest
from hypothesis import given, settings, strategies as st

from srspy.errors import ChunkSizeError, MessageSizeError, RtmpProtocolError
from srspy.rtmp import chunk
from srspy.kernel import amf0
from srspy.rtmp.chunk import MAX_IOVEC_HEADER, ChunkDecoder, ChunkEncoder
from srspy.rtmp.message import ABORT, SET_CHUNK_SIZE, USER_CONTROL
from srspy.kernel.message import AMF0_COMMAND, AMF0_DATA, AUDIO, VIDEO, MediaMessage

VECTORS = os.path.join(os.path.dirname(__file__), "..", "vectors")
CAPTURES = ["ffmpeg_publish_c2s.bin", "ffmpeg_publish_av_c2s.bin"]


def load(name: str) -> bytes:
    with open(os.path.join(VECTORS, name), "rb") as f:
        return f.read()


# ------------------------------------------------------------------ test helpers

def basic(fmt: int, cs: int, width: int | None = None) -> bytes:
    """Chunk basic header, written independently of the encoder."""
    width = width or (1 if cs < 64 else 2 if cs < 320 else 3)
    if width == 1:
        return bytes([fmt << 6 | cs])
    if width == 2:
        return bytes([fmt << 6, cs - 64])
    return bytes([fmt << 6 | 1, (cs - 64) % 256, (cs - 64) // 256])


def header(fmt: int, cs: int, ts: int = 0, length: int = 0, mtype: int = 0, sid: int = 0,
           ext: int | None = None) -> bytes:
    """A chunk header; the extended timestamp is added when ``ts`` needs it (or given)."""
    out = basic(fmt, cs)
    if fmt <= 2:
        out += min(ts, 0xFFFFFF).to_bytes(3, "big")
        if ts >= 0xFFFFFF and ext is None:
            ext = ts
    if fmt <= 1:
        out += length.to_bytes(3, "big") + bytes([mtype])
    if fmt == 0:
        out += sid.to_bytes(4, "little")
    if ext is not None:
        out += ext.to_bytes(4, "big")
    return out


def fields(msgs):
    return [(m.type, m.timestamp, m.stream_id, m.payload, m.cs_id) for m in msgs]


def decode_whole(data: bytes, chunk_size: int | None = None) -> list:
    d = ChunkDecoder()
    if chunk_size:
        d.set_chunk_size(chunk_size)
    out = d.feed(data)
    assert d.buffered == 0
    return out


def decode_split(data: bytes, sizes, chunk_size: int | None = None) -> list:
    d = ChunkDecoder()
    if chunk_size:
        d.set_chunk_size(chunk_size)
    out, pos = [], 0
    for n in sizes:
        out += d.feed(data[pos:pos + n])
        pos += n
    out += d.feed(data[pos:])
    assert d.bytes_received == len(data)
    assert d.buffered == 0
    return out


def decode_bytewise(data: bytes, chunk_size: int | None = None) -> list:
    return decode_split(data, [1] * len(data), chunk_size)


def random_sizes(rng: random.Random, total: int, biggest: int) -> list:
    sizes = []
    while total > 0:
        n = rng.randint(0, biggest)
        sizes.append(n)
        total -= n
    return sizes


def payload(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


# ------------------------------------------------------------ captured ffmpeg (E1, E8)

@pytest.mark.parametrize("name", CAPTURES)
def test_capture_whole_bytewise_and_random_splits_agree(name):
    data = load(name)
    whole = decode_whole(data)
    assert fields(decode_bytewise(data)) == fields(whole)
    rng = random.Random(name)
    for biggest in (3, 17, 200, 5000):
        assert fields(decode_split(data, random_sizes(rng, len(data), biggest))) == fields(whole)
    assert all(type(m.payload) is bytes for m in whole)


def test_capture_content():
    msgs = decode_whole(load("ffmpeg_publish_c2s.bin"))
    commands = [amf0.decode_all(m.payload)[0] for m in msgs if m.type == AMF0_COMMAND]
    assert commands == ["connect", "releaseStream", "FCPublish", "createStream", "publish", "FCUnpublish",
                        "deleteStream"]
    assert [(m.type, m.cs_id, m.stream_id) for m in msgs[:6]] == [
        (AMF0_COMMAND, 3, 0), (AMF0_COMMAND, 3, 0), (AMF0_COMMAND, 3, 0), (AMF0_COMMAND, 3, 0),
        (AMF0_COMMAND, 8, 1), (AMF0_DATA, 4, 1)]
    video = [m for m in msgs if m.type == VIDEO]
    assert [m.timestamp for m in video] == [0, 0, 200, 400, 600, 800, 800]
    assert video[0].payload[:2] == b"\x17\x00"  # AVC sequence header
    assert video[1].payload[0] == 0x17 and len(video[1].payload) == 2543  # keyframe, 20 chunks
    assert video[-1].payload == b"\x17\x02\x00\x00\x00"  # end of sequence


def test_capture_interleaves_audio_and_video():
    msgs = decode_whole(load("ffmpeg_publish_av_c2s.bin"))
    audio = [m for m in msgs if m.type == AUDIO]
    video = [m for m in msgs if m.type == VIDEO]
    assert len(audio) == 46 and len(video) == 7
    assert {m.cs_id for m in audio} == {4} and {m.cs_id for m in video} == {6}
    assert audio[0].payload[:2] == b"\xaf\x00"  # AAC sequence header
    assert [m.timestamp for m in audio] == sorted(m.timestamp for m in audio)


@pytest.mark.parametrize("name", CAPTURES)
def test_capture_reencodes_to_the_same_messages(name):
    msgs = decode_whole(load(name))
    enc = ChunkEncoder(128)
    data = b"".join(enc.encode(m, m.cs_id) for m in msgs)
    assert fields(decode_whole(data)) == fields(msgs)


# ------------------------------------------------------------------ header formats

def test_timestamp_deltas_of_fmt_1_2_3():
    p = payload(10)
    data = (header(0, 4, ts=1000, length=10, mtype=AUDIO, sid=1) + p
            + header(2, 4, ts=20) + p  # delta 20, same length and type
            + basic(3, 4) + p  # same delta again
            + header(1, 4, ts=5, length=3, mtype=VIDEO) + p[:3]  # new length and type
            + basic(3, 4) + p[:3])
    msgs = decode_whole(data)
    assert [(m.type, m.timestamp, m.stream_id, len(m.payload)) for m in msgs] == [
        (AUDIO, 1000, 1, 10), (AUDIO, 1020, 1, 10), (AUDIO, 1040, 1, 10), (VIDEO, 1045, 1, 3), (VIDEO, 1050, 1, 3)]
    assert fields(decode_bytewise(data)) == fields(msgs)


def test_type3_after_type0_uses_its_timestamp_as_delta():
    # The FMLE case in SRS's comments: 04 ts=26, then a bare c4 starts the next message.
    p = payload(157)
    data = header(0, 4, ts=26, length=157, mtype=AUDIO, sid=1) + p[:128] + basic(3, 4) + p[128:]
    data += basic(3, 4) + p[:128] + basic(3, 4) + p[128:]
    msgs = decode_whole(data)
    assert [m.timestamp for m in msgs] == [26, 52]
    assert all(m.payload == p for m in msgs)


@pytest.mark.parametrize("cs, raw", [
    (2, b"\x02"), (63, b"\x3f"), (64, b"\x00\x00"), (319, b"\x00\xff"),
    (320, b"\x01\x00\x01"), (65599, b"\x01\xff\xff"), (1000, b"\x01\xa8\x03"),
])
def test_chunk_stream_id_forms(cs, raw):
    assert basic(0, cs) == raw
    enc = ChunkEncoder()
    m = MediaMessage(AUDIO, 7, 1, b"abc")
    data = enc.encode(m, cs)
    assert data.startswith(raw)
    assert fields(decode_whole(data)) == [(AUDIO, 7, 1, b"abc", cs)]


def test_three_byte_form_is_little_endian_and_may_carry_small_ids():
    # id = 64 + b1 + b2 * 256
    data = b"\x01\x10\x02" + (0).to_bytes(3, "big") + (2).to_bytes(3, "big") + b"\x08" + bytes(4) + b"xy"
    assert decode_whole(data)[0].cs_id == 64 + 0x10 + 0x02 * 256
    # ids 64..319 may also be sent in the 3-byte form
    data = basic(0, 100, width=3) + header(0, 2, length=1, mtype=8)[1:] + b"z"
    assert decode_whole(data)[0].cs_id == 100


def test_fresh_chunk_stream_rules():
    # fmt 1 on a fresh stream is accepted (librtmp sends a ping this way).
    ping = bytes.fromhex("42" "000000" "000006" "04") + bytes.fromhex("0006" "00000d0f")
    assert fields(decode_whole(ping)) == [(USER_CONTROL, 0, 0, bytes.fromhex("000600000d0f"), 2)]
    for fmt in (2, 3):
        data = header(fmt, 5, ts=1) + b"x"
        with pytest.raises(RtmpProtocolError, match=f"fresh chunk stream 5 must start with fmt 0, got fmt {fmt}") as ei:
            ChunkDecoder().feed(data)
        assert ei.value.code == 2002


def test_fmt0_inside_an_unfinished_message_is_an_error():
    data = header(0, 6, length=200, mtype=VIDEO) + payload(128) + header(0, 6, length=200, mtype=VIDEO)
    with pytest.raises(RtmpProtocolError, match="fmt 0 on cs 6 inside an unfinished message") as ei:
        ChunkDecoder().feed(data)
    assert ei.value.code == 2002


def test_fmt1_may_not_change_the_length_of_an_unfinished_message():
    p = payload(200)
    ok = header(0, 6, length=200, mtype=VIDEO) + p[:128] + header(1, 6, ts=0, length=200, mtype=VIDEO) + p[128:]
    assert decode_whole(ok)[0].payload == p
    bad = header(0, 6, length=200, mtype=VIDEO) + p[:128] + header(1, 6, ts=0, length=300, mtype=VIDEO)
    with pytest.raises(MessageSizeError, match="size 200 cannot change to 300"):
        ChunkDecoder().feed(bad)


def test_a_broken_decoder_stays_broken():
    d = ChunkDecoder()
    with pytest.raises(RtmpProtocolError) as ei:
        d.feed(header(3, 9))
    with pytest.raises(RtmpProtocolError) as again:
        d.feed(header(0, 3, length=1, mtype=8) + b"x")
    assert again.value is ei.value


def test_empty_messages_are_returned():
    data = header(0, 3, ts=5, length=0, mtype=AMF0_COMMAND) + basic(3, 3) + header(0, 3, ts=9, length=1, mtype=8) + b"x"
    assert [(m.timestamp, m.payload) for m in decode_whole(data)] == [(5, b""), (10, b""), (9, b"x")]
    enc = ChunkEncoder()
    assert enc.encode(MediaMessage(9, 1, 1, b""), 6) == header(0, 6, ts=1, length=0, mtype=9, sid=1)


# -------------------------------------------------------------- extended timestamps

def test_extended_timestamp_repeated_on_continuation_chunks():
    p = payload(300)
    ts = 0x01234567
    data = (header(0, 6, ts=ts, length=300, mtype=VIDEO, sid=1) + p[:128]
            + basic(3, 6) + ts.to_bytes(4, "big") + p[128:256]
            + basic(3, 6) + ts.to_bytes(4, "big") + p[256:])
    assert ChunkEncoder(128).encode(MediaMessage(VIDEO, ts, 1, p), 6) == data
    for msgs in (decode_whole(data), decode_bytewise(data)):
        assert fields(msgs) == [(VIDEO, ts, 1, p, 6)]


def test_extended_timestamp_absent_from_continuation_chunks():
    p = payload(300, seed=2)
    ts = 0x01234567
    data = (header(0, 6, ts=ts, length=300, mtype=VIDEO, sid=1) + p[:128]
            + basic(3, 6) + p[128:256] + basic(3, 6) + p[256:])
    data += header(0, 4, ts=1, length=2, mtype=AUDIO, sid=1) + b"ok"  # look-ahead needs more bytes
    for msgs in (decode_whole(data), decode_bytewise(data)):
        assert fields(msgs) == [(VIDEO, ts, 1, p, 6), (AUDIO, 1, 1, b"ok", 4)]


def test_extended_delta_on_fmt1_and_on_a_type3_message_start():
    data = (header(0, 4, ts=100, length=1, mtype=AUDIO, sid=1) + b"a"
            + header(1, 4, ts=0xFFFFFF, length=1, mtype=AUDIO, ext=0x01000000) + b"b"
            + basic(3, 4) + (0x01000000).to_bytes(4, "big") + b"c"  # a new message: delta again
            + header(0, 5, ts=0x02000000, length=1, mtype=AUDIO, sid=1) + b"d"
            + basic(3, 5) + (7).to_bytes(4, "big") + b"e")  # after fmt 0 with ext: the delta is explicit
    msgs = decode_whole(data)
    assert [(m.payload, m.timestamp) for m in msgs] == [
        (b"a", 100), (b"b", 100 + 0x01000000), (b"c", 100 + 0x02000000), (b"d", 0x02000000), (b"e", 0x02000007)]
    assert fields(decode_bytewise(data)) == fields(msgs)


def test_timestamps_are_31_bits_as_in_srs():
    data = header(0, 4, ts=0xFFFFFF, length=1, mtype=AUDIO, ext=0xFFFFFFFF) + b"x"
    assert decode_whole(data)[0].timestamp == 0x7FFFFFFF
    data = header(0, 4, ts=0x7FFFFFFF, length=1, mtype=AUDIO) + b"x" + header(2, 4, ts=2) + b"y"
    assert [m.timestamp for m in decode_whole(data)] == [0x7FFFFFFF, 1]


def test_exactly_0xffffff_needs_the_extended_field():
    m = MediaMessage(AUDIO, 0xFFFFFF, 1, b"x")
    data = ChunkEncoder().encode(m, 4)
    assert data == header(0, 4, ts=0xFFFFFF, length=1, mtype=AUDIO, sid=1) + b"x"
    assert len(data) == 1 + 11 + 4 + 1
    assert decode_whole(data)[0].timestamp == 0xFFFFFF


# ------------------------------------------------------------ interleaving, control

def test_interleaved_chunks_of_two_streams():
    a, b = payload(300, 1), payload(200, 2)
    data = (header(0, 6, ts=40, length=300, mtype=VIDEO, sid=1) + a[:128]
            + header(0, 4, ts=23, length=200, mtype=AUDIO, sid=1) + b[:128]
            + basic(3, 6) + a[128:256]
            + basic(3, 4) + b[128:]
            + basic(3, 6) + a[256:])
    for msgs in (decode_whole(data), decode_bytewise(data)):
        assert fields(msgs) == [(AUDIO, 23, 1, b, 4), (VIDEO, 40, 1, a, 6)]


def test_set_chunk_size_mid_stream():
    enc = ChunkEncoder(128)
    big = MediaMessage(VIDEO, 1, 1, payload(10000))
    data = enc.encode(big, 6) + enc.encode(chunk.set_chunk_size(4096), 2)
    enc.set_chunk_size(4096)
    data += enc.encode(big, 6)
    for split in (None, 1, 7):
        d = ChunkDecoder()
        if split is None:
            msgs = d.feed(data)
        else:
            msgs = [m for i in range(0, len(data), split) for m in d.feed(data[i:i + split])]
        assert [m.type for m in msgs] == [VIDEO, SET_CHUNK_SIZE, VIDEO]
        assert msgs[0] == big and msgs[2] == big
        assert msgs[1].payload == (4096).to_bytes(4, "big")
        assert d.chunk_size == 4096


@pytest.mark.parametrize("value", [128, 4096, 60000, 65536, 65537, 0x7FFFFFFF])
def test_set_chunk_size_accepted(value):
    d = ChunkDecoder()
    d.feed(ChunkEncoder().encode(chunk.set_chunk_size(value), 2))
    assert d.chunk_size == value


@pytest.mark.parametrize("value", [0, 1, 127, 0x80000000, 0xFFFFFFFF])
def test_set_chunk_size_refused(value):
    with pytest.raises(ChunkSizeError, match=f"chunk size should be 128\\+, value={value}") as ei:
        ChunkDecoder().feed(ChunkEncoder().encode(chunk.set_chunk_size(value), 2))
    assert ei.value.code == 2010


def test_short_protocol_control_payload():
    with pytest.raises(RtmpProtocolError, match="needs 4 bytes, got 2"):
        ChunkDecoder().feed(header(0, 2, length=2, mtype=SET_CHUNK_SIZE) + b"\x00\x01")


def test_abort_drops_the_unfinished_message():
    first, second = payload(300, 5), payload(50, 6)
    data = (header(0, 6, ts=1, length=300, mtype=VIDEO, sid=1) + first[:128]
            + ChunkEncoder().encode(chunk.abort(6), 2)
            + ChunkEncoder().encode(chunk.abort(9), 2)  # nothing to abort there
            + header(0, 6, ts=2, length=50, mtype=VIDEO, sid=1) + second)
    for msgs in (decode_whole(data), decode_bytewise(data)):
        assert [(m.type, m.payload) for m in msgs] == [
            (ABORT, (6).to_bytes(4, "big")), (ABORT, (9).to_bytes(4, "big")), (VIDEO, second)]


def test_message_size_limit_before_any_payload():
    d = ChunkDecoder(max_message_size=8 * 1024 * 1024)
    # The 24-bit length field tops out at 16 MiB - 1, the most a peer can claim.
    with pytest.raises(MessageSizeError, match="message of 16777215 bytes on cs 6 exceeds 8388608") as ei:
        d.feed(header(0, 6, length=0xFFFFFF, mtype=VIDEO))
    assert ei.value.code == 2003
    assert d.buffered == 12
    d = ChunkDecoder(max_message_size=1000)
    with pytest.raises(MessageSizeError):
        d.feed(header(0, 6, length=10, mtype=VIDEO) + bytes(10) + header(1, 6, length=1001, mtype=VIDEO))
    d = ChunkDecoder()
    d.set_chunk_size(1000)
    d.max_message_size = 1000
    assert len(d.feed(header(0, 6, length=1000, mtype=VIDEO) + bytes(1000))[0].payload) == 1000


def test_receive_buffer_holds_only_unparsed_bytes_while_a_message_is_unfinished():
    big = payload(3_000_000, 7)
    d = ChunkDecoder()
    d.set_chunk_size(1000)
    enc = ChunkEncoder(1000)
    d.feed(header(0, 6, length=len(big), mtype=VIDEO) + big[:1000])
    small = enc.encode(MediaMessage(AUDIO, 0, 1, payload(900, 8)), 4)
    pieces = [big[i:i + 1000] for i in range(1000, len(big), 1000)]
    got = []
    for i, p in enumerate(pieces):
        got += d.feed(small + basic(3, 6) + p)
        assert len(d._buf) == 0
        assert d.pending_bytes == (0 if i == len(pieces) - 1 else 1000 * (i + 2))
    assert len(got) == len(pieces) + 1
    assert got[-1].type == VIDEO and got[-1].payload == big
    assert d.buffered == 0


def test_chunk_stream_ids_are_capped_per_connection():
    d = ChunkDecoder(max_chunk_streams=3)
    ok = b"".join(header(0, cs, length=1, mtype=AUDIO) + b"x" for cs in (3, 300, 65599))
    assert len(d.feed(ok)) == 3 and d.chunk_streams == 3
    assert len(d.feed(header(0, 300, length=1, mtype=AUDIO) + b"y")) == 1  # a known id again
    with pytest.raises(RtmpProtocolError, match="cs 7 would be chunk stream 4, more than 3") as ei:
        d.feed(header(0, 7, length=1, mtype=AUDIO) + b"z")
    assert ei.value.code == 2002
    assert d.chunk_streams == 3
    assert chunk.MAX_CHUNK_STREAMS == ChunkDecoder().max_chunk_streams == 64


def test_unfinished_messages_are_capped_across_chunk_streams():
    d = ChunkDecoder(max_message_size=1000, max_pending_bytes=2500)
    # Three unfinished 1000-byte messages on three chunk streams, 900 bytes each: 2700 > 2500.
    data = b"".join(header(0, cs, length=1000, mtype=VIDEO) + bytes(128) for cs in (4, 5, 6))
    assert d.feed(data) == [] and d.pending_bytes == 384
    with pytest.raises(MessageSizeError, match="unfinished messages on 3 chunk streams hold more than 2500 bytes"):
        for _ in range(6):
            d.feed(b"".join(basic(3, cs) + bytes(128) for cs in (4, 5, 6)))
    assert d.pending_bytes <= 2500 + 128


def test_finished_and_aborted_messages_release_their_pending_bytes():
    d = ChunkDecoder(max_pending_bytes=300)
    for _ in range(50):  # far more than 300 bytes in all, never more than 200 unfinished
        d.feed(header(0, 6, length=200, mtype=VIDEO) + bytes(128))
        assert d.pending_bytes == 128
        d.feed(basic(3, 6) + bytes(72))
        d.feed(header(0, 5, length=200, mtype=VIDEO) + bytes(128))
        d.feed(ChunkEncoder().encode(chunk.abort(5), 2))
        assert d.pending_bytes == 0


def test_feed_cost_does_not_grow_with_the_number_of_unfinished_messages():
    def cost(streams: int) -> float:
        d = ChunkDecoder(max_chunk_streams=streams + 1, max_pending_bytes=1 << 30)
        d.feed(b"".join(header(0, cs, length=1_000_000, mtype=VIDEO) + bytes(128) for cs in range(3, 3 + streams)))
        one = basic(3, 3) + bytes(128)
        t0 = time.perf_counter()
        for _ in range(3000):
            d.feed(one)
        return time.perf_counter() - t0

    cost(2)
    few = min(cost(2) for _ in range(3))
    many = min(cost(1000) for _ in range(3))
    assert many < 3 * few, (few, many)


def test_bytes_received_counts_everything_fed():
    d = ChunkDecoder()
    d.feed(b"\x03\x00")
    d.feed(memoryview(b"\x00\x00"))
    d.feed(bytearray(b"\x00\x00\x01"))
    assert d.bytes_received == 7 and d.buffered == 7


# --------------------------------------------------------------------- round trips

_types = st.sampled_from([0, 3, 4, 5, 6, AUDIO, VIDEO, 15, 16, 17, AMF0_DATA, 19, AMF0_COMMAND, 22, 255])
_timestamps = st.one_of(st.integers(0, 0xFFFFFE), st.integers(0xFFFFFD, 0x7FFFFFFF), st.just(0xFFFFFF))
_cs_ids = st.one_of(st.integers(2, 63), st.integers(64, 319), st.integers(320, 65599), st.sampled_from([3, 4, 6]))
_chunk_sizes = st.one_of(st.integers(1, 300), st.integers(1, 65536), st.sampled_from([128, 4096, 60000, 65536]))


@st.composite
def _messages(draw, chunk_size: int, count: int):
    out = []
    for _ in range(count):
        size = draw(st.one_of(st.integers(0, 300), st.integers(0, min(200_000, chunk_size * 400))))
        msg = MediaMessage(draw(_types), draw(_timestamps), draw(st.integers(0, 2**32 - 1)),
                          payload(size, draw(st.integers(0, 1000))))
        out.append((msg, draw(_cs_ids)))
    return out


@settings(max_examples=120, deadline=None)
@given(st.data())
def test_round_trip_random_messages_and_splits(data):
    chunk_size = data.draw(_chunk_sizes, "chunk_size")
    msgs = data.draw(_messages(chunk_size, data.draw(st.integers(1, 6))), "messages")
    announce = chunk_size >= 128 and data.draw(st.booleans(), "announce")
    enc = ChunkEncoder(128)
    wire = b""
    expected = []
    if announce:
        ctl = chunk.set_chunk_size(chunk_size)
        wire += enc.encode(ctl, 2)
        expected.append((SET_CHUNK_SIZE, 0, 0, ctl.payload, 2))
    enc.set_chunk_size(chunk_size)
    for m, cs in msgs:
        wire += enc.encode(m, cs)
        expected.append((m.type, m.timestamp, m.stream_id, m.payload, cs))
    preset = None if announce else chunk_size
    assert fields(decode_whole(wire, preset)) == expected
    rng = random.Random(data.draw(st.integers(0, 2**32), "seed"))
    biggest = data.draw(st.sampled_from([1, 5, 100, 4096, 70000]), "biggest")
    if biggest > 1 or len(wire) < 20000:
        assert fields(decode_split(wire, random_sizes(rng, len(wire), biggest), preset)) == expected


def _chunks_of(msg: MediaMessage, cs: int, enc: ChunkEncoder) -> list[bytes]:
    bufs, _ = enc.encode_iovecs(msg, cs, msg.timestamp, bytearray(MAX_IOVEC_HEADER), 0)
    return [bytes(bufs[i]) + bytes(bufs[i + 1] if i + 1 < len(bufs) else b"") for i in range(0, len(bufs), 2)]


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_round_trip_interleaved_streams(data):
    chunk_size = data.draw(st.sampled_from([1, 2, 50, 128, 1000]), "chunk_size")
    cs_ids = data.draw(st.lists(_cs_ids, min_size=2, max_size=5, unique=True), "cs_ids")
    enc = ChunkEncoder(chunk_size)
    queues = {}
    for cs in cs_ids:
        m = MediaMessage(data.draw(_types), data.draw(_timestamps), 1,
                        payload(data.draw(st.integers(0, 3000)), data.draw(st.integers(0, 99))))
        queues[cs] = (m, _chunks_of(m, cs, enc))
    rng = random.Random(data.draw(st.integers(0, 2**32), "seed"))
    wire, order, left = b"", [], {cs: list(c) for cs, (m, c) in queues.items()}
    while left:
        cs = rng.choice(sorted(left))
        wire += left[cs].pop(0)
        if not left[cs]:
            del left[cs]
            order.append(cs)
    expected = [(queues[cs][0].type, queues[cs][0].timestamp, 1, queues[cs][0].payload, cs) for cs in order]
    assert fields(decode_whole(wire, chunk_size)) == expected
    assert fields(decode_split(wire, random_sizes(rng, len(wire), 7), chunk_size)) == expected


# ------------------------------------------------------------------------- encoder

@pytest.mark.parametrize("size", [0, 1, 127, 128, 129, 256, 1000, 70000])
@pytest.mark.parametrize("ts", [0, 1000, 0xFFFFFE, 0xFFFFFF, 0x12345678])
@pytest.mark.parametrize("cs", [3, 64, 400])
def test_encode_iovecs_equals_encode(size, ts, cs):
    enc = ChunkEncoder(128)
    m = MediaMessage(VIDEO, ts, 1, payload(size))
    hdr = bytearray(64)
    bufs, end = enc.encode_iovecs(m, cs, ts, hdr, 10)
    assert b"".join(bufs) == enc.encode(m, cs)
    assert 10 < end <= 10 + MAX_IOVEC_HEADER
    assert len(bufs) == (1 if size == 0 else 2 * -(-size // 128))


def test_encode_iovecs_uses_the_per_player_timestamp():
    enc = ChunkEncoder(100)
    m = MediaMessage(AUDIO, 5, 1, payload(250))
    bufs, _ = enc.encode_iovecs(m, 4, 0x1000000, bytearray(32), 0)
    assert b"".join(bufs) == enc.encode(m.copy(timestamp=0x1000000), 4)
    assert m.timestamp == 5


def test_encode_iovecs_batch_in_one_header_buffer():
    enc = ChunkEncoder(60000)
    msgs = [MediaMessage(VIDEO if i % 2 else AUDIO, i * 40, 1, payload(i * 9000, i)) for i in range(1, 20)]
    hdr = bytearray(MAX_IOVEC_HEADER * len(msgs))
    out, off = [], 0
    for m in msgs:
        bufs, off = enc.encode_iovecs(m, 6 if m.type == VIDEO else 4, m.timestamp, hdr, off)
        out += bufs
    assert b"".join(out) == b"".join(enc.encode(m, 6 if m.type == VIDEO else 4) for m in msgs)


def test_payload_slices_are_shared_and_cached_per_chunk_size():
    m = MediaMessage(VIDEO, 0, 1, payload(1000))
    a, b = ChunkEncoder(128), ChunkEncoder(128)
    s1 = a.payload_slices(m)
    assert b.payload_slices(m) is s1  # one computation for every player at this size
    assert all(s.obj is m.payload for s in s1)  # views of the payload, no copy
    assert b"".join(s1) == m.payload
    c = ChunkEncoder(4096)
    assert c.payload_slices(m) == [m.payload]
    assert a.payload_slices(m) is not s1  # recomputed after the size changed
    small = MediaMessage(AUDIO, 0, 1, b"abc")
    assert a.payload_slices(small)[0] is small.payload


def test_foreign_cache_content_is_left_alone():
    m = MediaMessage(VIDEO, 0, 1, payload(300))
    marker = object()
    m._cache = marker
    enc = ChunkEncoder(128)
    bufs, _ = enc.encode_iovecs(m, 6, 0, bytearray(32), 0)
    assert b"".join(bufs) == enc.encode(m, 6)
    assert m._cache is marker


def test_encoder_errors():
    enc = ChunkEncoder()
    with pytest.raises(ValueError, match="header buffer of 10 bytes is full at offset 0"):
        enc.encode_iovecs(MediaMessage(VIDEO, 0, 1, payload(300)), 6, 0, bytearray(10), 0)
    for cs in (0, 1, 65600):
        with pytest.raises(ValueError, match="chunk stream id"):
            enc.encode(MediaMessage(VIDEO, 0, 1, b"x"), cs)
        with pytest.raises(ValueError, match="chunk stream id"):
            enc.encode_iovecs(MediaMessage(VIDEO, 0, 1, b"x"), cs, 0, bytearray(32), 0)
    with pytest.raises(ValueError, match="chunk size 0"):
        enc.set_chunk_size(0)
    with pytest.raises(ValueError, match="24-bit length"):
        enc.encode(MediaMessage(VIDEO, 0, 1, bytes(0x1000000)), 6)


def test_encoder_chunk_size_one():
    enc = ChunkEncoder(1)
    m = MediaMessage(AUDIO, 3, 1, b"abc")
    assert enc.encode(m, 4) == header(0, 4, ts=3, length=3, mtype=AUDIO, sid=1) + b"a\xc4b\xc4c"


# ------------------------------------------------------------ control message helpers

@pytest.mark.parametrize("msg, mtype, raw", [
    (chunk.set_chunk_size(60000), 1, "0000ea60"),
    (chunk.abort(6), 2, "00000006"),
    (chunk.acknowledgement(2500000), 3, "002625a0"),
    (chunk.window_ack_size(2500000), 5, "002625a0"),
    (chunk.set_peer_bandwidth(2500000, 2), 6, "002625a002"),
    (chunk.user_control(0, 1), 4, "000000000001"),
    (chunk.user_control(3, 1, 3000), 4, "00030000000100000bb8"),
    (chunk.user_control(7, 0xFFFFFFFF), 4, "0007ffffffff"),
])
def test_control_messages(msg, mtype, raw):
    assert (msg.type, msg.timestamp, msg.stream_id, msg.cs_id) == (mtype, 0, 0, 2)
    assert msg.payload == bytes.fromhex(raw)
