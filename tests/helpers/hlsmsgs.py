"""Small synthetic media messages for the HLS tests: an H.264 sequence header (4-byte SPS
and PPS stand-ins in a whole avcC) and frames of one 1-byte NAL unit, an AAC-LC 44.1 kHz
sequence header and raw frames."""

from __future__ import annotations

from srspy.kernel.message import AUDIO, VIDEO, MediaMessage

VSH = b"\x17\x00\x00\x00\x00\x01\x64\x00\x1f\xff\xe1\x00\x04\x67\x64\x00\x1f\x01\x00\x04\x68\xee\x3c\x80"
ASH = b"\xaf\x00\x12\x10"


def v(ts, key=False):
    return MediaMessage(VIDEO, ts, 1, (b"\x17" if key else b"\x27") + b"\x01\x00\x00\x00" + b"\x00\x00\x00\x01\x65")


def a(ts):
    return MediaMessage(AUDIO, ts, 1, b"\xaf\x01\x21")
