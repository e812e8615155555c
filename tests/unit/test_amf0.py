"""AMF0 codec: exact bytes, captured ffmpeg commands, hostile input, round trips."""

from __future__ import annotations

import math
import os
import struct
import time

import pytest
from hypothesis import given, settings, strategies as st

from srspy.errors import Amf0Error
from srspy.kernel import amf0
from srspy.kernel.amf0 import UNDEFINED, Amf0Date, EcmaArray, TypedObject
from srspy.rtmp.chunk import ChunkDecoder

VECTORS = os.path.join(os.path.dirname(__file__), "..", "vectors")


def load(name: str) -> bytes:
    with open(os.path.join(VECTORS, name), "rb") as f:
        return f.read()


def tagged(v):
    """A structure that also compares the container types (dict == EcmaArray otherwise)."""
    if isinstance(v, TypedObject):
        return ("typed", v.class_name, {k: tagged(x) for k, x in v.items()})
    if isinstance(v, EcmaArray):
        return ("ecma", {k: tagged(x) for k, x in v.items()})
    if isinstance(v, dict):
        return ("object", {k: tagged(x) for k, x in v.items()})
    if isinstance(v, Amf0Date):
        return ("date", v.ms, v.tz)
    if isinstance(v, (list, tuple)):
        return ("array", [tagged(x) for x in v])
    if isinstance(v, float) or (isinstance(v, int) and not isinstance(v, bool)):
        return ("number", float(v))
    return (type(v).__name__, v)


# ------------------------------------------------------------------ exact encodings

@pytest.mark.parametrize("value, hexbytes", [
    (1.0, "003ff0000000000000"),
    (0, "000000000000000000"),
    (-2.5, "00c004000000000000"),
    (True, "0101"),
    (False, "0100"),
    ("", "020000"),
    ("ab", "0200026162"),
    (None, "05"),
    (UNDEFINED, "06"),
    ({}, "03000009"),
    ({"a": 1.0}, "03" + "000161" + "003ff0000000000000" + "000009"),
    (EcmaArray(), "0800000000000009"),
    (EcmaArray(k=None), "0800000001" + "00016b05" + "000009"),
    ([], "0a00000000"),
    ([None, True], "0a00000002" + "05" + "0101"),
    (Amf0Date(1.0, 0), "0b3ff00000000000000000"),
    (Amf0Date(0.0, -60), "0b0000000000000000ffc4"),
    (TypedObject("C", x=None), "10000143" + "00017805" + "000009"),
])
def test_exact_bytes(value, hexbytes):
    data = bytes.fromhex(hexbytes)
    assert amf0.encode(value) == data
    decoded, end = amf0.decode(data)
    assert end == len(data)
    assert tagged(decoded) == tagged(value)


def test_int_encodes_as_number_and_bool_does_not():
    assert amf0.encode(3) == amf0.encode(3.0)
    assert amf0.encode(True) != amf0.encode(1)
    assert amf0.decode(amf0.encode(3))[0] == 3.0 and type(amf0.decode(amf0.encode(3))[0]) is float


def test_string_switches_to_long_string_above_65535_bytes():
    s = "x" * 65535
    assert amf0.encode(s)[:3] == b"\x02\xff\xff"
    long = "x" * 65536
    data = amf0.encode(long)
    assert data[:5] == b"\x0c\x00\x01\x00\x00"
    assert amf0.decode(data) == (long, len(data))
    # The limit is on UTF-8 bytes, not characters.
    wide = "\u00e9" * 40000  # 80000 bytes
    assert amf0.encode(wide)[0] == amf0.LONG_STRING
    assert amf0.decode(amf0.encode(wide))[0] == wide


def test_utf8_and_invalid_utf8_round_trip():
    assert amf0.decode(amf0.encode("直播/流"))[0] == "直播/流"
    raw = b"\x02\x00\x03a\xffb"
    value, _ = amf0.decode(raw)
    assert amf0.encode(value) == raw


def test_nan_and_infinity_are_numbers():
    assert math.isnan(amf0.decode(amf0.encode(float("nan")))[0])
    assert amf0.decode(amf0.encode(float("inf")))[0] == float("inf")


