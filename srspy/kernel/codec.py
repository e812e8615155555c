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
F_COLOR_INFO = 16  # enhanced RTMP Metadata (colorInfo) of track 0: belongs in the meta cache
F_EMPTY_CONFIG = 32  # a sequence header without a config record (ffmpeg's first av01 one): keep the older

# FLV video codec ids.
VIDEO_AVC = 7
VIDEO_HEVC = 12
VIDEO_AV1 = 13
# FLV audio codec ids (SoundFormat).
AUDIO_MP3 = 2
AUDIO_AAC = 10
AUDIO_EX_HEADER = 9  # enhanced RTMP: a FourCC follows

VIDEO_CODEC_NAMES = {VIDEO_AVC: "H264", VIDEO_HEVC: "H265", VIDEO_AV1: "AV1"}
AUDIO_CODEC_NAMES = {AUDIO_AAC: "AAC", AUDIO_MP3: "MP3"}
ENHANCED_FOURCC = {b"hvc1": VIDEO_HEVC, b"avc1": VIDEO_AVC, b"av01": VIDEO_AV1}

# Enhanced RTMP (E-RTMP v1/v2) video packet types; legacy AVC/HEVC/AV1 AVCPacketType 0, 1, 2
# mean the same as 0, 1, 2 here.
PKT_SEQUENCE_START = 0
PKT_CODED_FRAMES = 1
PKT_SEQUENCE_END = 2
PKT_CODED_FRAMES_X = 3
PKT_METADATA = 4
PKT_MPEG2TS_SEQUENCE_START = 5
PKT_MULTITRACK = 6
PKT_MODEX = 7
# Enhanced audio packet types.
APKT_SEQUENCE_START = 0
APKT_CODED_FRAMES = 1
APKT_SEQUENCE_END = 2
APKT_MULTICHANNEL_CONFIG = 4
APKT_MULTITRACK = 5
APKT_MODEX = 7
# AvMultitrackType
MT_ONE_TRACK = 0
MT_MANY_TRACKS = 1
MT_MANY_TRACKS_MANY_CODECS = 2
FRAME_KEY = 1
FRAME_COMMAND = 5

VIDEO_FOURCC_NAMES = {b"avc1": "H264", b"hvc1": "H265", b"av01": "AV1", b"vp09": "VP9", b"vp08": "VP8", b"vvc1": "H266"}
AUDIO_FOURCC_NAMES = {b"mp4a": "AAC", b".mp3": "MP3", b"Opus": "Opus", b"fLaC": "FLAC", b"ac-3": "AC3", b"ec-3": "EAC3"}
LEGACY_VIDEO_NAMES = {2: "H263", 3: "Screen", 4: "VP6", 5: "VP6A", 6: "Screen2", VIDEO_AVC: "H264", VIDEO_HEVC: "H265", VIDEO_AV1: "AV1"}
LEGACY_AUDIO_NAMES = {0: "PCM", 1: "ADPCM", AUDIO_MP3: "MP3", 3: "PCM", 4: "Nellymoser", 5: "Nellymoser", 6: "Nellymoser",
                      7: "G711A", 8: "G711U", AUDIO_AAC: "AAC", 11: "Speex", 14: "MP3", 15: "Native"}
UNKNOWN = "unknown"
# FourCCs whose CodedFrames carry a SI24 composition time (E-RTMP: the NALU-based ones).
_CTS_FOURCCS = (b"avc1", b"hvc1", b"vvc1")
_MAX_MODEX = 16  # nested ModEx wrappers parsed before a tag counts as malformed


