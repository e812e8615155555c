"""MPEG-TS muxing of a live stream (SRS's SrsTsContext / SrsTsMessageCache, ISO/IEC 13818-1),
and the ADTS and MP3 helpers of the ``.aac`` and ``.mp3`` outputs.

``TsMuxer`` is fed the stream's media messages in order, once per stream (not per player):
``mux(msg)`` returns the 188-byte packets of that message, and every player sends the same
bytes. So everything that must be continuous lives here, on the stream's timeline:
continuity counters per PID, PAT/PMT repetition, PCR. A player may start at any message
whose packets begin with PAT+PMT (``starts_with_psi``): every video keyframe does, and so
does the first message after each PAT/PMT interval; from there on it sees one continuous
TS. Its first packet on a PID carries whatever counter the stream is at, which a demuxer
accepts (the first packet of a PID has no predecessor).

Layout as SRS writes it, so that byte oracles match: program 1, transport stream id 1,
PMT PID 0x1001, video PID 0x100 (H.264 stream type 0x1B, HEVC 0x24), audio PID 0x101 AAC
(ADTS, 0x0F) or 0x102 MP3 (0x03); the PMT lists audio first, PCR on the video PID (the
audio PID when there is no video); PES stream id 0xE0 / 0xC0; PTS only when it equals the
DTS; PCR = DTS; each AVC access unit starts with an AUD, SPS/PPS (VPS/SPS/PPS for HEVC)
from the sequence header go before the first IRAP NAL of a keyframe that lacks them.
Timestamps are the message's milliseconds times 90, without offset (SRS does the same).

Where SRS breaks the standard this module follows it (kernel/ts.py is the one place):

* PAT/PMT repeat before every keyframe and at least every 500 ms of stream time (SRS:
  once per player and on codec changes), with continuity counters (SRS: always 0).
* The PMT version goes up (mod 32) whenever its content changes (SRS: always 0, #4731).
* The first packet of a keyframe's PES sets random_access_indicator (SRS: never).
* PCR at least every 100 ms while media flows: on every PES of the PCR PID, and a
  PCR-only packet on it before other PES when 70 ms passed without one (SRS: once per GOP).
* A PES that leaves one byte free in its last packet gets a 1-byte adaptation field
  (length 0); SRS spills a payload byte into an extra packet instead.
* HEVC access units get an AUD (type 35) when they have none, as ffmpeg writes them.
"""

from __future__ import annotations

from ..errors import CodecError, ERROR_AAC_DECODE_ERROR, ERROR_MP3_DECODE_ERROR
from . import codec
from .message import AUDIO, VIDEO

TS_PACKET = 188
PAT_PID = 0x0000
PMT_PID = 0x1001
VIDEO_PID = 0x100
AAC_PID = 0x101
MP3_PID = 0x102
PROGRAM_NUMBER = 1
TRANSPORT_STREAM_ID = 1

ST_MP3 = 0x03  # ISO/IEC 11172-3 audio, as SRS (0x04, 13818-3, is not used)
ST_AAC = 0x0F  # ISO/IEC 13818-7 ADTS
ST_H264 = 0x1B
ST_HEVC = 0x24

PSI_INTERVAL_MS = 500
PCR_INTERVAL_MS = 70  # a PCR-only packet when this much passed: keeps PCR gaps under 100 ms
MAX_ADTS_RAW = 0x1FFF - 7  # the 13-bit ADTS frame_length counts the 7-byte header

_JUMP_BACK_MS = 1000  # a timestamp this far back is a new timeline, not A/V interleaving
_TS_MASK = (1 << 33) - 1
_PES_MAX = 0xFFFF


def _crc32_table():
    table = []
    for i in range(256):
        c = i << 24
        for _ in range(8):
            c = ((c << 1) ^ 0x04C11DB7) if c & 0x80000000 else (c << 1)
        table.append(c & 0xFFFFFFFF)
    return table


_CRC_TABLE = _crc32_table()