def test_tuple_encodes_as_strict_array():
    assert amf0.encode((1, "a")) == amf0.encode([1, "a"])


def test_encode_all_and_decode_all():
    values = ["_result", 1.0, None, {"code": "NetConnection.Connect.Success"}]
    data = amf0.encode_all(*values)
    assert data == b"".join(amf0.encode(v) for v in values)
    assert amf0.decode_all(data) == values
    assert amf0.decode_all(b"") == []


def test_decode_at_offset():
    data = amf0.encode_all("a", 2.0, "c")
    v, off = amf0.decode(data)
    v2, off2 = amf0.decode(data, off)
    assert (v, v2) == ("a", 2.0)
    assert amf0.decode(data, off2) == ("c", len(data))
    assert amf0.decode_all(data, off) == [2.0, "c"]
    assert amf0.decode(memoryview(data), off) == (2.0, off2)


def test_decode_amf3_command_skips_the_format_byte():
    payload = b"\x00" + amf0.encode_all("play", 4.0, None, "livestream")
    assert amf0.decode_amf3_command(payload) == ["play", 4.0, None, "livestream"]
    assert amf0.decode_amf3_command(b"") == []


# ------------------------------------------------------------ captured commands (E8)

def test_ffmpeg_connect_and_metadata_from_capture():
    msgs = ChunkDecoder().feed(load("ffmpeg_publish_c2s.bin"))
    connect = msgs[0]
    values = amf0.decode_all(connect.payload)
    assert values[:2] == ["connect", 1.0]
    cmd = values[2]
    assert cmd["app"] == "live"
    assert cmd["flashVer"].startswith("FMLE/3.0 (compatible; Lavf")
    assert cmd["tcUrl"].startswith("rtmp://127.0.0.1:") and cmd["tcUrl"].endswith("/live")
    assert amf0.encode_all(*values) == connect.payload

    meta = next(m for m in msgs if m.type == 18)
    name, event, data = amf0.decode_all(meta.payload)
    assert (name, event) == ("@setDataFrame", "onMetaData")
    assert isinstance(data, EcmaArray)
    assert data["width"] == 160.0 and data["height"] == 120.0 and data["videocodecid"] == 7.0
    assert amf0.encode_all(name, event, data) == meta.payload


def test_every_command_of_the_capture_round_trips():
    for m in ChunkDecoder().feed(load("ffmpeg_publish_av_c2s.bin")):
        if m.type in (18, 20):
            assert amf0.encode_all(*amf0.decode_all(m.payload)) == m.payload


# ---------------------------------------------------------------------- references

@pytest.mark.parametrize("data, offset", [
    # [obj{a:1}, ref 1]: a reference inside a strict array
    (b"\x0a\x00\x00\x00\x02" + b"\x03\x00\x01a" + amf0.encode(1.0) + b"\x00\x00\x09" + b"\x07\x00\x01", 21),
    # an object referring to itself (a cycle)
    (b"\x03\x00\x04self\x07\x00\x00\x00\x00\x09", 7),
    # a bare reference, and one whose index is out of any table
    (b"\x07\x00\x00", 0),
    (b"\x03\x00\x01a\x05\x00\x01b\x07\x00\x05\x00\x00\x09", 8),
])
def test_reference_marker_is_refused_as_srs_does(data, offset):
    with pytest.raises(Amf0Error, match=f"reference marker 0x07 at offset {offset} is not supported"):
        amf0.decode(data)


def test_doubling_reference_chain_costs_one_error_not_exponential_work():
    # Each level refers twice to the one before: resolved, its encoding doubles per level
    # (the 242-byte onMetaData that once asked for gigabytes).
    level = [b"\x0a\x00\x00\x00\x00"]
    for i in range(1, 40):
        level.append(b"\x0a\x00\x00\x00\x02" + (b"\x07" + (i - 1).to_bytes(2, "big")) * 2)
    data = b"\x02\x00\x0aonMetaData" + b"\x0a\x00\x00\x00\x28" + b"".join(level)
    with pytest.raises(Amf0Error, match="reference marker"):
        amf0.decode_all(data)