class _Tag:
    """What both kinds of parsed tag share (see VideoTag, AudioTag)."""

    __slots__ = ("codec", "fourcc", "enhanced", "frame_type", "packet_type", "offset", "end", "track_id",
                 "multitrack", "malformed")

    def __init__(self):
        self.codec = UNKNOWN
        self.fourcc = b""
        self.enhanced = False
        self.frame_type = 0
        self.packet_type = PKT_CODED_FRAMES  # == APKT_CODED_FRAMES
        self.offset = 0
        self.end = 0
        self.track_id = 0
        self.multitrack = False
        self.malformed = False

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(codec={self.codec}, frame_type={self.frame_type}, packet_type={self.packet_type}, "
                f"offset={self.offset}, end={self.end}, track_id={self.track_id})")


class VideoTag(_Tag):
    """One parsed FLV/RTMP video payload, either layout (legacy or enhanced RTMP).

    ``codec`` is the codec name (H264, H265, AV1, VP9, VP8, H266, the legacy names, or
    ``unknown``); ``packet_type`` is one of the PKT_* values (a multitrack or ModEx wrapper
    resolved to the packet type inside it); ``cts`` the composition time in ms;
    ``payload[offset:end]`` is the codec data of the track described (config record, NALUs,
    OBUs, a VP9 frame, or the Metadata AMF). ``track_id`` is 0 for a single-track tag; for a
    multitrack tag it is track 0's when the tag carries track 0, else the first track's.
    ``malformed`` is set when the tag ended before its headers did (then offset == end).
    """

    __slots__ = ("cts",)

    def __init__(self):
        super().__init__()
        self.cts = 0

    @property
    def is_sequence_header(self) -> bool:
        return self.packet_type == PKT_SEQUENCE_START and self.frame_type != FRAME_COMMAND

    @property
    def is_frame(self) -> bool:
        return self.packet_type in (PKT_CODED_FRAMES, PKT_CODED_FRAMES_X) and self.frame_type != FRAME_COMMAND

    @property
    def is_keyframe(self) -> bool:
        """A coded keyframe (sequence headers, metadata and commands are not)."""
        return self.frame_type == FRAME_KEY and self.is_frame


class AudioTag(_Tag):
    """One parsed FLV/RTMP audio payload (legacy SoundFormat or enhanced ExHeader).

    ``frame_type`` holds the SoundFormat (9 = ExHeader); ``packet_type`` is APKT_*: legacy
    AAC's AACPacketType 0/1, other legacy formats CodedFrames. ``payload[offset:end]`` is
    the codec data (ASC, raw AAC, MP3 frames, an Opus packet, ...).
    """

    __slots__ = ()

    @property
    def is_sequence_header(self) -> bool:
        return self.packet_type == APKT_SEQUENCE_START


def _malformed(tag, at: int):
    """Mark ``tag`` as cut short: no codec data (offset == end)."""
    tag.malformed = True
    tag.offset = tag.end = at
    return tag


def _skip_modex(p, pos: int, n: int, pt: int):
    """Resolve ModEx wrappers: (real packet type, position after them) or None if truncated."""
    for _ in range(_MAX_MODEX):
        if pt != PKT_MODEX:
            return pt, pos
        if pos >= n:
            return None
        size = p[pos] + 1
        pos += 1
        if size == 256:
            if pos + 2 > n:
                return None
            size = ((p[pos] << 8) | p[pos + 1]) + 1
            pos += 2
        pos += size
        if pos >= n:
            return None
        pt = p[pos] & 0x0F  # high nibble: ModExType (0 TimestampOffsetNano), ignored
        pos += 1
    return None


def _tracks(tag, p, pos: int, n: int, mt_type: int, fourcc: bytes, names: dict):
    """Walk the tracks of a multitrack body; leave ``tag`` on track 0, else on the first."""
    first = None
    while pos < n:
        if mt_type == MT_MANY_TRACKS_MANY_CODECS:
            if pos + 4 > n:
                break
            fourcc = bytes(p[pos:pos + 4])
            pos += 4
        if pos >= n:
            break
        track_id = p[pos]
        pos += 1
        if mt_type == MT_ONE_TRACK:
            end = n
        else:
            if pos + 3 > n:
                break
            end = min(n, pos + ((p[pos] << 16) | (p[pos + 1] << 8) | p[pos + 2]) + 3)
            pos += 3
        if first is None:
            first = (fourcc, track_id, pos, end)
        if track_id == 0:
            first = (fourcc, track_id, pos, end)
            break
        pos = end
        if mt_type == MT_ONE_TRACK:
            break
    if first is None:
        _malformed(tag, n)
        return None
    fourcc, tag.track_id, pos, end = first
    tag.fourcc = fourcc
    tag.codec = names.get(fourcc, UNKNOWN)
    tag.end = end
    return pos


