"""Port of SrsFlvVideo / SrsFlvAudio and the parts of SrsFormat srspy needs.

Pure functions over FLV/RTMP audio and video payloads: is it a keyframe, a sequence
header, which codec; plus the AVC SPS / AAC AudioSpecificConfig parsers the HTTP API
reports (width, height, profile, level, sample rate, channels).
"""

from __future__ import annotations

# MediaMessage.flags bits, set once at ingest by the live source.
F_KEYFRAME = 1
F_SEQUENCE_HEADER = 2
F_VIDEO = 4
F_AUDIO = 8

# FLV video codec ids.
VIDEO_AVC = 7
VIDEO_HEVC = 12
VIDEO_AV1 = 13
# FLV audio codec ids (SoundFormat).
AUDIO_MP3 = 2
AUDIO_AAC = 10

VIDEO_CODEC_NAMES = {VIDEO_AVC: "H264", VIDEO_HEVC: "H265", VIDEO_AV1: "AV1"}
AUDIO_CODEC_NAMES = {AUDIO_AAC: "AAC", AUDIO_MP3: "MP3"}
ENHANCED_FOURCC = {b"hvc1": VIDEO_HEVC, b"avc1": VIDEO_AVC, b"av01": VIDEO_AV1}


def video_codec(payload: bytes) -> int:
    """The codec id of a video payload, resolving Enhanced RTMP FourCCs; 0 if empty/unknown."""
    if not payload:
        return 0
    b0 = payload[0]
    if b0 & 0x80:  # Enhanced RTMP: IsExHeader, then FourCC at bytes 1..4
        return ENHANCED_FOURCC.get(bytes(payload[1:5]), 0)
    return b0 & 0x0F


def video_flags(payload: bytes) -> int:
    """Flags for a video payload: keyframe and/or sequence header."""
    if len(payload) < 2:
        return F_VIDEO
    b0 = payload[0]
    flags = F_VIDEO
    if b0 & 0x80:  # Enhanced RTMP
        frame_type = (b0 >> 4) & 0x07
        packet_type = b0 & 0x0F
        if packet_type == 0:  # PacketTypeSequenceStart
            flags |= F_SEQUENCE_HEADER
        if frame_type == 1:
            flags |= F_KEYFRAME
        return flags
    if (b0 >> 4) == 1:
        flags |= F_KEYFRAME
    codec = b0 & 0x0F
    if codec in (VIDEO_AVC, VIDEO_HEVC, VIDEO_AV1) and payload[1] == 0:
        flags |= F_SEQUENCE_HEADER
    return flags


def audio_flags(payload: bytes) -> int:
    if len(payload) >= 2 and (payload[0] >> 4) == AUDIO_AAC and payload[1] == 0:
        return F_AUDIO | F_SEQUENCE_HEADER
    return F_AUDIO


def is_video_codec_ok(payload: bytes) -> bool:
    """SRS drops video whose codec it does not know (#421): AVC, HEVC, AV1 only."""
    return video_codec(payload) in VIDEO_CODEC_NAMES


