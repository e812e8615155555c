"""AMF0 (Action Message Format 0) codec, the value format of RTMP commands and metadata.

Port of srs_protocol_amf0 (SrsAmf0Any and friends) onto plain Python values:

    number      <-> float (an ``int`` is encoded as a number too)
    boolean     <-> bool
    string      <-> str (long string when the UTF-8 form exceeds 65535 bytes)
    object      <-> dict (``TypedObject`` keeps the class name of a typed object)
    ECMA array  <-> EcmaArray (a dict subclass)
    strict array<-> list (a tuple encodes as a strict array too)
    null        <-> None
    undefined   <-> UNDEFINED
    date        <-> Amf0Date(ms, tz)

Decoding is iterative: containers live on an explicit stack whose height is checked
against ``max_depth``, so a hostile message nested 100,000 levels deep costs one
``Amf0Error`` and never reaches Python's recursion limit. References (marker 0x07) are
refused with ``Amf0Error``, as SRS refuses them: a reference makes a shared (or cyclic)
value, and re-encoding a chain of values that each refer twice to the one before doubles
per level, so 242 bytes could ask for gigabytes. Without them a decoded value is a tree
whose size is linear in the bytes it came from, and so is its encoding.

As SRS does, an object or ECMA array that runs into the end of the data at a property
boundary, without its object-end marker, ends there; data that stops inside a value is an
error. Strings that are not valid UTF-8 decode with ``surrogateescape`` and encode back to
the same bytes.
"""

from __future__ import annotations

import struct
from typing import Any, NamedTuple

from srspy.errors import Amf0Error

__all__ = [
    "UNDEFINED",
    "Amf0Date",
    "EcmaArray",
    "TypedObject",
    "decode",
    "decode_all",
    "decode_amf3_command",
    "encode",
    "encode_all",
]

# Markers (AMF0 specification, 2.1).
NUMBER = 0x00
BOOLEAN = 0x01
STRING = 0x02
OBJECT = 0x03
MOVIECLIP = 0x04  # reserved, not supported
NULL = 0x05
UNDEFINED_MARKER = 0x06
REFERENCE = 0x07
ECMA_ARRAY = 0x08
OBJECT_END = 0x09
STRICT_ARRAY = 0x0A
DATE = 0x0B
LONG_STRING = 0x0C
TYPED_OBJECT = 0x10

DEFAULT_MAX_DEPTH = 64

_F64 = struct.Struct(">d")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_DATE = struct.Struct(">dh")

_ENC = "utf-8"
_ERRORS = "surrogateescape"


class _Undefined:
    """The AMF0 ``undefined`` value; use the ``UNDEFINED`` singleton."""

    __slots__ = ()
    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNDEFINED"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self):
        return (_Undefined, ())


UNDEFINED = _Undefined()