def crc32_mpeg2(data) -> int:
    """CRC-32/MPEG-2 (poly 0x04C11DB7, init 0xFFFFFFFF, no reflection, no final xor)."""
    crc = 0xFFFFFFFF
    t = _CRC_TABLE
    for b in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ t[(crc >> 24) ^ b]
    return crc


def pat_section() -> bytes:
    """The PAT section SRS writes (program 1 on PMT PID 0x1001, version 0), CRC included."""
    body = bytes([0x00, 0xB0, 0x0D, TRANSPORT_STREAM_ID >> 8, TRANSPORT_STREAM_ID & 0xFF, 0xC1, 0x00, 0x00,
                  PROGRAM_NUMBER >> 8, PROGRAM_NUMBER & 0xFF, 0xE0 | (PMT_PID >> 8), PMT_PID & 0xFF])
    return body + crc32_mpeg2(body).to_bytes(4, "big")


def pmt_section(streams: list[tuple[int, int]], pcr_pid: int, version: int = 0) -> bytes:
    """A PMT section for program 1: ``streams`` is [(stream_type, pid)] in PMT order."""
    es = b"".join(bytes([st, 0xE0 | (pid >> 8), pid & 0xFF, 0xF0, 0x00]) for st, pid in streams)
    length = 9 + len(es) + 4
    body = bytes([0x02, 0xB0 | (length >> 8), length & 0xFF, PROGRAM_NUMBER >> 8, PROGRAM_NUMBER & 0xFF,
                  0xC1 | ((version & 0x1F) << 1), 0x00, 0x00, 0xE0 | (pcr_pid >> 8), pcr_pid & 0xFF, 0xF0, 0x00]) + es
    return body + crc32_mpeg2(body).to_bytes(4, "big")


def _psi_packets(pid: int, section: bytes) -> list[bytes]:
    """The 16 packets (one per continuity counter) carrying ``section`` after a pointer field."""
    tail = b"\x00" + section
    tail += b"\xff" * (184 - len(tail))
    return [bytes([0x47, 0x40 | (pid >> 8), pid & 0xFF, 0x10 | cc]) + tail for cc in range(16)]


def _headers(pid: int) -> tuple[list[bytes], list[bytes], list[bytes], list[bytes]]:
    """4-byte TS headers per counter: payload only / with AF, with and without PUSI."""
    hi, lo = pid >> 8, pid & 0xFF
    return ([bytes([0x47, 0x40 | hi, lo, 0x10 | cc]) for cc in range(16)],
            [bytes([0x47, 0x40 | hi, lo, 0x30 | cc]) for cc in range(16)],
            [bytes([0x47, hi, lo, 0x10 | cc]) for cc in range(16)],
            [bytes([0x47, hi, lo, 0x30 | cc]) for cc in range(16)])


def _stuffing(size: int) -> bytes:
    """An adaptation field of exactly ``size`` bytes (>= 1) with no flags set."""
    if size == 1:
        return b"\x00"
    return bytes([size - 1, 0x00]) + b"\xff" * (size - 2)


# _STUFF[r]: the AF that fills a packet holding r payload bytes (r < 184).
_STUFF = [_stuffing(184 - r) for r in range(184)]


def _pcr_bytes(pcr: int) -> bytes:
    return (((pcr & _TS_MASK) << 15) | 0x7E00).to_bytes(6, "big")


def _timestamp(prefix: int, t: int) -> bytes:
    """A 5-byte PES PTS/DTS field (ISO/IEC 13818-1 2.4.3.7)."""
    return bytes([(prefix << 4) | ((t >> 29) & 0x0E) | 1, (t >> 22) & 0xFF, ((t >> 14) & 0xFE) | 1,
                  (t >> 7) & 0xFF, ((t << 1) & 0xFE) | 1])