def _fourcc_and_tracks(tag, p, pos: int, n: int, multitrack: bool, names: dict):
    """After the (ModEx-resolved) packet type: the FourCC, or the Multitrack header and its
    tracks. Returns the position of the track's body, or None (``tag`` marked malformed)."""
    fourcc = b""
    if multitrack:
        if pos >= n:
            _malformed(tag, n)
            return None
        tag.multitrack = True
        mt_type = p[pos] >> 4
        tag.packet_type = p[pos] & 0x0F
        pos += 1
    if not multitrack or mt_type != MT_MANY_TRACKS_MANY_CODECS:
        if pos + 4 > n:
            _malformed(tag, n)
            return None
        fourcc = bytes(p[pos:pos + 4])
        pos += 4
    if multitrack:
        return _tracks(tag, p, pos, n, mt_type, fourcc, names)
    tag.fourcc = fourcc
    tag.codec = names.get(fourcc, UNKNOWN)
    return pos


def parse_video_tag(payload) -> VideoTag:
    """Parse the headers of a video payload of either layout; never raises.

    Legacy: FrameType/CodecID byte, then for AVC (7), HEVC (12, CDN-Union) and AV1 (13,
    SRS) the AVCPacketType and a SI24 composition time. Enhanced (IsExHeader bit): frame
    type and VideoPacketType, ModEx wrappers, a Multitrack header (track 0 decides), the
    FourCC, and a composition time for avc1/hvc1/vvc1 CodedFrames. An empty payload or an
    unknown codec gives ``codec == "unknown"``.
    """
    tag = VideoTag()
    n = tag.end = len(payload)
    if not n:
        return _malformed(tag, 0)
    b0 = payload[0]
    if not b0 & 0x80:
        tag.frame_type = b0 >> 4
        cid = b0 & 0x0F
        tag.codec = LEGACY_VIDEO_NAMES.get(cid, UNKNOWN)
        if cid in (VIDEO_AVC, VIDEO_HEVC, VIDEO_AV1):
            if n < 5:
                tag.malformed = True
                tag.offset = n
                tag.packet_type = payload[1] if n > 1 else PKT_CODED_FRAMES
                return tag
            tag.packet_type = payload[1]
            c = (payload[2] << 16) | (payload[3] << 8) | payload[4]
            tag.cts = c - 0x1000000 if c & 0x800000 else c
            tag.offset = 5
        else:
            tag.offset = 1
        return tag
    tag.enhanced = True
    tag.frame_type = (b0 >> 4) & 0x07
    r = _skip_modex(payload, 1, n, b0 & 0x0F)
    if r is None:
        return _malformed(tag, n)
    pt, pos = r
    tag.packet_type = pt
    if tag.frame_type == FRAME_COMMAND and pt != PKT_METADATA:
        tag.offset = min(pos, n)  # a VideoCommand byte follows; no FourCC
        return tag
    pos = _fourcc_and_tracks(tag, payload, pos, n, pt == PKT_MULTITRACK, VIDEO_FOURCC_NAMES)
    if pos is None:
        return tag
    pt = tag.packet_type
    if pt == PKT_CODED_FRAMES and tag.fourcc in _CTS_FOURCCS:
        if pos + 3 > tag.end:
            return _malformed(tag, tag.end)
        c = (payload[pos] << 16) | (payload[pos + 1] << 8) | payload[pos + 2]
        tag.cts = c - 0x1000000 if c & 0x800000 else c
        pos += 3
    tag.offset = pos
    return tag


