"""ISO base media file format (ISO/IEC 14496-12) writer: fragmented MP4 for HLS and DVR,
progressive MP4 (``moov`` at the end, as SRS's ``SrsMp4Encoder`` writes it) for DVR.

Pure: FLV tag bodies in, bytes out. Sample entries are built from what FLV carries:
``avc1`` + ``avcC`` (the AVC sequence header body is the AVCDecoderConfigurationRecord,
ISO 14496-15 5.3.3.1), ``hvc1`` + ``hvcC`` (the HEVCDecoderConfigurationRecord, 8.3.3.1)
and ``mp4a`` + ``esds`` (the AAC sequence header body is the AudioSpecificConfig). Video
samples keep FLV's length-prefixed NAL units as they are (the record declares the same
length size); audio samples are the raw AAC frames.

Timestamps arrive in milliseconds. One timescale serves every track of a file:
:data:`DVR_TIMESCALE` (1000, as SRS's DVR) or :data:`HLS_TIMESCALE` (90000, the clock of
MPEG-TS, so fMP4 HLS segments and TS segments of the same stream show the same times).

Three writers:

* :func:`init_segment` + :class:`Fragmenter` -- fMP4: ``ftyp`` + ``moov`` (with ``mvex``)
  once, then ``moof`` + ``mdat`` per fragment (HLS ``.m4s`` segments and parts, and DVR
  files that stay readable up to the last fragment when the process dies).
* :class:`ProgressiveMp4` -- ``ftyp``, ``mdat`` streamed, ``moov`` appended on close with
  ``stts``/``ctts``/``stss``/``stsc``/``stsz``/``stco`` (``co64`` past 4 GiB); the 64-bit
  ``mdat`` size is patched at its known offset.
* :class:`Mp4Tracks` -- sequence headers in, :class:`Track` descriptions out (shared).
"""

from __future__ import annotations

import struct

from ..errors import SrsError
from .codec import HEVC_NAL_SPS, parse_avc_sps, parse_avcc, parse_hevc_sps, parse_hvcc
from .frame import (AUDIO_AAC, SEQUENCE_HEADER, CODED, VIDEO_AVC, VIDEO_HEVC, FrameError, aac_config,
                    parse_audio, parse_video)
from .message import AUDIO, VIDEO

DVR_TIMESCALE = 1000
HLS_TIMESCALE = 90000

VIDE = b"vide"
SOUN = b"soun"

# trun sample_flags (ISO 14496-12 8.8.3.1): sync sample depends on nothing; a non-sync
# sample depends on others and has sample_is_non_sync_sample set.
SYNC_FLAGS = 0x02000000
NON_SYNC_FLAGS = 0x01010000

_MATRIX = struct.pack(">9I", 0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000)


class Mp4Error(SrsError):
    """A track or sample that cannot be written to MP4."""


def box(kind: bytes, *parts: bytes) -> bytes:
    body = b"".join(parts)
    return struct.pack(">I", 8 + len(body)) + kind + body


def full_box(kind: bytes, version: int, flags: int, *parts: bytes) -> bytes:
    return box(kind, struct.pack(">I", (version << 24) | flags), *parts)