def pes_header(stream_id: int, payload_size: int, dts: int, pts: int) -> bytes:
    """A PES header (SRS create_pes_first): PTS only when PTS == DTS; length 0 when too big."""
    if pts == dts:
        opt = _timestamp(2, pts)
        flags = 0x80
    else:
        opt = _timestamp(3, pts) + _timestamp(1, dts)
        flags = 0xC0
    length = payload_size + 3 + len(opt)
    if length > _PES_MAX:
        length = 0
    return bytes([0, 0, 1, stream_id, length >> 8, length & 0xFF, 0x80, flags, len(opt)]) + opt


def starts_with_psi(data) -> bool:
    """True when TS bytes begin with a PAT (a player may start on them)."""
    return len(data) >= 4 and data[0] == 0x47 and data[1] == 0x40 and data[2] == 0x00


class _Pid:
    __slots__ = ("pid", "cc", "start", "start_af", "cont", "cont_af")

    def __init__(self, pid: int):
        self.pid = pid
        self.cc = 0
        self.start, self.start_af, self.cont, self.cont_af = _headers(pid)

    def packets(self, data, af_body: bytes, out: list) -> None:
        """Append the packets of one PES (``data``) to ``out``; ``af_body`` holds the first
        packet's AF flags byte and fields (b"" for none)."""
        n = len(data)
        cc = self.cc
        view = memoryview(data)
        if af_body:
            room = 183 - len(af_body)
            take = room if n > room else n
            af = bytes([183 - take]) + af_body + b"\xff" * (room - take)
            out.append(self.start_af[cc])
            out.append(af)
        else:
            take = 184 if n > 184 else n
            if take < 184:
                out.append(self.start_af[cc])
                out.append(_STUFF[take])
            else:
                out.append(self.start[cc])
        out.append(view[:take])
        cc = (cc + 1) & 0x0F
        pos = take
        cont = self.cont
        full_end = n - 184
        while pos <= full_end:
            out.append(cont[cc])
            out.append(view[pos:pos + 184])
            pos += 184
            cc = (cc + 1) & 0x0F
        if pos < n:
            out.append(self.cont_af[cc])
            out.append(_STUFF[n - pos])
            out.append(view[pos:])
            cc = (cc + 1) & 0x0F
        self.cc = cc

    def pcr_only(self, pcr: int) -> bytes:
        """An adaptation-field-only packet carrying a PCR: it repeats the counter of the
        PID's last packet with payload (13818-1 2.4.3.3: no payload, no increment)."""
        cc = (self.cc - 1) & 0x0F
        return bytes([0x47, self.pid >> 8, self.pid & 0xFF, 0x20 | cc, 183, 0x10]) + _pcr_bytes(pcr) + b"\xff" * 176


class AdtsBuilder:
    """ADTS headers from an AudioSpecificConfig (SRS srs_aac_rtmp2ts + do_cache_aac).

    ``mpeg2`` picks the ID bit: True (``FF F9``) as SRS's TS, False (``FF F1``) for the
    ``.aac`` output. HE-AAC and HE-AACv2 signal AAC-LC, as SRS does; buffer fullness 0x7FF.
    """

    __slots__ = ("base", "asc", "rate")

    def __init__(self, asc, mpeg2: bool = True):
        if len(asc) < 2:
            raise CodecError(f"aac: AudioSpecificConfig of {len(asc)} bytes, need 2", ERROR_AAC_DECODE_ERROR)
        aot = asc[0] >> 3
        sfi = ((asc[0] & 0x07) << 1) | (asc[1] >> 7)
        channels = (asc[1] >> 3) & 0x0F
        if aot in (5, 29) or aot == 0:
            aot = 2
        profile = min(aot - 1, 3)
        self.asc = bytes(asc)
        self.rate = codec.AAC_RATES[sfi] if sfi < len(codec.AAC_RATES) else 0  # Hz, 0 when unknown
        # 56 bits: sync 12, ID 1, layer 2, protection_absent 1, profile 2, sfi 4, private 1,
        # channels 3, 4 flag bits, frame_length 13 (shift 13), buffer fullness 11, blocks 2.
        self.base = ((0xFFF << 44) | ((1 if mpeg2 else 0) << 43) | (1 << 40) | (profile << 38) | ((sfi & 0x0F) << 34)
                     | ((channels & 0x07) << 30) | (0x7FF << 2))

    def header(self, raw_size: int) -> bytes:
        if raw_size > MAX_ADTS_RAW:
            raise CodecError(f"aac: raw frame of {raw_size} bytes exceeds ADTS's {MAX_ADTS_RAW}", ERROR_AAC_DECODE_ERROR)
        return (self.base | ((raw_size + 7) << 13)).to_bytes(7, "big")