def parse_audio_tag(payload) -> AudioTag:
    """Parse the headers of an audio payload (legacy or enhanced ExHeader); never raises."""
    tag = AudioTag()
    n = tag.end = len(payload)
    if not n:
        return _malformed(tag, 0)
    b0 = payload[0]
    fmt = tag.frame_type = b0 >> 4
    if fmt != AUDIO_EX_HEADER:
        tag.codec = LEGACY_AUDIO_NAMES.get(fmt, UNKNOWN)
        if fmt == AUDIO_AAC:
            if n < 2:
                return _malformed(tag, n)
            tag.packet_type = payload[1]
            tag.offset = 2
        else:
            tag.offset = 1
        return tag
    tag.enhanced = True
    r = _skip_modex(payload, 1, n, b0 & 0x0F)
    if r is None:
        return _malformed(tag, n)
    pt, pos = r
    tag.packet_type = pt
    pos = _fourcc_and_tracks(tag, payload, pos, n, pt == APKT_MULTITRACK, AUDIO_FOURCC_NAMES)
    if pos is None:
        return tag
    tag.offset = pos
    return tag


def video_codec(payload: bytes) -> int:
    """The FLV codec id of a video payload, resolving Enhanced RTMP FourCCs (hvc1 -> 12,
    av01 -> 13, avc1 -> 7, also inside ModEx and Multitrack); 0 if empty or other."""
    if not payload:
        return 0
    if not payload[0] & 0x80:
        return payload[0] & 0x0F
    return ENHANCED_FOURCC.get(parse_video_tag(payload).fourcc, 0)


def video_flags(payload: bytes) -> int:
    """The MediaMessage flags of a video payload, for either layout (computed at ingest).

    F_KEYFRAME: frame type 1 (legacy: any packet of a keyframe, the sequence header
    included, as SRS; enhanced: SequenceStart and coded frames only). F_SEQUENCE_HEADER: a
    config record (F_EMPTY_CONFIG too when it holds no bytes). F_COLOR_INFO: enhanced
    Metadata. For a multitrack tag only track 0 sets any of these; a FourCC this module
    does not know sets none (its tags pass through, the cached config and GOP stay).
    """
    n = len(payload)
    if n < 2:
        return F_VIDEO
    b0 = payload[0]
    if not b0 & 0x80:  # legacy: the fast path
        flags = F_VIDEO | F_KEYFRAME if (b0 >> 4) == 1 else F_VIDEO
        if (b0 & 0x0F) in (VIDEO_AVC, VIDEO_HEVC, VIDEO_AV1) and payload[1] == 0:
            flags |= F_SEQUENCE_HEADER
        return flags
    tag = parse_video_tag(payload)
    if tag.track_id != 0 or tag.malformed or tag.codec == UNKNOWN:
        return F_VIDEO  # an unknown FourCC passes through but never replaces the config nor starts a GOP
    pt = tag.packet_type
    if pt == PKT_METADATA:
        return F_VIDEO | F_COLOR_INFO
    if tag.frame_type == FRAME_COMMAND:
        return F_VIDEO
    flags = F_VIDEO
    if pt == PKT_SEQUENCE_START:
        flags |= F_SEQUENCE_HEADER
        if tag.offset >= tag.end:
            flags |= F_EMPTY_CONFIG
    if tag.frame_type == FRAME_KEY and pt in (PKT_SEQUENCE_START, PKT_CODED_FRAMES, PKT_CODED_FRAMES_X):
        flags |= F_KEYFRAME
    return flags