class BitReader:
    """MSB-first bit reader with Exp-Golomb, for SPS parsing."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def bit(self) -> int:
        i = self.pos >> 3
        if i >= len(self.data):
            raise ValueError("sps: out of data")
        b = (self.data[i] >> (7 - (self.pos & 7))) & 1
        self.pos += 1
        return b

    def bits(self, n: int) -> int:
        v = 0
        for _ in range(n):
            v = (v << 1) | self.bit()
        return v

    def ue(self) -> int:
        zeros = 0
        while self.bit() == 0:
            zeros += 1
            if zeros > 31:
                raise ValueError("sps: bad exp-golomb")
        return (1 << zeros) - 1 + self.bits(zeros)

    def se(self) -> int:
        v = self.ue()
        return (v + 1) // 2 if v & 1 else -(v // 2)


def _unescape_rbsp(nal: bytes) -> bytes:
    return nal.replace(b"\x00\x00\x03", b"\x00\x00")


AVC_PROFILES = {66: "Baseline", 77: "Main", 88: "Extended", 100: "High", 110: "High10", 122: "High422", 244: "High444"}


def parse_avc_sps(sps: bytes) -> dict:
    """Width, height, profile and level from an H.264 SPS NAL unit (with its 1-byte header)."""
    r = BitReader(_unescape_rbsp(sps[1:]))
    profile_idc = r.bits(8)
    r.bits(8)  # constraint flags
    level_idc = r.bits(8)
    r.ue()  # seq_parameter_set_id
    chroma_format_idc = 1
    if profile_idc in (100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135):
        chroma_format_idc = r.ue()
        if chroma_format_idc == 3:
            r.bit()
        r.ue()
        r.ue()
        r.bit()
        if r.bit():  # seq_scaling_matrix_present_flag
            for i in range(8 if chroma_format_idc != 3 else 12):
                if r.bit():
                    last, nxt = 8, 8
                    for _ in range(16 if i < 6 else 64):
                        if nxt:
                            nxt = (last + r.se() + 256) % 256
                        last = nxt or last
    r.ue()  # log2_max_frame_num_minus4
    poc_type = r.ue()
    if poc_type == 0:
        r.ue()
    elif poc_type == 1:
        r.bit()
        r.se()
        r.se()
        for _ in range(r.ue()):
            r.se()
    r.ue()  # max_num_ref_frames
    r.bit()
    width_mbs = r.ue() + 1
    height_map_units = r.ue() + 1
    frame_mbs_only = r.bit()
    if not frame_mbs_only:
        r.bit()
    r.bit()
    crop = (0, 0, 0, 0)
    if r.bit():
        crop = (r.ue(), r.ue(), r.ue(), r.ue())
    sub_w = 2 if chroma_format_idc in (1, 2) else 1
    sub_h = 2 if chroma_format_idc == 1 else 1
    if chroma_format_idc == 0:
        sub_w = sub_h = 1
    width = width_mbs * 16 - sub_w * (crop[0] + crop[1])
    height = (2 - frame_mbs_only) * height_map_units * 16 - sub_h * (2 - frame_mbs_only) * (crop[2] + crop[3])
    level = f"{level_idc // 10}" if level_idc % 10 == 0 else f"{level_idc // 10}.{level_idc % 10}"
    return {"profile": AVC_PROFILES.get(profile_idc, str(profile_idc)), "level": level, "width": width, "height": height}


def parse_avc_sequence_header(payload: bytes) -> dict:
    """Parse an FLV AVC sequence header (AVCDecoderConfigurationRecord after 5 bytes)."""
    rec = payload[5:]
    if len(rec) < 8:
        raise ValueError("avc: sequence header too short")
    n_sps = rec[5] & 0x1F
    if n_sps < 1:
        raise ValueError("avc: no sps")
    size = int.from_bytes(rec[6:8], "big")
    sps = rec[8 : 8 + size]
    if len(sps) != size:
        raise ValueError("avc: truncated sps")
    info = parse_avc_sps(sps)
    info["codec"] = "H264"
    return info


AAC_PROFILES = {1: "Main", 2: "LC", 3: "SSR", 5: "HE", 29: "HEv2"}
AAC_RATES = [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350]


def parse_aac_sequence_header(payload: bytes) -> dict:
    """Parse an FLV AAC sequence header (AudioSpecificConfig after 2 bytes)."""
    asc = payload[2:]
    if len(asc) < 2:
        raise ValueError("aac: sequence header too short")
    object_type = asc[0] >> 3
    rate_index = ((asc[0] & 0x07) << 1) | (asc[1] >> 7)
    channels = (asc[1] >> 3) & 0x0F
    rate = AAC_RATES[rate_index] if rate_index < len(AAC_RATES) else 0
    return {"codec": "AAC", "sample_rate": rate, "channel": channels, "profile": AAC_PROFILES.get(object_type, str(object_type))}