class AdtsConverter:
    """FLV AAC payloads to ADTS frames, for the ``.aac`` output (SRS SrsAacTransmuxer).

    ``feed(payload)`` returns the ADTS frame of a raw AAC payload, b"" for the sequence
    header (it only updates the config) or for frames before any config; raises
    CodecError for audio that is not AAC (SRS ends the player then).
    """

    __slots__ = ("adts", "mpeg2")

    def __init__(self, mpeg2: bool = False):
        self.adts = None
        self.mpeg2 = mpeg2

    def feed(self, payload) -> bytes:
        tag = codec.parse_audio_tag(payload)
        if tag.codec != "AAC" or tag.malformed:
            raise CodecError(f"aac: audio codec {tag.codec} in an AAC stream", ERROR_AAC_DECODE_ERROR)
        data = payload[tag.offset:tag.end]
        if tag.packet_type == codec.APKT_SEQUENCE_START:
            if len(data) >= 2:
                self.adts = AdtsBuilder(data, self.mpeg2)
            return b""
        if self.adts is None or tag.packet_type != codec.APKT_CODED_FRAMES or not data:
            return b""
        return self.adts.header(len(data)) + data


# What SRS's .mp3 output writes first: an ID3v2.3 tag of 10 zero bytes.
MP3_ID3V2_HEADER = b"ID3\x03\x00\x00\x00\x00\x00\x0a" + b"\x00" * 10


def mp3_frames(payload) -> bytes:
    """The MPEG audio frames of an FLV MP3 payload (the 1-byte header removed), for the
    ``.mp3`` output; raises CodecError for other codecs."""
    tag = codec.parse_audio_tag(payload)
    if tag.codec != "MP3" or tag.malformed:
        raise CodecError(f"mp3: audio codec {tag.codec} in an MP3 stream", ERROR_MP3_DECODE_ERROR)
    return bytes(payload[tag.offset:tag.end])


_AVC_AUD = b"\x00\x00\x00\x01\x09\xf0"
_HEVC_AUD = b"\x00\x00\x00\x01\x46\x01\x50"
_START = b"\x00\x00\x00\x01"


def _split_nalus(data, length_size: int) -> list:
    """NAL units of a length-prefixed payload, or of an Annex-B one (detected when the
    lengths do not add up); empty NAL units are left out."""
    n = len(data)
    nalus = []
    pos = 0
    view = memoryview(data)
    while pos + length_size <= n:
        size = int.from_bytes(view[pos:pos + length_size], "big")
        pos += length_size
        if size > n - pos:
            break
        if size:
            nalus.append(view[pos:pos + size])
        pos += size
    else:
        if pos == n:
            return nalus
    if bytes(view[:3]) == b"\x00\x00\x01" or bytes(view[:4]) == _START:
        return split_annexb(bytes(data))
    return nalus


def nalus_ok(data, length_size: int) -> bool:
    """Whether a frame's payload reads as NAL units: ``length_size``-byte lengths that add
    up to exactly its size, or Annex-B (a start code first)."""
    n = len(data)
    pos = 0
    while pos + length_size <= n:
        size = int.from_bytes(data[pos:pos + length_size], "big")
        pos += length_size
        if size > n - pos:
            break
        pos += size
    else:
        if pos == n:
            return True
    head = bytes(data[:4])
    return head[:3] == b"\x00\x00\x01" or head == _START