def audio_flags(payload: bytes) -> int:
    """The MediaMessage flags of an audio payload: F_SEQUENCE_HEADER for legacy AAC's
    (0xAF 00) and an enhanced SequenceStart of track 0 of a known FourCC (Opus, FLAC, mp4a, ...)."""
    n = len(payload)
    if n < 2:
        return F_AUDIO
    fmt = payload[0] >> 4
    if fmt == AUDIO_AAC:
        return F_AUDIO | F_SEQUENCE_HEADER if payload[1] == 0 else F_AUDIO
    if fmt != AUDIO_EX_HEADER:
        return F_AUDIO
    tag = parse_audio_tag(payload)
    if tag.track_id == 0 and not tag.malformed and tag.codec != UNKNOWN and tag.packet_type == APKT_SEQUENCE_START:
        if tag.offset >= tag.end:
            return F_AUDIO | F_SEQUENCE_HEADER | F_EMPTY_CONFIG
        return F_AUDIO | F_SEQUENCE_HEADER
    return F_AUDIO


def is_video_codec_ok(payload: bytes) -> bool:
    """SRS drops legacy video whose codec it does not know (#421): AVC, HEVC, AV1 only.
    Enhanced RTMP tags pass whatever their FourCC (passthrough; never ends a publish)."""
    if not payload:
        return False
    if payload[0] & 0x80:
        return True
    return (payload[0] & 0x0F) in VIDEO_CODEC_NAMES


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


def parse_avcc(record) -> tuple[int, list, list]:
    """An AVCDecoderConfigurationRecord: (NALU length size, [SPS], [PPS])."""
    if len(record) < 7:
        raise ValueError("avcC: shorter than 7 bytes")
    length_size = (record[4] & 0x03) + 1
    pos = 5
    out = []
    for count_mask in (0x1F, 0xFF):
        if pos >= len(record):
            raise ValueError("avcC: truncated parameter set count")
        count = record[pos] & count_mask
        pos += 1
        sets = []
        for _ in range(count):
            size = int.from_bytes(record[pos:pos + 2], "big")
            nal = bytes(record[pos + 2:pos + 2 + size])
            if pos + 2 > len(record) or len(nal) != size:
                raise ValueError("avcC: truncated parameter set")
            sets.append(nal)
            pos += 2 + size
        out.append(sets)
    return length_size, out[0], out[1]


HEVC_NAL_VPS = 32
HEVC_NAL_SPS = 33
HEVC_NAL_PPS = 34


def parse_hvcc(record) -> tuple[int, dict]:
    """An HEVCDecoderConfigurationRecord: (NALU length size, {nal type: [NALUs]})."""
    if len(record) < 23:
        raise ValueError("hvcC: shorter than 23 bytes")
    length_size = (record[21] & 0x03) + 1
    arrays = {}
    pos = 23
    for _ in range(record[22]):
        if pos + 3 > len(record):
            raise ValueError("hvcC: truncated array header")
        nal_type = record[pos] & 0x3F
        count = int.from_bytes(record[pos + 1:pos + 3], "big")
        pos += 3
        for _ in range(count):
            size = int.from_bytes(record[pos:pos + 2], "big")
            nal = bytes(record[pos + 2:pos + 2 + size])
            if pos + 2 > len(record) or len(nal) != size:
                raise ValueError("hvcC: truncated NAL unit")
            arrays.setdefault(nal_type, []).append(nal)
            pos += 2 + size
    return length_size, arrays


HEVC_PROFILES = {1: "Main", 2: "Main10", 3: "MainStillPicture", 4: "RExt"}