class EcmaArray(dict):
    """An AMF0 ECMA array (associative array): a dict that encodes with marker 0x08.

    ``onMetaData`` usually arrives as one; keeping the type lets it be re-encoded as it came.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return f"EcmaArray({dict.__repr__(self)})"


class TypedObject(dict):
    """An AMF0 typed object: its properties, plus the ``class_name`` it was sent with."""

    __slots__ = ("class_name",)

    def __init__(self, class_name: str = "", *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.class_name = class_name

    def __repr__(self) -> str:
        return f"TypedObject({self.class_name!r}, {dict.__repr__(self)})"

    def __eq__(self, other):
        if isinstance(other, TypedObject):
            return self.class_name == other.class_name and dict.__eq__(self, other)
        return dict.__eq__(self, other)

    def __ne__(self, other):
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    __hash__ = None


class Amf0Date(NamedTuple):
    """An AMF0 date: milliseconds since the Unix epoch (UTC) and a time-zone field.

    The time-zone field is reserved by the specification (senders should write 0); it is
    kept so that a date re-encodes to the same bytes.
    """

    ms: float
    tz: int = 0


# Frame kinds of the decoder stack.
_K_OBJECT = 0  # object, typed object and ECMA array: key/value pairs up to object end
_K_ARRAY = 1  # strict array: a counted list of values


def _truncated(offset: int, need: int, have: int) -> Amf0Error:
    return Amf0Error(f"amf0: truncated data at offset {offset}: need {need} bytes, {have} left")


class _Decoder:
    """One decoding pass over a buffer."""

    __slots__ = ("data", "end", "max_depth")

    def __init__(self, data: bytes, max_depth: int):
        self.data = data
        self.end = len(data)
        self.max_depth = max_depth

    def value(self, pos: int) -> tuple[Any, int]:
        """Decode one complete value at ``pos``; returns (value, offset after it)."""
        data = self.data
        end = self.end
        max_depth = self.max_depth
        # Each frame is [kind, container, key or None, values left (strict array only)].
        stack: list[list] = []

        while True:
            if stack:
                frame = stack[-1]
                closed = False
                if frame[0] == _K_OBJECT:
                    # In an object: the next key, or the object end.
                    if pos >= end:
                        # As SRS: an object running into the end of the data ends there.
                        closed = True
                    else:
                        if end - pos < 2:
                            raise _truncated(pos, 2, end - pos)
                        (n,) = _U16.unpack_from(data, pos)
                        if n == 0 and pos + 2 < end and data[pos + 2] == OBJECT_END:
                            pos += 3
                            closed = True
                        else:
                            pos += 2
                            if end - pos < n:
                                raise _truncated(pos, n, end - pos)
                            frame[2] = str(data[pos:pos + n], _ENC, _ERRORS)
                            pos += n
                elif frame[3] == 0:
                    closed = True  # a strict array with all its values
                if closed:
                    value = stack.pop()[1]
                    if not stack:
                        return value, pos
                    _store(stack[-1], value)
                    continue

            # 3. Read one value (a scalar, a reference, or the start of a container).
            if pos >= end:
                raise _truncated(pos, 1, 0)
            marker = data[pos]
            start = pos
            pos += 1
            if marker == NUMBER:
                if end - pos < 8:
                    raise _truncated(pos, 8, end - pos)
                value = _F64.unpack_from(data, pos)[0]
                pos += 8
            elif marker == STRING:
                value, pos = _read_utf8(data, pos, end, _U16)
            elif marker == BOOLEAN:
                if pos >= end:
                    raise _truncated(pos, 1, 0)
                value = data[pos] != 0
                pos += 1
            elif marker == NULL:
                value = None
            elif marker == UNDEFINED_MARKER:
                value = UNDEFINED
            elif marker == OBJECT or marker == ECMA_ARRAY or marker == TYPED_OBJECT:
                if len(stack) >= max_depth:
                    raise Amf0Error(f"amf0: nesting deeper than {max_depth} at offset {start}")
                if marker == OBJECT:
                    container = {}
                elif marker == ECMA_ARRAY:
                    # The count is a hint only (SRS ignores it too): read up to object end.
                    if end - pos < 4:
                        raise _truncated(pos, 4, end - pos)
                    pos += 4
                    container = EcmaArray()
                else:
                    class_name, pos = _read_utf8(data, pos, end, _U16)
                    container = TypedObject(class_name)
                stack.append([_K_OBJECT, container, None, -1])
                continue
            elif marker == STRICT_ARRAY:
                if len(stack) >= max_depth:
                    raise Amf0Error(f"amf0: nesting deeper than {max_depth} at offset {start}")
                if end - pos < 4:
                    raise _truncated(pos, 4, end - pos)
                (count,) = _U32.unpack_from(data, pos)
                pos += 4
                container = []
                stack.append([_K_ARRAY, container, None, count])
                continue
            elif marker == LONG_STRING:
                value, pos = _read_utf8(data, pos, end, _U32)
            elif marker == DATE:
                if end - pos < 10:
                    raise _truncated(pos, 10, end - pos)
                value = Amf0Date(*_DATE.unpack_from(data, pos))
                pos += 10
            elif marker == REFERENCE:
                raise Amf0Error(f"amf0: reference marker 0x07 at offset {start} is not supported")
            else:
                raise Amf0Error(f"amf0: unknown marker 0x{marker:02x} at offset {start}")

            if not stack:
                return value, pos
            _store(stack[-1], value)


def _read_utf8(data, pos: int, end: int, length: struct.Struct) -> tuple[str, int]:
    """A string behind its big-endian byte count (``_U16`` or ``_U32``): (str, offset after)."""
    w = length.size
    if end - pos < w:
        raise _truncated(pos, w, end - pos)
    (n,) = length.unpack_from(data, pos)
    pos += w
    if end - pos < n:
        raise _truncated(pos, n, end - pos)
    return str(data[pos:pos + n], _ENC, _ERRORS), pos + n


def _store(frame: list, value: Any) -> None:
    """Put a finished value into its parent container."""
    if frame[0] == _K_OBJECT:
        frame[1][frame[2]] = value
    else:
        frame[1].append(value)
        frame[3] -= 1


def _as_bytes(data) -> bytes:
    return data if type(data) is bytes else bytes(data)


def decode(data, offset: int = 0, max_depth: int = DEFAULT_MAX_DEPTH) -> tuple[Any, int]:
    """Decode one AMF0 value from ``data`` at ``offset``.

    Returns ``(value, new_offset)``. Raises ``Amf0Error`` on truncated data, an unknown
    or reference marker, or nesting deeper than ``max_depth`` containers.
    """
    data = _as_bytes(data)
    if offset < 0 or offset > len(data):
        raise Amf0Error(f"amf0: offset {offset} out of range 0..{len(data)}")
    return _Decoder(data, max_depth).value(offset)


def decode_all(data, offset: int = 0, max_depth: int = DEFAULT_MAX_DEPTH) -> list:
    """Decode consecutive AMF0 values until the end of ``data`` (one command or data message)."""
    data = _as_bytes(data)
    decoder = _Decoder(data, max_depth)
    end = len(data)
    values = []
    pos = offset
    while pos < end:
        value, pos = decoder.value(pos)
        values.append(value)
    return values


def decode_amf3_command(payload) -> list:
    """Decode an AMF3 command message (RTMP type 17) as SRS does.

    Such a message starts with one format byte (0x00) and the rest is plain AMF0; SRS
    skips the byte and decodes the remainder as AMF0, and so does this function.
    """
    payload = _as_bytes(payload)
    return decode_all(payload, 1 if payload else 0)


# --------------------------------------------------------------------------- encoding

_NUMBER_PREFIX = bytes((NUMBER,))
_TRUE = bytes((BOOLEAN, 1))
_FALSE = bytes((BOOLEAN, 0))
_NULL = bytes((NULL,))
_UNDEF = bytes((UNDEFINED_MARKER,))
_END = b"\x00\x00\x09"


# Encoded object keys and short strings, the same in every command a server sends
# (``code``, ``NetStream.Play.Start``, ...): encoded once. Bounded: cleared when full.
_CACHE_MAX = 2048
_CACHEABLE = 64  # characters
_key_cache: dict = {}
_str_cache: dict = {}


def _key(key, out: list) -> None:
    enc = _key_cache.get(key)
    if enc is not None:
        out.append(enc)
        return
    if not isinstance(key, str):
        raise Amf0Error(f"amf0: object key must be str, got {type(key).__name__}")
    raw = key.encode(_ENC, _ERRORS)
    if len(raw) > 0xFFFF:
        raise Amf0Error(f"amf0: object key of {len(raw)} bytes is longer than 65535")
    enc = _U16.pack(len(raw)) + raw
    if type(key) is str and len(key) <= _CACHEABLE:
        if len(_key_cache) >= _CACHE_MAX:
            _key_cache.clear()
        _key_cache[key] = enc
    out.append(enc)


def encode_unique_string(value: str) -> bytes:
    """An AMF0 string that is not kept in the encoding cache: for a value that never
    repeats (a connection id), which would only push the common ones out."""
    raw = value.encode(_ENC, _ERRORS)
    if len(raw) > 0xFFFF:
        raise Amf0Error(f"amf0: string of {len(raw)} bytes is too long")
    return bytes((STRING, len(raw) >> 8, len(raw) & 0xFF)) + raw


def _encode_into(value: Any, out: list, depth: int, max_depth: int) -> None:
    t = type(value)
    if t is str:
        enc = _str_cache.get(value)
        if enc is not None:
            out.append(enc)
            return
        if len(value) <= _CACHEABLE:
            raw = value.encode(_ENC, _ERRORS)
            enc = bytes((STRING, 0, len(raw))) + raw if len(raw) <= 0xFF else None
            if enc is not None:
                if len(_str_cache) >= _CACHE_MAX:
                    _str_cache.clear()
                _str_cache[value] = enc
                out.append(enc)
                return
        raw = value.encode(_ENC, _ERRORS)
        n = len(raw)
        if n <= 0xFFFF:
            out.append(bytes((STRING, n >> 8, n & 0xFF)))
        else:
            out.append(bytes((LONG_STRING,)) + _U32.pack(n))
        out.append(raw)
    elif t is float or t is int:
        out.append(_NUMBER_PREFIX + _F64.pack(value))
    elif t is bool:
        out.append(_TRUE if value else _FALSE)
    elif value is None:
        out.append(_NULL)
    elif value is UNDEFINED:
        out.append(_UNDEF)
    elif isinstance(value, dict):
        if depth >= max_depth:
            raise Amf0Error(f"amf0: cannot encode values nested deeper than {max_depth}")
        if isinstance(value, EcmaArray):
            out.append(bytes((ECMA_ARRAY,)) + _U32.pack(len(value)))
        elif isinstance(value, TypedObject):
            out.append(bytes((TYPED_OBJECT,)))
            _key(value.class_name, out)
        else:
            out.append(bytes((OBJECT,)))
        for k, v in value.items():
            _key(k, out)
            _encode_into(v, out, depth + 1, max_depth)
        out.append(_END)
    elif isinstance(value, (list, tuple)) and not isinstance(value, Amf0Date):
        if depth >= max_depth:
            raise Amf0Error(f"amf0: cannot encode values nested deeper than {max_depth}")
        out.append(bytes((STRICT_ARRAY,)) + _U32.pack(len(value)))
        for v in value:
            _encode_into(v, out, depth + 1, max_depth)
    elif isinstance(value, Amf0Date):
        out.append(bytes((DATE,)) + _DATE.pack(float(value.ms), int(value.tz)))
    elif isinstance(value, bool):
        out.append(_TRUE if value else _FALSE)
    elif isinstance(value, (int, float)):
        out.append(_NUMBER_PREFIX + _F64.pack(float(value)))
    elif isinstance(value, str):
        _encode_into(str(value), out, depth, max_depth)
    else:
        raise Amf0Error(f"amf0: cannot encode a value of type {t.__name__}")


def encode(value: Any, max_depth: int = DEFAULT_MAX_DEPTH) -> bytes:
    """Encode one Python value as AMF0 (see the module docstring for the mapping)."""
    out: list = []
    try:
        _encode_into(value, out, 0, max_depth)
    except (OverflowError, struct.error) as e:
        raise Amf0Error(f"amf0: cannot encode {type(value).__name__}") from e
    return b"".join(out)


def encode_all(*values: Any) -> bytes:
    """Encode several values back to back, as in a command message."""
    out: list = []
    try:
        for value in values:
            _encode_into(value, out, 0, DEFAULT_MAX_DEPTH)
    except (OverflowError, struct.error) as e:
        raise Amf0Error("amf0: cannot encode values") from e
    return b"".join(out)