def _descriptor(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n < 0x80:
        return bytes([tag, n]) + body
    return bytes([tag, 0x80 | (n >> 21) & 0x7F, 0x80 | (n >> 14) & 0x7F, 0x80 | (n >> 7) & 0x7F, n & 0x7F]) + body


# ---------------------------------------------------------------- tracks


class Track:
    """One track's description: what the sample entry and the headers need."""

    __slots__ = ("track_id", "handler", "codec", "config", "width", "height", "sample_rate", "channels")

    def __init__(self, track_id: int, handler: bytes, codec: int, config: bytes, width: int = 0, height: int = 0,
                 sample_rate: int = 0, channels: int = 0):
        self.track_id = track_id
        self.handler = handler
        self.codec = codec
        self.config = config
        self.width = width
        self.height = height
        self.sample_rate = sample_rate
        self.channels = channels

    @property
    def codec_string(self) -> str:
        """RFC 6381 ``CODECS`` value (``avc1.64001f``, ``hvc1.1.6.L93.B0``, ``mp4a.40.2``)."""
        c = self.config
        if self.codec == VIDEO_AVC:
            return f"avc1.{c[1]:02x}{c[2]:02x}{c[3]:02x}"
        if self.codec == VIDEO_HEVC:
            space = "ABC"[(c[1] >> 6) - 1] if c[1] >> 6 else ""
            compat = int.from_bytes(c[2:6], "big")
            rev = int(f"{compat:032b}"[::-1], 2)
            tier = "H" if c[1] & 0x20 else "L"
            cons = c[6:12].rstrip(b"\x00")
            tail = "".join(f".{b:X}" for b in cons)
            return f"hvc1.{space}{c[1] & 0x1F}.{rev:X}.{tier}{c[12]}{tail}"
        return f"mp4a.40.{aac_config(c)[0]}"


def video_track(record: bytes, codec: int, track_id: int = 1) -> Track:
    """A video track from an FLV video sequence header's decoder configuration record."""
    try:
        if codec == VIDEO_AVC:
            sps = parse_avcc(record)[1]
            if not sps:
                raise Mp4Error("avcC: no SPS")
            info = parse_avc_sps(sps[0])
        elif codec == VIDEO_HEVC:
            sps = parse_hvcc(record)[1].get(HEVC_NAL_SPS)
            if not sps:
                raise Mp4Error("hvcC: no SPS")
            info = parse_hevc_sps(sps[0])
        else:
            raise Mp4Error(f"mp4: video codec {codec} not supported (AVC 7, HEVC 12)")
    except (ValueError, IndexError) as e:
        raise Mp4Error(f"mp4: unreadable decoder configuration: {e}") from e
    return Track(track_id, VIDE, codec, bytes(record), width=info["width"], height=info["height"])


def audio_track(asc: bytes, track_id: int = 2) -> Track:
    """An AAC track from an FLV audio sequence header's AudioSpecificConfig."""
    try:
        _, rate, channels = aac_config(asc)
    except FrameError as e:
        raise Mp4Error(str(e)) from e
    return Track(track_id, SOUN, AUDIO_AAC, bytes(asc), sample_rate=rate, channels=channels)


def _sample_entry(t: Track) -> bytes:
    if t.handler == VIDE:
        kind, cfg = (b"avc1", b"avcC") if t.codec == VIDEO_AVC else (b"hvc1", b"hvcC")
        body = (b"\x00" * 6 + struct.pack(">H", 1) + b"\x00" * 16 + struct.pack(">HH", t.width, t.height)
                + struct.pack(">II", 0x00480000, 0x00480000) + b"\x00" * 4 + struct.pack(">H", 1)
                + b"\x00" * 32 + struct.pack(">Hh", 0x0018, -1))
        return box(kind, body, box(cfg, t.config))
    dsi = _descriptor(5, t.config)
    dcd = _descriptor(4, bytes([0x40, 0x15]) + b"\x00\x00\x00" + struct.pack(">II", 0, 0) + dsi)
    es = _descriptor(3, struct.pack(">HB", 0, 0) + dcd + _descriptor(6, b"\x02"))
    rate = t.sample_rate if t.sample_rate < 0x10000 else 0
    body = (b"\x00" * 6 + struct.pack(">H", 1) + b"\x00" * 8 + struct.pack(">HHHH", t.channels or 2, 16, 0, 0)
            + struct.pack(">I", rate << 16))
    return box(b"mp4a", body, full_box(b"esds", 0, 0, es))


def _tkhd(t: Track, duration: int) -> bytes:
    return full_box(b"tkhd", 1, 3, struct.pack(">QQII", 0, 0, t.track_id, 0), struct.pack(">Q", duration),
                    b"\x00" * 8, struct.pack(">hhhH", 0, 0, 0x0100 if t.handler == SOUN else 0, 0), _MATRIX,
                    struct.pack(">II", t.width << 16, t.height << 16))


def _mdhd(timescale: int, duration: int) -> bytes:
    return full_box(b"mdhd", 1, 0, struct.pack(">QQIQ", 0, 0, timescale, duration), struct.pack(">HH", 0x55C4, 0))


def _hdlr(t: Track) -> bytes:
    name = b"VideoHandler\x00" if t.handler == VIDE else b"SoundHandler\x00"
    return full_box(b"hdlr", 0, 0, struct.pack(">I", 0), t.handler, b"\x00" * 12, name)


def _minf(t: Track, stbl: bytes) -> bytes:
    head = full_box(b"vmhd", 0, 1, b"\x00" * 8) if t.handler == VIDE else full_box(b"smhd", 0, 0, b"\x00" * 4)
    dinf = box(b"dinf", full_box(b"dref", 0, 0, struct.pack(">I", 1), full_box(b"url ", 0, 1)))
    return box(b"minf", head, dinf, stbl)


def _mvhd(timescale: int, duration: int, next_id: int) -> bytes:
    return full_box(b"mvhd", 1, 0, struct.pack(">QQIQ", 0, 0, timescale, duration),
                    struct.pack(">IH", 0x00010000, 0x0100), b"\x00" * 10, _MATRIX, b"\x00" * 24,
                    struct.pack(">I", next_id))


def _trak(t: Track, timescale: int, duration: int, stbl_tables: bytes, edts: bytes = b"", delay: int = 0) -> bytes:
    stbl = box(b"stbl", full_box(b"stsd", 0, 0, struct.pack(">I", 1), _sample_entry(t)), stbl_tables)
    mdia = box(b"mdia", _mdhd(timescale, duration), _hdlr(t), _minf(t, stbl))
    return box(b"trak", _tkhd(t, delay + duration), edts, mdia)


_EMPTY_TABLES = (full_box(b"stts", 0, 0, b"\x00" * 4) + full_box(b"stsc", 0, 0, b"\x00" * 4)
                 + full_box(b"stsz", 0, 0, b"\x00" * 8) + full_box(b"stco", 0, 0, b"\x00" * 4))


def ftyp(fragmented: bool) -> bytes:
    if fragmented:
        return box(b"ftyp", b"iso6", struct.pack(">I", 0), b"iso6", b"iso5", b"mp41", b"dash")
    return box(b"ftyp", b"isom", struct.pack(">I", 512), b"isom", b"iso2", b"avc1", b"mp41")


def init_segment(tracks: list[Track], timescale: int = HLS_TIMESCALE) -> bytes:
    """``ftyp`` + ``moov`` of a fragmented file: empty sample tables, ``mvex``/``trex`` per
    track (HLS ``EXT-X-MAP`` target, or the head of a fragmented DVR file)."""
    if not tracks:
        raise Mp4Error("mp4: init segment without a track")
    traks = b"".join(_trak(t, timescale, 0, _EMPTY_TABLES) for t in tracks)
    trex = b"".join(full_box(b"trex", 0, 0, struct.pack(">IIIII", t.track_id, 1, 0, 0, 0)) for t in tracks)
    moov = box(b"moov", _mvhd(timescale, 0, max(t.track_id for t in tracks) + 1), traks, box(b"mvex", trex))
    return ftyp(True) + moov


# ---------------------------------------------------------------- samples


class Sample:
    """One access unit: decode time and composition offset in ms, the bytes, sync or not."""

    __slots__ = ("dts", "cts", "data", "key")

    def __init__(self, dts: int, cts: int, data: bytes, key: bool):
        self.dts = dts
        self.cts = cts
        self.data = data
        self.key = key


class Mp4Tracks:
    """Follows a stream's sequence headers and turns its A/V messages into samples.

    ``on_message(msg)`` returns ``(track, sample)`` for a coded frame whose track is known,
    ``(track, None)`` when the message was a sequence header that (re)defined a track, and
    None for everything else (metadata, unknown codecs, frames before their header).
    ``changed`` tells whether the last sequence header differed from the one before.
    """

    def __init__(self, video_id: int = 1, audio_id: int = 2):
        self.video: Track | None = None
        self.audio: Track | None = None
        self.video_id = video_id
        self.audio_id = audio_id
        self.changed = False

    @property
    def tracks(self) -> list[Track]:
        return [t for t in (self.video, self.audio) if t is not None]

    def on_message(self, msg):
        if msg.type == VIDEO:
            f = parse_video(msg.payload)
            if f is None:
                return None
            if f.kind == SEQUENCE_HEADER:
                old = self.video
                self.video = video_track(f.data, f.codec, self.video_id)
                self.changed = old is None or old.config != self.video.config or old.codec != f.codec
                return self.video, None
            if f.kind != CODED or self.video is None or not f.data:
                return None
            return self.video, Sample(msg.timestamp, f.cts, f.data, f.keyframe)
        if msg.type == AUDIO:
            f = parse_audio(msg.payload)
            if f is None or f.codec != AUDIO_AAC:
                return None
            if f.kind == SEQUENCE_HEADER:
                old = self.audio
                self.audio = audio_track(f.data, self.audio_id)
                self.changed = old is None or old.config != self.audio.config
                return self.audio, None
            if self.audio is None or not f.data:
                return None
            return self.audio, Sample(msg.timestamp, 0, f.data, True)
        return None


def _durations(samples: list[Sample], end: int | None, fallback: int) -> list[int]:
    """Per-sample durations in ms: the next sample's dts, ``end`` after the last (when it is
    later), else the previous duration (or ``fallback`` for a lone sample)."""
    out = []
    for a, b in zip(samples, samples[1:]):
        out.append(max(0, b.dts - a.dts))
    last = samples[-1]
    if end is not None and end > last.dts:
        out.append(end - last.dts)
    else:
        out.append(out[-1] if out else fallback)
    return out


def _default_duration(t: Track) -> int:
    """A lone sample's duration in ms: one AAC frame, or one frame at 25 fps."""
    if t.handler == SOUN and t.sample_rate:
        return max(1, round(1024 * 1000 / t.sample_rate))
    return 40


class Fragmenter:
    """Collects samples per track and writes them as one ``moof`` + ``mdat`` per call to
    :meth:`fragment` (ISO 14496-12 8.8). ``tfdt`` carries each track's first decode time,
    so fragments stay on the stream's clock even when a duration was estimated."""

    def __init__(self, tracks: list[Track], timescale: int = HLS_TIMESCALE, sequence: int = 1):
        self.tracks = {t.track_id: t for t in tracks}
        self.timescale = timescale
        self.sequence = sequence
        self.pending: dict[int, list[Sample]] = {t.track_id: [] for t in tracks}
        self.last_duration: dict[int, int] = {}

    def add(self, track: Track, sample: Sample) -> None:
        if track.track_id not in self.pending:
            raise Mp4Error(f"mp4: track {track.track_id} is not in this file's init segment")
        self.pending[track.track_id].append(sample)

    @property
    def empty(self) -> bool:
        return not any(self.pending.values())

    def pending_duration(self) -> int:
        """Span in ms of the pending samples (first to last dts over all tracks)."""
        dts = [s.dts for q in self.pending.values() for s in q]
        return max(dts) - min(dts) if dts else 0

    def fragment(self, end: int | None = None) -> bytes:
        """``moof`` + ``mdat`` of every pending sample (b"" when none). ``end`` (ms) is where
        the fragment ends, i.e. the first dts of the next one, when the caller knows it."""
        runs = [(tid, q) for tid, q in self.pending.items() if q]
        if not runs:
            return b""
        scale = self.timescale
        trafs = []
        datas = []
        for tid, q in runs:
            t = self.tracks[tid]
            durs = _durations(q, end, self.last_duration.get(tid, _default_duration(t)))
            self.last_duration[tid] = durs[-1]
            rows = []
            for s, d in zip(q, durs):
                ticks = (s.dts + d) * scale // 1000 - s.dts * scale // 1000
                flags = SYNC_FLAGS if s.key else NON_SYNC_FLAGS
                rows.append(struct.pack(">IIIi", ticks, len(s.data), flags, s.cts * scale // 1000))
            tfhd = full_box(b"tfhd", 0, 0x020000, struct.pack(">I", tid))
            tfdt = full_box(b"tfdt", 1, 0, struct.pack(">Q", q[0].dts * scale // 1000))
            trun = full_box(b"trun", 1, 0x000F01, struct.pack(">Ii", len(q), 0), *rows)
            trafs.append((tfhd, tfdt, trun))
            datas.append(b"".join(s.data for s in q))
        mfhd = full_box(b"mfhd", 0, 0, struct.pack(">I", self.sequence))
        traf_boxes = [box(b"traf", *parts) for parts in trafs]
        moof_size = 8 + len(mfhd) + sum(len(b) for b in traf_boxes)
        # Patch each trun's data_offset: from the moof's first byte to the track's data.
        out = bytearray(box(b"moof", mfhd, *traf_boxes))
        pos = 8 + len(mfhd)
        data_at = moof_size + 8
        for (tfhd, tfdt, _trun), tb, data in zip(trafs, traf_boxes, datas):
            field = pos + 8 + len(tfhd) + len(tfdt) + 16
            struct.pack_into(">i", out, field, data_at)
            pos += len(tb)
            data_at += len(data)
        out += box(b"mdat", *datas)
        for tid, _ in runs:
            self.pending[tid] = []
        self.sequence += 1
        return bytes(out)


# ---------------------------------------------------------------- progressive


class _Table:
    """Sample table of one track in a progressive file."""

    __slots__ = ("track", "dts", "cts", "sizes", "keys", "chunks")

    def __init__(self, track: Track):
        self.track = track
        self.dts: list[int] = []
        self.cts: list[int] = []
        self.sizes: list[int] = []
        self.keys: list[int] = []  # 1-based sample numbers of sync samples
        self.chunks: list[list[int]] = []  # [offset, sample count]


def _runs(values: list[int]) -> list[tuple[int, int]]:
    out: list[list[int]] = []
    for v in values:
        if out and out[-1][1] == v:
            out[-1][0] += 1
        else:
            out.append([1, v])
    return [(n, v) for n, v in out]


class ProgressiveMp4:
    """A progressive MP4 written front to back: :meth:`header` first, then the bytes that
    :meth:`write` returns for each message, then :meth:`finish`'s ``moov``; finally each
    ``(offset, bytes)`` patch is written in place (the ``mdat`` size). Timescale 1000 as
    SRS's DVR. Samples that arrive before their sequence header are dropped; a sequence
    header that changes a track's codec configuration once the track has samples is
    refused (a progressive file has one sample description per track): the DVR starts a
    new file there instead (srspy/dvr/plan.py). Before the first sample the latest wins."""

    def __init__(self, timescale: int = DVR_TIMESCALE):
        self.timescale = timescale
        self.tracks = Mp4Tracks()
        self.tables: dict[int, _Table] = {}
        self.offset = 0
        self.mdat_at = 0
        self.last_tid = 0
        self.base: int | None = None

    def header(self) -> bytes:
        head = ftyp(False)
        self.mdat_at = len(head)
        # mdat with a 64-bit size (size field 1): patched by finish() once the size is known.
        head += struct.pack(">I", 1) + b"mdat" + struct.pack(">Q", 0)
        self.offset = len(head)
        return head

    def write(self, msg) -> bytes:
        got = self.tracks.on_message(msg)
        if got is None:
            return b""
        track, sample = got
        table = self.tables.get(track.track_id)
        if sample is None:
            if table is None:
                self.tables[track.track_id] = _Table(track)
            elif table.track.config != track.config or table.track.codec != track.codec:
                if table.sizes:
                    raise Mp4Error(f"mp4: track {track.track_id} codec configuration changed mid-file")
                table.track = track
            return b""
        if self.base is None:
            self.base = sample.dts
        dts = sample.dts - self.base
        if table.dts and dts < table.dts[-1]:
            dts = table.dts[-1]  # non-monotonic input: keep the table valid
        table.dts.append(dts)
        table.cts.append(sample.cts)
        table.sizes.append(len(sample.data))
        if sample.key:
            table.keys.append(len(table.sizes))
        if self.last_tid == track.track_id and table.chunks:
            table.chunks[-1][1] += 1
        else:
            table.chunks.append([self.offset, 1])
        self.last_tid = track.track_id
        self.offset += len(sample.data)
        return sample.data

    @property
    def duration(self) -> int:
        """Span in ms of what was written (the longest track)."""
        return max((t.dts[-1] - t.dts[0] for t in self.tables.values() if t.dts), default=0)

    def finish(self) -> tuple[bytes, list[tuple[int, bytes]]]:
        """The ``moov`` to append after the last sample, and the patches to apply."""
        scale = self.timescale
        traks = []
        movie = 0
        for tid in sorted(self.tables):
            tb = self.tables[tid]
            if not tb.dts:
                continue
            durs = _durations([Sample(d, 0, b"", False) for d in tb.dts], None, _default_duration(tb.track))
            ticks = [(d + n) * scale // 1000 - d * scale // 1000 for d, n in zip(tb.dts, durs)]
            total = sum(ticks)
            delay = tb.dts[0] * scale // 1000
            movie = max(movie, delay + total)
            tables = [full_box(b"stts", 0, 0, struct.pack(">I", len(_runs(ticks))),
                               *(struct.pack(">II", n, v) for n, v in _runs(ticks)))]
            if any(tb.cts):
                cts = [c * scale // 1000 for c in tb.cts]
                version = 1 if min(cts) < 0 else 0
                tables.append(full_box(b"ctts", version, 0, struct.pack(">I", len(_runs(cts))),
                                       *(struct.pack(">Ii", n, v) for n, v in _runs(cts))))
            if tb.track.handler == VIDE and len(tb.keys) < len(tb.sizes):
                tables.append(full_box(b"stss", 0, 0, struct.pack(">I", len(tb.keys)),
                                       *(struct.pack(">I", k) for k in tb.keys)))
            stsc = []
            for i, (_, n) in enumerate(tb.chunks):
                if not stsc or stsc[-1][1] != n:
                    stsc.append((i + 1, n))
            tables.append(full_box(b"stsc", 0, 0, struct.pack(">I", len(stsc)),
                                   *(struct.pack(">III", first, n, 1) for first, n in stsc)))
            tables.append(full_box(b"stsz", 0, 0, struct.pack(">II", 0, len(tb.sizes)),
                                   struct.pack(f">{len(tb.sizes)}I", *tb.sizes)))
            offsets = [c[0] for c in tb.chunks]
            if offsets[-1] > 0xFFFFFFFF:
                tables.append(full_box(b"co64", 0, 0, struct.pack(">I", len(offsets)),
                                       struct.pack(f">{len(offsets)}Q", *offsets)))
            else:
                tables.append(full_box(b"stco", 0, 0, struct.pack(">I", len(offsets)),
                                       struct.pack(f">{len(offsets)}I", *offsets)))
            edts = b""
            if delay:  # this track starts after the file's first sample: an empty edit first
                edts = box(b"edts", full_box(b"elst", 1, 0, struct.pack(">I", 2),
                                             struct.pack(">QqI", delay, -1, 0x00010000),
                                             struct.pack(">QqI", total, 0, 0x00010000)))
            traks.append((tb.track, total, b"".join(tables), edts, delay))
        if not traks:
            raise Mp4Error("mp4: no sample written, nothing to describe")
        body = b"".join(_trak(t, scale, total, tables, edts, delay) for t, total, tables, edts, delay in traks)
        next_id = max(t.track_id for t, *_ in traks) + 1
        moov = box(b"moov", _mvhd(scale, movie, next_id), body)
        mdat_size = self.offset - self.mdat_at
        return moov, [(self.mdat_at + 8, struct.pack(">Q", mdat_size))]