def parse_hevc_sps(sps: bytes) -> dict:
    """Width, height, profile and level from an H.265 SPS NAL unit (with its 2-byte header)."""
    r = BitReader(_unescape_rbsp(sps[2:]))
    r.bits(4)  # sps_video_parameter_set_id
    max_sub_layers_minus1 = r.bits(3)
    r.bit()  # temporal_id_nesting
    r.bits(2)  # general_profile_space
    r.bit()  # general_tier_flag
    profile_idc = r.bits(5)
    r.bits(32)  # compatibility flags
    r.bits(48)  # progressive/interlaced/non-packed/frame-only + 44 reserved bits
    level_idc = r.bits(8)
    sub_profile, sub_level = [], []
    for _ in range(max_sub_layers_minus1):
        sub_profile.append(r.bit())
        sub_level.append(r.bit())
    if max_sub_layers_minus1 > 0:
        r.bits(2 * (8 - max_sub_layers_minus1))
    for i in range(max_sub_layers_minus1):
        if sub_profile[i]:
            r.bits(88)
        if sub_level[i]:
            r.bits(8)
    r.ue()  # sps_seq_parameter_set_id
    chroma_format_idc = r.ue()
    if chroma_format_idc == 3:
        r.bit()  # separate_colour_plane_flag
    width = r.ue()
    height = r.ue()
    if r.bit():  # conformance_window_flag
        left, right, top, bottom = r.ue(), r.ue(), r.ue(), r.ue()
        sub_w = 2 if chroma_format_idc in (1, 2) else 1
        sub_h = 2 if chroma_format_idc == 1 else 1
        width -= sub_w * (left + right)
        height -= sub_h * (top + bottom)
    level = level_idc / 30
    level_s = f"{level:.1f}".rstrip("0").rstrip(".")
    return {"profile": HEVC_PROFILES.get(profile_idc, str(profile_idc)), "level": level_s, "width": width, "height": height}


def _leb128(data, pos: int) -> tuple[int, int]:
    v = 0
    for i in range(8):
        if pos >= len(data):
            raise ValueError("av1: truncated leb128")
        b = data[pos]
        pos += 1
        v |= (b & 0x7F) << (7 * i)
        if not b & 0x80:
            return v, pos
    raise ValueError("av1: leb128 longer than 8 bytes")


AV1_PROFILES = {0: "Main", 1: "High", 2: "Professional"}


def parse_av1_sequence_header_obu(obu: bytes) -> dict:
    """Width, height, profile and level from an AV1 sequence header OBU (AV1 spec 5.5)."""
    r = BitReader(obu)
    seq_profile = r.bits(3)
    r.bit()  # still_picture
    reduced = r.bit()
    level = 0
    if reduced:
        level = r.bits(5)
    else:
        decoder_model_info = False
        buffer_delay_len = 0
        if r.bit():  # timing_info_present_flag
            r.bits(32)
            r.bits(32)
            if r.bit():  # equal_picture_interval: num_ticks_per_picture_minus_1 as uvlc
                zeros = 0
                while not r.bit():
                    zeros += 1
                    if zeros > 32:
                        raise ValueError("av1: bad uvlc")
                r.bits(zeros)
            if r.bit():  # decoder_model_info_present_flag
                decoder_model_info = True
                buffer_delay_len = r.bits(5) + 1
                r.bits(32)
                r.bits(10)
        initial_display_delay = r.bit()
        for i in range(r.bits(5) + 1):
            r.bits(12)  # operating_point_idc
            lvl = r.bits(5)
            if i == 0:
                level = lvl
            if lvl > 7:
                r.bit()
            if decoder_model_info and r.bit():
                r.bits(2 * buffer_delay_len + 1)
            if initial_display_delay and r.bit():
                r.bits(4)
    wbits = r.bits(4) + 1
    hbits = r.bits(4) + 1
    width = r.bits(wbits) + 1
    height = r.bits(hbits) + 1
    return {"profile": AV1_PROFILES.get(seq_profile, str(seq_profile)), "level": f"{2 + (level >> 2)}.{level & 3}",
            "width": width, "height": height}


def parse_av1c(record) -> dict:
    """An AV1CodecConfigurationRecord: the info of the sequence header OBU among its configOBUs."""
    if len(record) < 4:
        raise ValueError("av1C: shorter than 4 bytes")
    pos = 4
    while pos < len(record):
        h = record[pos]
        obu_type = (h >> 3) & 0x0F
        pos += 2 if h & 0x04 else 1
        if h & 0x02:
            size, pos = _leb128(record, pos)
        else:
            size = len(record) - pos
        if obu_type == 1:
            return parse_av1_sequence_header_obu(bytes(record[pos:pos + size]))
        pos += size
    raise ValueError("av1C: no sequence header OBU")