def test_typed_object_keeps_class_name_and_is_a_dict():
    data = amf0.encode(TypedObject("flex.messaging.io.ArrayCollection", source=[1.0]))
    value, _ = amf0.decode(data)
    assert isinstance(value, dict) and isinstance(value, TypedObject)
    assert value.class_name == "flex.messaging.io.ArrayCollection"
    assert value["source"] == [1.0]


def test_ecma_array_count_is_only_a_hint():
    # ffmpeg and others sometimes write a count that does not match; read up to object end.
    data = b"\x08\x00\x00\x00\x07" + b"\x00\x01a\x05" + b"\x00\x00\x09"
    assert amf0.decode(data) == (EcmaArray(a=None), len(data))


def test_object_running_into_end_of_data_ends_there():
    # As SRS: at a property boundary the end of data closes the object.
    assert amf0.decode(b"\x03\x00\x01a\x05") == ({"a": None}, 5)
    assert amf0.decode_all(b"\x02\x00\x01x\x08\x00\x00\x00\x00") == ["x", EcmaArray()]


def test_empty_key_not_followed_by_object_end_is_a_property():
    data = b"\x03\x00\x00\x05\x00\x00\x09"
    assert amf0.decode(data) == ({"": None}, len(data))


# -------------------------------------------------------------------------- errors

@pytest.mark.parametrize("data, message", [
    (b"", "truncated data at offset 0"),
    (b"\x00\x3f\xf0", "truncated data at offset 1: need 8 bytes, 2 left"),
    (b"\x01", "truncated data at offset 1"),
    (b"\x02\x00", "truncated data at offset 1: need 2 bytes, 1 left"),
    (b"\x02\x00\x05abc", "truncated data at offset 3: need 5 bytes, 3 left"),
    (b"\x0c\x00\x01\x00\x00abc", "truncated data at offset 5: need 65536 bytes"),
    (b"\x03\x00\x05ab", "truncated data at offset 3"),
    (b"\x03\x00\x01a", "truncated data at offset 4: need 1 bytes, 0 left"),
    (b"\x03\x00", "truncated data at offset 1: need 2 bytes, 1 left"),
    (b"\x0a\x00\x00\x00\x02\x05", "truncated data at offset 6"),
    (b"\x0a\x00\x00", "truncated data at offset 1: need 4 bytes"),
    (b"\x0b\x00\x00\x00", "truncated data at offset 1: need 10 bytes"),
    (b"\x08\x00\x00", "truncated data at offset 1: need 4 bytes"),
    (b"\x10\x00\x03ab", "truncated data at offset 3: need 3 bytes"),
    (b"\x07\x00", "reference marker 0x07 at offset 0"),
])
def test_truncated(data, message):
    with pytest.raises(Amf0Error, match=message):
        amf0.decode(data)


@pytest.mark.parametrize("marker", [0x04, 0x0D, 0x0E, 0x0F, 0x11, 0x12, 0xFF])
def test_unknown_marker(marker):
    with pytest.raises(Amf0Error, match=f"unknown marker 0x{marker:02x} at offset 8"):
        amf0.decode(b"\x03\x00\x01a\x05\x00\x01b" + bytes((marker,)))


def test_errors_carry_the_srs_code():
    with pytest.raises(Amf0Error) as ei:
        amf0.decode(b"\x11")
    assert ei.value.code == 2004


@pytest.mark.parametrize("levels", [65, 1000, 100_000])
def test_deep_nesting_fails_fast_without_recursion(levels):
    data = b"\x03" + b"\x00\x01a\x03" * levels + b"\x00\x00\x09" * (levels + 1)
    start = time.perf_counter()
    with pytest.raises(Amf0Error, match="nesting deeper than 64"):
        amf0.decode(data)
    with pytest.raises(Amf0Error, match="nesting deeper than 64"):
        amf0.decode_all(amf0.encode("connect") + amf0.encode(1.0) + data)
    assert time.perf_counter() - start < 1.0


def test_deep_strict_arrays_fail_too():
    data = b"\x0a\x00\x00\x00\x01" * 100_000
    with pytest.raises(Amf0Error, match="nesting deeper than 64"):
        amf0.decode(data)


def test_max_depth_is_exact_and_configurable():
    value = {"a": {"b": {"c": 1.0}}}  # 3 containers
    data = amf0.encode(value)
    assert amf0.decode(data, max_depth=3)[0] == value
    with pytest.raises(Amf0Error, match="nesting deeper than 2 at offset 8"):
        amf0.decode(data, max_depth=2)