def split_annexb(data: bytes) -> list:
    out = []
    i = data.find(b"\x00\x00\x01")
    while i >= 0:
        start = i + 3
        j = data.find(b"\x00\x00\x01", start)
        end = len(data) if j < 0 else j
        while end > start and data[end - 1] == 0:
            end -= 1
        if end > start:
            out.append(data[start:end])
        i = j
    return out


class TsMuxer:
    """One MPEG-TS for one stream: ``mux(msg) -> bytes``, deterministic per message.

    Feed every message of the stream in order (sequence headers and metadata too: they
    only update state and give b""). Unsupported codecs (AV1, VP9, Opus, ...) give b"".
    ``has_audio`` / ``has_video`` False leave that kind out: no PID in the PMT, its
    messages give b"" (SRS http_remux has_audio/has_video with guess_has_av off, and HLS's
    ``hls_acodec an`` / ``hls_vcodec vn``). ``audio_dts``, an object with
    ``dts(timestamp_ms, rate) -> 90 kHz`` (srspy/hls/timing.py's AudioDtsCounter for HLS's
    ``hls_dts_directly off``), gives AAC frames their DTS instead of the timestamp x 90.

    The PMT lists the codecs the stream revealed (by a sequence header, or MP3's first
    frame). ``expect(acodec, vcodec)`` names codecs for it to list before that (SRS's
    ``hls_acodec`` / ``hls_vcodec``), for tracks the caller knows the stream carries; the
    codec a track reveals replaces its expected one (a new PMT version when they differ).
    """

    __slots__ = ("video", "audio", "pat_cc", "pmt_cc", "pat_packets", "pmt_packets", "pmt_version",
                 "pmt_key", "psi_due", "last_psi_ms", "last_pcr_ms", "vcodec", "acodec", "length_size",
                 "param_sets", "adts", "has_audio", "has_video", "expect_acodec", "expect_vcodec", "audio_dts")

    def __init__(self, has_audio: bool = True, has_video: bool = True, audio_dts=None):
        self.has_audio = has_audio
        self.has_video = has_video
        self.audio_dts = audio_dts
        self.video = _Pid(VIDEO_PID)
        self.audio = {AAC_PID: _Pid(AAC_PID), MP3_PID: _Pid(MP3_PID)}
        self.pat_cc = 0
        self.pmt_cc = 0
        self.pat_packets = _psi_packets(PAT_PID, pat_section())
        self.pmt_packets = None
        self.pmt_version = -1
        self.pmt_key = None
        self.psi_due = True
        self.last_psi_ms = None
        self.last_pcr_ms = None
        self.vcodec = None  # "H264" / "H265"
        self.acodec = None  # "AAC" / "MP3"
        self.length_size = 4
        self.param_sets = b""  # Annex-B SPS/PPS (VPS/SPS/PPS) to insert before IRAP NALs
        self.adts = None
        self.expect_acodec = None  # "AAC" / "MP3": listed until the stream reveals its audio codec
        self.expect_vcodec = None  # "H264" / "H265"

    # -- PSI ---------------------------------------------------------------------------

    def expect(self, acodec: str | None, vcodec: str | None) -> None:
        """The codecs the PMT lists for tracks not revealed yet (None: that kind is not
        listed before it shows); a kind left out (``has_audio``/``has_video``) stays out."""
        self.expect_acodec = acodec if self.has_audio else None
        self.expect_vcodec = vcodec if self.has_video else None
        if self.codecs() != self.pmt_key:
            self.psi_due = True

    def codecs(self) -> tuple[str | None, str | None]:
        """(audio, video) codecs of the PMT: revealed, else expected."""
        return self.acodec or self.expect_acodec, self.vcodec or self.expect_vcodec

    def streams(self) -> list[tuple[int, int]]:
        """[(stream_type, pid)] of the current PMT, audio first as SRS."""
        out = []
        acodec, vcodec = self.codecs()
        if acodec == "AAC":
            out.append((ST_AAC, AAC_PID))
        elif acodec == "MP3":
            out.append((ST_MP3, MP3_PID))
        if vcodec == "H264":
            out.append((ST_H264, VIDEO_PID))
        elif vcodec == "H265":
            out.append((ST_HEVC, VIDEO_PID))
        return out

    @property
    def pcr_pid(self) -> int:
        if self.vcodec is not None or self.expect_vcodec is not None:
            return VIDEO_PID
        return AAC_PID if (self.acodec or self.expect_acodec) == "AAC" else MP3_PID

    def psi(self) -> bytes:
        """PAT + PMT with the stream's next counters (advances them). The PMT version goes
        up when its content differs from the PMT sent last."""
        key = self.codecs()
        if key != self.pmt_key:
            self.pmt_key = key
            self.pmt_version = (self.pmt_version + 1) & 0x1F
            self.pmt_packets = _psi_packets(PMT_PID, pmt_section(self.streams(), self.pcr_pid, self.pmt_version))
        pat = self.pat_packets[self.pat_cc]
        pmt = self.pmt_packets[self.pmt_cc]
        self.pat_cc = (self.pat_cc + 1) & 0x0F
        self.pmt_cc = (self.pmt_cc + 1) & 0x0F
        return pat + pmt

    def last_psi(self) -> bytes:
        """The PAT and PMT sent last, counters unchanged (b"" before the first): what a
        player that starts on a message without PSI gets first, so that the next PSI of the
        stream continues their counters for it."""
        if self.pmt_packets is None:
            return b""
        return self.pat_packets[(self.pat_cc - 1) & 0x0F] + self.pmt_packets[(self.pmt_cc - 1) & 0x0F]

    # -- messages ----------------------------------------------------------------------

    def mux(self, msg) -> bytes:
        t = msg.type
        if t == VIDEO:
            return self.mux_video(msg.payload, msg.timestamp) if self.has_video else b""
        if t == AUDIO:
            return self.mux_audio(msg.payload, msg.timestamp) if self.has_audio else b""
        return b""

    def _emit(self, pid: _Pid, pes_data, ms: int, keyframe: bool, out: list) -> None:
        """PAT/PMT when due, a PCR-only packet when due, then the PES packets."""
        last = self.last_psi_ms
        if self.psi_due or keyframe or last is None or ms - last >= PSI_INTERVAL_MS or last - ms > _JUMP_BACK_MS:
            out.append(self.psi())
            self.psi_due = False
            self.last_psi_ms = ms
        pcr_pid = self.pcr_pid
        is_pcr_pid = pid.pid == pcr_pid
        last = self.last_pcr_ms
        if last is None or last - ms > _JUMP_BACK_MS:
            pcr_ms = ms
        else:
            pcr_ms = ms if ms > last else last  # PCR never goes back (audio may run ahead of video)
        if not is_pcr_pid and (last is None or pcr_ms - last >= PCR_INTERVAL_MS or last - ms > _JUMP_BACK_MS):
            out.append((self.video if pcr_pid == VIDEO_PID else self.audio[pcr_pid]).pcr_only(pcr_ms * 90))
            self.last_pcr_ms = pcr_ms
        af = b""
        if is_pcr_pid:
            self.last_pcr_ms = pcr_ms
            af = (b"\x50" if keyframe else b"\x10") + _pcr_bytes(pcr_ms * 90)
        elif keyframe:
            af = b"\x40"
        pid.packets(pes_data, af, out)

    def mux_audio(self, payload, ms: int) -> bytes:
        tag = codec.parse_audio_tag(payload)
        if tag.malformed:
            return b""
        c = tag.codec
        data = payload[tag.offset:tag.end]
        if c == "AAC":
            if tag.packet_type == codec.APKT_SEQUENCE_START:
                if len(data) >= 2:
                    self.adts = AdtsBuilder(data, True)
                    self._set_audio("AAC")
                return b""
            if self.adts is None or tag.packet_type != codec.APKT_CODED_FRAMES or not data:
                return b""
            if len(data) > MAX_ADTS_RAW:
                return b""
            es = self.adts.header(len(data)) + data
            self._set_audio("AAC")
            pid = self.audio[AAC_PID]
            t90 = ms * 90 if self.audio_dts is None or not self.adts.rate else self.audio_dts.dts(ms, self.adts.rate)
        elif c == "MP3":
            if not data:
                return b""
            self._set_audio("MP3")
            es = bytes(data)
            pid = self.audio[MP3_PID]
            t90 = ms * 90
        else:
            return b""
        dts = t90 & _TS_MASK
        out = []
        self._emit(pid, pes_header(0xC0, len(es), dts, dts) + es, t90 // 90, False, out)
        return b"".join(out)

    def _set_audio(self, name: str):
        if self.acodec != name:
            self.acodec = name
            if self.codecs() != self.pmt_key:
                self.psi_due = True

    def _set_video(self, name: str):
        if self.vcodec != name:
            self.vcodec = name
            if self.codecs() != self.pmt_key:
                self.psi_due = True

    def mux_video(self, payload, ms: int) -> bytes:
        tag = codec.parse_video_tag(payload)
        c = tag.codec
        if tag.malformed or tag.track_id != 0 or c not in ("H264", "H265"):
            return b""
        pt = tag.packet_type
        if pt == codec.PKT_SEQUENCE_START:
            if tag.frame_type != codec.FRAME_COMMAND and tag.end > tag.offset:
                self._sequence_header(c, payload[tag.offset:tag.end])
            return b""
        if pt not in (codec.PKT_CODED_FRAMES, codec.PKT_CODED_FRAMES_X) or tag.frame_type == codec.FRAME_COMMAND:
            return b""
        if c != self.vcodec:
            # frames before (or without) their sequence header: keep going with what we have
            self.param_sets = b""
            self._set_video(c)
        nalus = _split_nalus(payload[tag.offset:tag.end], self.length_size)
        if not nalus:
            return b""
        keyframe = tag.frame_type == codec.FRAME_KEY
        es = self._annexb(nalus, keyframe, c == "H265")
        dts = (ms * 90) & _TS_MASK
        pts = ((ms + tag.cts) * 90) & _TS_MASK
        out = []
        self._emit(self.video, pes_header(0xE0, len(es), dts, pts) + es, ms, keyframe, out)
        return b"".join(out)

    def _sequence_header(self, c: str, record) -> None:
        try:
            if c == "H264":
                self.length_size, sps, pps = codec.parse_avcc(record)
                sets = sps + pps
            else:
                self.length_size, arrays = codec.parse_hvcc(record)
                sets = [arrays[t][0] for t in (codec.HEVC_NAL_VPS, codec.HEVC_NAL_SPS, codec.HEVC_NAL_PPS) if arrays.get(t)]
        except ValueError:
            return  # a malformed config: frames keep the previous one
        if self.length_size == 3:
            self.length_size = 4  # not allowed by ISO/IEC 14496-15; SRS refuses it too
        self.param_sets = b"".join(_START + s for s in sets)
        self._set_video(c)

    def _annexb(self, nalus: list, keyframe: bool, hevc: bool) -> bytes:
        """One access unit in Annex-B: an AUD unless it has one, then the parameter sets
        before the first IRAP NAL (or first VCL NAL of a keyframe) unless it has them."""
        parts = []
        if hevc:
            if (nalus[0][0] >> 1) & 0x3F != 35:
                parts.append(_HEVC_AUD)
        elif nalus[0][0] & 0x1F != 9:
            parts.append(_AVC_AUD)
        has_ps = False
        inserted = False
        for nal in nalus:
            if hevc:
                nt = (nal[0] >> 1) & 0x3F
                ps = 32 <= nt <= 34
                irap = 16 <= nt <= 23 or (keyframe and nt < 32)
            else:
                nt = nal[0] & 0x1F
                ps = nt == 7 or nt == 8
                irap = nt == 5 or (keyframe and 1 <= nt <= 5)
            if ps:
                has_ps = True
            elif irap and not inserted:
                inserted = True
                if not has_ps and self.param_sets:
                    parts.append(self.param_sets)
            parts.append(_START)
            parts.append(nal)
        return b"".join(parts)