def parse_vpcc(record) -> dict:
    """A VPCodecConfigurationRecord (vpcC, full box payload after version/flags): profile
    and level; the frame size is not in it."""
    if len(record) < 2:
        raise ValueError("vpcC: shorter than 2 bytes")
    level = record[1]
    return {"profile": str(record[0]), "level": f"{level // 10}.{level % 10}", "width": 0, "height": 0}


def video_info(payload, parse_sps: bool = True) -> dict:
    """What the API reports of a video sequence header, either layout: codec name (H264,
    H265, AV1, VP9, ..., ``Others`` when unknown), profile, level, width, height.

    Raises ValueError/IndexError when the config record is malformed (the codec name is
    then known from ``parse_video_tag(payload).codec``).
    """
    tag = parse_video_tag(payload)
    codec = tag.codec if tag.codec != UNKNOWN else "Others"
    info = {"codec": codec, "profile": "", "level": "", "width": 0, "height": 0}
    if not parse_sps or not tag.is_sequence_header or tag.offset >= tag.end:
        return info
    record = payload[tag.offset:tag.end]
    if codec == "H264":
        _, sps, _ = parse_avcc(record)
        if not sps:
            raise ValueError("avc: no sps")
        info.update(parse_avc_sps(sps[0]))
    elif codec == "H265":
        _, arrays = parse_hvcc(record)
        if not arrays.get(HEVC_NAL_SPS):
            raise ValueError("hevc: no sps")
        info.update(parse_hevc_sps(arrays[HEVC_NAL_SPS][0]))
    elif codec == "AV1":
        info.update(parse_av1c(record))
    elif codec == "VP9":
        info.update(parse_vpcc(record[4:]))  # vpcC is a full box: version and flags first
    return info


def audio_info(payload) -> dict:
    """What the API reports of an audio payload: codec name and, from an AAC
    AudioSpecificConfig, sample rate, channels and profile (0 / "" when unknown)."""
    tag = parse_audio_tag(payload)
    info = {"codec": tag.codec if tag.codec != UNKNOWN else "Others", "sample_rate": 0, "channel": 0, "profile": ""}
    if tag.codec == "AAC" and tag.is_sequence_header and tag.end - tag.offset >= 2:
        info.update(parse_aac_config(payload[tag.offset:tag.end]))
    return info


AAC_PROFILES = {1: "Main", 2: "LC", 3: "SSR", 5: "HE", 29: "HEv2"}
AAC_RATES = [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350]


def parse_aac_config(asc) -> dict:
    """An AudioSpecificConfig: object type (profile), sample rate, channels."""
    if len(asc) < 2:
        raise ValueError("aac: AudioSpecificConfig shorter than 2 bytes")
    object_type = asc[0] >> 3
    rate_index = ((asc[0] & 0x07) << 1) | (asc[1] >> 7)
    channels = (asc[1] >> 3) & 0x0F
    rate = AAC_RATES[rate_index] if rate_index < len(AAC_RATES) else 0
    return {"codec": "AAC", "sample_rate": rate, "channel": channels, "profile": AAC_PROFILES.get(object_type, str(object_type))}


def parse_aac_sequence_header(payload: bytes) -> dict:
    """Parse an FLV AAC sequence header (AudioSpecificConfig after 2 bytes). An enhanced
    audio sequence header (Opus, FLAC, mp4a, ...) gives ``audio_info`` instead."""
    if payload and payload[0] >> 4 == AUDIO_EX_HEADER:
        return audio_info(payload)
    if len(payload) < 4:
        raise ValueError("aac: sequence header too short")
    return parse_aac_config(payload[2:])