def test_very_deep_nesting_with_a_huge_limit_is_still_iterative():
    levels = 100_000
    data = b"\x0a\x00\x00\x00\x01" * levels + b"\x05"
    value, end = amf0.decode(data, max_depth=10**9)
    assert end == len(data)
    depth = 0
    while isinstance(value, list):
        value, depth = value[0], depth + 1
    assert depth == levels and value is None


def test_huge_strict_array_count_is_bounded_by_data():
    with pytest.raises(Amf0Error, match="truncated"):
        amf0.decode(b"\x0a\xff\xff\xff\xff" + b"\x05" * 10)


def test_encode_errors():
    with pytest.raises(Amf0Error, match="cannot encode a value of type set"):
        amf0.encode({1, 2})
    with pytest.raises(Amf0Error, match="key must be str"):
        amf0.encode({1: "a"})
    with pytest.raises(Amf0Error, match="cannot encode int"):
        amf0.encode(10**400)
    cyclic: dict = {}
    cyclic["me"] = cyclic
    with pytest.raises(Amf0Error, match="nested deeper than 64"):
        amf0.encode(cyclic)
    with pytest.raises(Amf0Error, match="longer than 65535"):
        amf0.encode({"k" * 70000: 1})


def test_undefined_is_a_falsy_singleton():
    assert not UNDEFINED
    assert type(UNDEFINED)() is UNDEFINED
    assert repr(UNDEFINED) == "UNDEFINED"


# ------------------------------------------------------------- hypothesis round trip

_scalars = st.one_of(
    st.floats(allow_nan=False),
    st.booleans(),
    st.text(max_size=40),
    st.none(),
    st.just(UNDEFINED),
    st.builds(Amf0Date, st.floats(allow_nan=False), st.integers(-32768, 32767)),
)
_keys = st.text(max_size=12)
_values = st.recursive(
    _scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(_keys, children, max_size=5),
        st.dictionaries(_keys, children, max_size=5).map(EcmaArray),
        st.tuples(_keys, st.dictionaries(_keys, children, max_size=4)).map(lambda t: TypedObject(t[0], t[1])),
    ),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_values, max_size=6))
def test_round_trip(values):
    data = amf0.encode_all(*values)
    decoded = amf0.decode_all(data)
    assert [tagged(v) for v in decoded] == [tagged(v) for v in values]
    assert amf0.encode_all(*decoded) == data


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_arbitrary_bytes_never_raise_anything_but_amf0_error(data):
    try:
        amf0.decode_all(data)
    except Amf0Error:
        pass


@settings(max_examples=100, deadline=None)
@given(_values)
def test_every_prefix_either_decodes_or_raises_amf0_error(value):
    data = amf0.encode(value)
    for n in range(len(data)):
        try:
            amf0.decode(data[:n])
        except Amf0Error:
            pass


def test_number_struct_is_big_endian_double():
    assert amf0.encode(1234.5)[1:] == struct.pack(">d", 1234.5)


def test_encoding_caches_keys_and_short_strings_bounded():
    from srspy.kernel import amf0 as m

    obj = {"code": "NetStream.Play.Start", "description": "x" * 300, "level": "status"}
    first = m.encode(obj)
    assert m.encode(obj) == first and m.decode_all(first) == [obj]  # cached parts encode the same
    assert m.encode("NetStream.Play.Start") == b"\x02\x00\x14NetStream.Play.Start"
    for i in range(3 * m._CACHE_MAX):
        m.encode({f"k{i}": f"v{i}"})
    assert len(m._key_cache) <= m._CACHE_MAX and len(m._str_cache) <= m._CACHE_MAX
    with pytest.raises(m.Amf0Error):
        m.encode({1: "not a str key"})


def test_unique_strings_encode_as_strings_without_the_cache():
    for i in range(100):
        value = f"uniq{i:05d}"
        enc = amf0.encode_unique_string(value)
        assert enc == b"\x02\x00\x09" + value.encode()
        assert amf0.decode_all(enc) == [value]
        assert value not in amf0._str_cache
