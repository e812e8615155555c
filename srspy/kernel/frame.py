"""FLV audio/video tag bodies as codec-neutral frames, for the containers that carry
elementary streams (MP4/fMP4 here; the segmenter reads the same fields).

An FLV video body is either legacy (``frame_type<<4 | codec_id``, AVC packet type, SI24
composition time, data) or Enhanced RTMP (``0x80 | frame_type<<4 | packet_type``, FourCC,
then SI24 composition time for CodedFrames only). An AAC audio body is ``0xAF``, the AAC
packet type (0 AudioSpecificConfig, 1 raw frame) and the data; MP3 is one header byte
followed by the frames. SRS reads the same layout in kernel/srs_kernel_codec.cpp
(``SrsFormat::video_avc_demux``, ``audio_aac_demux``).
"""

from __future__ import annotations

from ..errors import SrsError
from .codec import AAC_RATES

VIDEO_AVC = 7
VIDEO_HEVC = 12
AUDIO_MP3 = 2
AUDIO_AAC = 10

_FOURCC = {b"avc1": VIDEO_AVC, b"hvc1": VIDEO_HEVC}

# Packet kinds, the same for audio and video.
SEQUENCE_HEADER = 0
CODED = 1
END_OF_SEQUENCE = 2


class FrameError(SrsError):
    """An FLV audio/video body that cannot be read."""


class VideoFrame:
    """One video tag body. ``data`` is the decoder configuration record when
    ``kind == SEQUENCE_HEADER``, else length-prefixed NAL units (as FLV carries them)."""

    __slots__ = ("codec", "kind", "keyframe", "cts", "data")

    def __init__(self, codec: int, kind: int, keyframe: bool, cts: int, data: bytes):
        self.codec = codec
        self.kind = kind
        self.keyframe = keyframe
        self.cts = cts
        self.data = data


class AudioFrame:
    """One audio tag body: ``data`` is the AudioSpecificConfig for an AAC sequence header,
    else one raw AAC frame or MP3 frames."""

    __slots__ = ("codec", "kind", "data", "header")

    def __init__(self, codec: int, kind: int, data: bytes, header: int):
        self.codec = codec
        self.kind = kind
        self.data = data
        self.header = header  # the first FLV byte (sound format, rate, size, channels)


def _si24(b: bytes) -> int:
    v = (b[0] << 16) | (b[1] << 8) | b[2]
    return v - 0x1000000 if v & 0x800000 else v


def parse_video(payload: bytes) -> VideoFrame | None:
    """The frame in an FLV video body; None for bodies that carry no picture data
    (video info frames, Enhanced RTMP metadata, codecs other than AVC/HEVC)."""
    if len(payload) < 1:
        raise FrameError("video: empty tag body")
    b0 = payload[0]
    frame_type = (b0 >> 4) & 0x07
    if b0 & 0x80:  # Enhanced RTMP
        if len(payload) < 5:
            raise FrameError(f"video: enhanced header of {len(payload)} bytes, want 5")
        codec = _FOURCC.get(bytes(payload[1:5]))
        if codec is None:
            return None
        ptype = b0 & 0x0F
        if ptype == 0:
            return VideoFrame(codec, SEQUENCE_HEADER, True, 0, bytes(payload[5:]))
        if ptype == 1:
            if len(payload) < 8:
                raise FrameError("video: enhanced CodedFrames without composition time")
            return VideoFrame(codec, CODED, frame_type == 1, _si24(payload[5:8]), bytes(payload[8:]))
        if ptype == 3:
            return VideoFrame(codec, CODED, frame_type == 1, 0, bytes(payload[5:]))
        if ptype == 2:
            return VideoFrame(codec, END_OF_SEQUENCE, False, 0, b"")
        return None  # metadata, MPEG-2 TS sequence start, multitrack: nothing to mux
    codec = b0 & 0x0F
    if codec not in (VIDEO_AVC, VIDEO_HEVC) or frame_type == 5:
        return None
    if len(payload) < 5:
        raise FrameError(f"video: legacy header of {len(payload)} bytes, want 5")
    ptype = payload[1]
    if ptype > 2:
        raise FrameError(f"video: packet type {ptype} unknown")
    return VideoFrame(codec, ptype, frame_type == 1, _si24(payload[2:5]), bytes(payload[5:]))


def parse_audio(payload: bytes) -> AudioFrame | None:
    """The frame in an FLV audio body; None for codecs other than AAC and MP3."""
    if len(payload) < 1:
        raise FrameError("audio: empty tag body")
    b0 = payload[0]
    codec = b0 >> 4
    if codec == AUDIO_AAC:
        if len(payload) < 2:
            raise FrameError("audio: AAC body without packet type")
        kind = SEQUENCE_HEADER if payload[1] == 0 else CODED
        return AudioFrame(codec, kind, bytes(payload[2:]), b0)
    if codec == AUDIO_MP3:
        return AudioFrame(codec, CODED, bytes(payload[1:]), b0)
    return None


def iter_nalus(data: bytes, length_size: int = 4):
    """The NAL units of a length-prefixed access unit (bounded by the buffer)."""
    pos, n = 0, len(data)
    while pos + length_size <= n:
        size = int.from_bytes(data[pos : pos + length_size], "big")
        pos += length_size
        if size > n - pos:
            raise FrameError(f"video: NAL unit of {size} bytes overruns the frame ({n - pos} left)")
        yield data[pos : pos + size]
        pos += size


def aac_config(asc: bytes) -> tuple[int, int, int]:
    """(object type, sample rate, channels) of an AudioSpecificConfig (ISO 14496-3 1.6.2.1)."""
    if len(asc) < 2:
        raise FrameError(f"audio: AudioSpecificConfig of {len(asc)} bytes, want 2 or more")
    aot = asc[0] >> 3
    index = ((asc[0] & 0x07) << 1) | (asc[1] >> 7)
    if index == 15:
        if len(asc) < 5:
            raise FrameError("audio: explicit sample rate truncated")
        bits = int.from_bytes(asc[:5], "big")
        rate = (bits >> 7) & 0xFFFFFF
        channels = (bits >> 3) & 0x0F
    else:
        if index >= len(AAC_RATES):
            raise FrameError(f"audio: sample rate index {index} reserved")
        rate = AAC_RATES[index]
        channels = (asc[1] >> 3) & 0x0F
    return aot, rate, channels
